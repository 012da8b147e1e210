"""Export formats from a real library filled through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import rispy

from kratomlit.export import COLUMNS, _ris_author, escape_formulas

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def filled(cli, kratom_server):
    assert cli("search", "kratom").exit_code == 0
    return cli


def test_xlsx_has_one_row_per_record_and_no_formulas(filled, tmp_path):
    out = tmp_path / "k.xlsx"
    assert filled("export", "-f", "xlsx", "-o", str(out)).exit_code == 0
    df = pd.read_excel(out)
    assert len(df) == 4 and list(df.columns) == list(COLUMNS)
    assert df.set_index("pmid").loc[90000002, "title"].startswith("'=")


def test_ris_is_readable_by_rispy(filled, tmp_path):
    out = tmp_path / "k.ris"
    assert filled("export", "-f", "ris", "-o", str(out)).exit_code == 0
    entries = rispy.load(out, encoding="utf-8")
    assert len(entries) == 4
    first = next(e for e in entries if e["accession_number"] == "90000001")
    assert first["authors"] == ["Alvarez, MJ", "O'Neil, S, Jr", "Kratom Fixture Consortium"]
    assert first["doi"] == "10.5555/fixture.0001" and first["start_page"] == "101"
    assert "\n" not in first["abstract"] and "METHODS:" in first["abstract"]
    text = out.read_text(encoding="utf-8")
    assert text.startswith("TY  - JOUR\n")
    tag_line = re.compile(r"^([A-Z][A-Z0-9]) {1,2}-(?: (.*))?$")  # Zotero's RIS line pattern
    assert all(tag_line.match(line) for line in text.splitlines() if line)


def test_since_and_unknown_format(filled, tmp_path):
    out = tmp_path / "k.csv"
    assert filled("export", "--since", "2999", "-o", str(out)).exit_code == 0
    assert len(pd.read_csv(out)) == 0
    bad = filled("export", "-f", "docx", "-o", str(out))
    assert bad.exit_code == 2 and "docx" in bad.stderr


def test_unwritable_target_keeps_nothing(filled, tmp_path):
    result = filled("export", "-o", str(tmp_path / "missing" / "k.csv"))
    assert result.exit_code == 6 and "does not exist" in result.stderr
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("cell,expected", [
    ("=1+2", "'=1+2"), ("-x", "'-x"), ("@SUM", "'@SUM"), ("\tx", "'\tx"), ("ok", "ok"),
])
def test_formula_escaping(cell, expected):
    assert escape_formulas(pd.DataFrame({"a": [cell]}))["a"][0] == expected


def test_ris_author_names():
    assert _ris_author("Smith JA") == "Smith, JA"
    assert _ris_author("WHO Collaborating Group") == "WHO Collaborating Group"


def test_readme_documents_every_export_column():
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- export-columns")[1].split("<!-- /export-columns -->")[0]
    assert re.findall(r"^\| `(\w+)` \|", block, re.M) == list(COLUMNS)
