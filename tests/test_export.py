"""Exports of a library holding hostile records, read back with the readers reviewers use.

The library is a real SQLite file filled through ``Library.save_batch``; every export runs
through the real CLI and is read back with pandas, openpyxl, rispy and bibtexparser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import bibtexparser
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rispy
from bibtexparser.bparser import BibTexParser
from openpyxl.utils import get_column_letter
from openpyxl.utils.escape import unescape as ooxml_unescape

from kratomlit import export as export_module
from kratomlit.cells import EXCEL_CELL_MAX, escape_cell, excel_parts, unescape_cell
from kratomlit.export_formats import (
    _ris_author,
    bibtex_value,
    ris_date,
)
from kratomlit.models import COLUMNS, Evidence, Labels, Record, default_columns
from kratomlit.store import Library

README = Path(__file__).resolve().parents[1] / "README.md"
LONG = ("Kratom μ-opioid 𝛍 " * 4000) + "the end."  # ~72,000 characters, astral letters too
HOSTILE = {  # pmid -> title
    101: '=HYPERLINK("http://example.invalid","click") kratom',
    102: 'He said "no", then\nleft: kratom, coffee; and tea',
    103: "-opioid tolerance after kratom",
    104: "+5 mg/kg mitragynine",
    105: "@SUM(A1:A2) in a title",
    106: "\tTabbed title",
    107: "'Quoted' kratom {unbalanced brace",
    108: "Μ-οπιοειδής υποδοχέας και κρατόμ (Greek)",
    109: "กระท่อม: 泰国克拉托姆 — ミトラギニン «kratom»",
    110: "\rCarriage return first",
}
TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]) {1,2}-(?: (.*))?$")  # Zotero's RIS line pattern


def _record(pmid: int, title: str) -> Record:
    return Record(
        pmid=pmid, title=title,
        abstract=LONG if pmid == 101 else f"BACKGROUND: text of {pmid}, with \"quotes\".\n"
        f"RESULTS: =1+2 is not a formula; {title}",
        authors=[{"last": "Ødegård", "initials": "K", "suffix": "", "collective": "",
                  "fore": "Kari", "affiliations": ["Oslo, Norway"], "valid": True},
                 {"last": "", "initials": "", "suffix": "", "fore": "", "affiliations": [],
                  "collective": "Research and Policy Group", "valid": True}],
        journal="Journal of Hostile Data", journal_iso="J Hostile Data", volume="3",
        issue="2", pages="10-19", pub_year=2010 + pmid % 10, pub_date=f"{2010 + pmid % 10}-05",
        doi=f"10.5555/h.{pmid}", mesh=[{"descriptor": "Mitragyna", "ui": "D1", "major": True,
                                        "qualifiers": []}],
        keywords=["kratom", "=cmd|' /C calc'!A0"], publication_types=["Journal Article"],
        languages=["eng"], raw_xml=f"<x>{pmid}</x>")


@pytest.fixture
def hostile(env):
    """A library with the hostile titles (found by saved search 'kratom-oud') and two
    ordinary records found by an ad hoc search; 101 and 102 are classified."""
    with Library(Path(env["KRATOMLIT_HOME"]) / "library.db") as lib:
        oud = lib.runs.get_search("kratom AND oud", name="kratom-oud")
        lib.records.save_batch(oud.id, [_record(p, t) for p, t in HOSTILE.items()])
        other = lib.runs.get_search("mitragynine")
        lib.records.save_batch(other.id, [_record(201, "Plain title A"), _record(202, "Plain B")])
        lib.labels.save([
            (101, Labels("1.1+test", ["mechanism"], {"mechanism": 0.9, "safety": 0.2})),
            (102, Labels("1.1+test", ["safety", "dosing"], {"safety": 0.7, "dosing": 0.61}))])
    return {p: _record(p, t) for p, t in {**HOSTILE, 201: "Plain title A", 202: "Plain B"}
            .items()}


@pytest.fixture
def export(cli, tmp_path):
    def run(name: str, *args: str, code: int = 0) -> Path:
        out = tmp_path / name
        result = cli("export", "-o", str(out), *args)
        assert result.exit_code == code, result.stderr
        return out
    return run


@pytest.fixture(params=[2000, 3])
def chunked(request, monkeypatch):
    """Run a test with the real chunk size and with chunks of 3 (several per export)."""
    monkeypatch.setattr(export_module, "CHUNK", request.param)


def _unescaped(df: pd.DataFrame, column: str) -> dict[int, str]:
    return {int(p): unescape_cell(v) for p, v in zip(df["pmid"], df[column], strict=True)}


@pytest.mark.parametrize("name,sep", [("k.csv", ","), ("k.tsv", "\t")])
def test_csv_and_tsv_round_trip_in_pandas(hostile, export, chunked, name, sep):
    out = export(name)
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM only with --excel
    df = pd.read_csv(out, sep=sep, keep_default_na=False)
    flat = [c for c in COLUMNS if c != "evidence"]
    assert list(df.columns) == list(default_columns("csv")) == flat
    assert sorted(df["pmid"]) == sorted(hostile)  # every PMID once
    assert _unescaped(df, "title") == {p: r.title for p, r in hostile.items()}
    assert _unescaped(df, "abstract") == {p: r.abstract for p, r in hostile.items()}
    for cell in df["title"].tolist() + df["keywords"].tolist():
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n"))
    row = df.set_index("pmid").loc[102]
    assert row["authors"] == "Ødegård K; Research and Policy Group"
    assert row["first_author"] == "Ødegård K" and row["topics"] == "safety; dosing"
    assert float(row["score_dosing"]) == 0.61 and row["classifier_version"] == "1.1+test"
    assert row["searches"] == "kratom-oud" and row["first_seen"].startswith("20")


def test_excel_csv_has_bom_and_warns_about_long_cells(hostile, cli, tmp_path):
    out = tmp_path / "k.csv"
    result = cli("export", "-o", str(out), "--excel")
    assert result.exit_code == 0 and out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "32,767" in result.stderr and "1 cells" in result.stderr
    df = pd.read_csv(out, encoding="utf-8-sig")
    assert df.set_index("pmid").loc[101, "abstract"] == LONG  # kept whole
    assert cli("export", "-o", str(tmp_path / "k.ris"), "--excel").exit_code == 2


def test_xlsx_is_literal_text_filtered_frozen_and_keeps_long_text(hostile, export, chunked):
    out = export("k.xlsx")
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["records", "columns", "overflow"]
    ws = book["records"]
    last = get_column_letter(len(default_columns("xlsx")) + 1)
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:{last}{len(hostile) + 1}"
    assert ws.column_dimensions["B"].width > 50  # title
    header = [c.value for c in ws[1]]
    assert header == [*default_columns("xlsx"), "continued"]
    rows = [dict(zip(header, (c for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]
    # a cut text says so in its own row: the reader sees it goes on
    continued = {r["pmid"].value: r["continued"].value for r in rows}
    assert continued.pop(101) == "abstract (see 'overflow' sheet)"
    assert set(continued.values()) == {None}
    assert sorted(r["pmid"].value for r in rows) == sorted(hostile)
    for row in rows:
        for cell in row.values():
            assert cell.data_type in ("s", "n", "b")  # never "f": no live formula
            if isinstance(cell.value, str):
                assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r", "\n"))
        pmid = row["pmid"].value
        # control characters other than tab and LF are stored as OOXML _xHHHH_ escapes,
        # which Excel decodes and openpyxl leaves to the caller
        assert unescape_cell(ooxml_unescape(row["title"].value)) == hostile[pmid].title
    overflow = list(book["overflow"].iter_rows(min_row=2, values_only=True))
    by_pmid = {r["pmid"].value: r for r in rows}
    whole = unescape_cell(by_pmid[101]["abstract"].value) + "".join(
        unescape_cell(text) for _row, pmid, col, _part, text in overflow
        if pmid == 101 and col == "abstract")
    assert whole == LONG and len(overflow) == 2
    described = {r[0]: r[1] for r in book["columns"].iter_rows(min_row=2, values_only=True)}
    assert described["first_seen"] == COLUMNS["first_seen"].description
    assert described["records"] == str(len(hostile))


def test_xlsx_reads_in_pandas(hostile, export):
    df = pd.read_excel(export("k.xlsx"), sheet_name="records")
    assert len(df) == len(hostile) and df["pmid"].is_unique
    assert df.set_index("pmid").loc[108, "title"] == HOSTILE[108]


def test_jsonl_and_parquet_keep_lists_and_exact_text(hostile, export, chunked):
    lines = export("k.jsonl").read_text(encoding="utf-8").split("\n")
    rows = [json.loads(line) for line in lines if line]
    pq_df = pd.read_parquet(export("k.parquet"))
    assert [r["pmid"] for r in rows] == sorted(hostile) == list(pq_df["pmid"])
    for row, (_, prow) in zip(rows, pq_df.iterrows(), strict=True):
        rec = hostile[row["pmid"]]
        assert row["title"] == prow["title"] == rec.title
        assert row["abstract"] == prow["abstract"] == rec.abstract
        assert row["keywords"] == list(prow["keywords"]) == rec.keywords
        assert row["authors"] == ["Ødegård K", "Research and Policy Group"]
    assert rows[0]["score_mechanism"] == 0.9 and rows[-1]["score_mechanism"] is None
    schema = pq.read_schema(export("k.parquet"))
    assert schema.names == list(COLUMNS)
    assert schema.field("mesh").type == pa.list_(pa.string())
    assert str(schema.field("score_safety").type) == "double"


def test_ris_reads_in_rispy_one_entry_per_pmid(hostile, export, chunked):
    out = export("k.ris")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("TY  - JOUR\n") and "\nT1  -" not in text
    assert all(TAG_LINE.match(line) for line in text.splitlines() if line)
    entries = rispy.load(out, encoding="utf-8")
    assert sorted(int(e["accession_number"]) for e in entries) == sorted(hostile)
    for e in entries:
        rec = hostile[int(e["accession_number"])]
        assert e["title"] == " ".join(rec.title.split())  # a tag is one line
        assert e["abstract"] == " ".join(rec.abstract.split())
        assert e["authors"] == ["Ødegård, K", "Research and Policy Group"]
        assert "Mitragyna*" in e["keywords"] and e["urls"][0].endswith(f"/{rec.pmid}/")
        assert e["start_page"] == "10" and e["end_page"] == "19" and e["doi"] == rec.doi
    first = next(e for e in entries if e["accession_number"] == "102")
    assert "Topics: safety; dosing" in first["notes"] and first["date"] == "2012/05//"


def test_bibtex_reads_in_bibtexparser_with_stable_unique_keys(hostile, export, chunked):
    out = export("k.bib")
    parser = BibTexParser(common_strings=False)
    entries = bibtexparser.loads(out.read_text(encoding="utf-8"), parser=parser).entries
    assert [e["ID"] for e in entries] == [f"pmid{p}" for p in sorted(hostile)]
    for e in entries:
        rec = hostile[int(e["pmid"])]
        assert e["title"] == bibtex_value(rec.title)
        assert e["abstract"] == bibtex_value(rec.abstract)
        assert (e["title"] == rec.title) == (rec.pmid not in (106, 107, 110))  # tab, brace, CR
        assert e["author"] == "Ødegård, K and {Research and Policy Group}"
    assert "\\textbraceleft{}unbalanced" in bibtex_value(HOSTILE[107])


def test_filters_select_by_search_topic_score_year_and_columns(hostile, export, cli):
    def pmids(*args: str) -> list[int]:
        return list(pd.read_csv(export("f.csv", *args))["pmid"])

    assert pmids("--saved", "kratom-oud") == sorted(HOSTILE)
    assert pmids("--search", "2") == [201, 202]
    assert pmids("--topic", "safety") == [102]
    assert pmids("--topic", "safety", "--topic", "mechanism") == [101, 102]
    assert pmids("--min-score", "0.8") == [101]
    # nothing matched while 10 records are unclassified: exit 1 with the reason, no file
    assert not export("g.csv", "--topic", "safety", "--min-score", "0.8", code=1).exists()
    assert pmids("--year-from", "2015", "--year-to", "2017") == [105, 106, 107]
    assert pmids("--since", "2999") == []
    df = pd.read_csv(export("c.csv", "--columns", "title,pmid"))
    assert list(df.columns) == ["title", "pmid"]
    missing = cli("export", "-o", "x.csv", "--search", "99")
    assert missing.exit_code == 2 and "1 = kratom-oud" in missing.stderr
    assert "2 = mitragynine" in missing.stderr
    for bad in (["--topic", "fun"], ["--columns", "nope"], ["--min-score", "2"],
                ["--year-from", "2020", "--year-to", "2019"], ["--saved", "nope"]):
        assert cli("export", "-o", "x.csv", *bad).exit_code == 2, bad


def test_new_exports_only_what_the_same_search_found_since(hostile, export, env):
    first = export("a.jsonl", "--saved", "kratom-oud", "--new")
    assert len(first.read_text().splitlines()) == len(HOSTILE)  # no previous export: all
    with Library(Path(env["KRATOMLIT_HOME"]) / "library.db") as lib:
        lib.db.execute("UPDATE exports SET started = '2000-01-01T00:00:00+00:00'")
        lib.db.execute("UPDATE hits SET first_seen = '1999-01-01T00:00:00+00:00' "
                       "WHERE pmid != 104")
    second = export("b.jsonl", "--saved", "kratom-oud", "--new")
    assert [json.loads(x)["pmid"] for x in second.read_text().splitlines()] == [104]
    # another search has its own history: its first --new export has everything
    assert len(export("c.jsonl", "--search", "2", "--new").read_text().splitlines()) == 2
    with Library(Path(env["KRATOMLIT_HOME"]) / "library.db") as lib:
        logged = lib.db.execute("SELECT selector, format, count FROM exports ORDER BY id")
        assert logged.fetchall() == [("saved:kratom-oud", "jsonl", len(HOSTILE)),
                                     ("saved:kratom-oud", "jsonl", 1),
                                     ("search:2", "jsonl", 2)]


def test_format_from_extension_and_errors(hostile, export, cli, tmp_path):
    assert export("k.ndjson").read_text().startswith("{")
    assert export("k.txt", "-f", "RIS").read_text().startswith("TY  - ")
    bad = cli("export", "-o", str(tmp_path / "k.docx"))
    assert bad.exit_code == 2 and "--format" in bad.stderr
    assert cli("export", "-o", str(tmp_path / "k.ris"), "--columns", "pmid").exit_code == 2


def test_failed_export_keeps_the_old_file_and_leaves_no_temporary(hostile, cli, tmp_path,
                                                                  monkeypatch):
    from kratomlit import export_formats

    target = tmp_path / "old.xlsx"
    target.write_text("the previous export")
    monkeypatch.setattr(export_formats, "XLSX_MAX_ROWS", 3)  # fails after writing rows
    result = cli("export", "-o", str(target))
    assert result.exit_code == 6 and "XLSX holds at most" in result.stderr
    assert target.read_text() == "the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "old.xlsx"]
    missing = cli("export", "-o", str(tmp_path / "missing" / "k.csv"))
    assert missing.exit_code == 6 and "does not exist" in missing.stderr


@pytest.mark.parametrize("cell,expected", [
    ("=1+2", "'=1+2"), ("-x", "'-x"), ("+1", "'+1"), ("@SUM", "'@SUM"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("\nx", "'\nx"), ("'x", "''x"), ("ok", "ok"), ("a=b", "a=b"),
])
def test_formula_escaping_is_reversible(cell, expected):
    assert escape_cell(cell) == expected and unescape_cell(expected) == cell


def test_excel_parts_respect_the_cell_limit_in_utf16_units():
    text = "a" * 40_000 + "𝛍" * 20_000
    parts = excel_parts(text)
    assert "".join(parts) == text
    assert all(len(p.encode("utf-16-le")) // 2 <= EXCEL_CELL_MAX - 1 for p in parts)


def test_ris_helpers():
    assert _ris_author("Smith JA") == "Smith, JA"
    assert _ris_author("WHO Collaborating Group") == "WHO Collaborating Group"
    assert ris_date("2024-03-15", 2024) == "2024/03/15/"
    assert ris_date("2019 Jan-Feb", 2019) == "2019///Jan-Feb"


def test_readme_documents_every_export_column():
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- export-columns")[1].split("<!-- /export-columns -->")[0]
    assert re.findall(r"^\| `(\w+)` \|", block, re.M) == list(COLUMNS)
    documented = dict(re.findall(r"^\| `(\w+)` \| (.*) \|$", block, re.M))
    assert documented == {c: col.description.replace("|", "\\|") for c, col in COLUMNS.items()}


def test_xlsx_columns_sheet_names_the_search_and_options(hostile, export):
    out = export("s.xlsx", "--saved", "kratom-oud", "--topic", "safety")
    sheet = openpyxl.load_workbook(out)["columns"]  # option names as written, not escaped
    described = {r[0]: r[1] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert described["search terms"] == "kratom AND oud"
    assert described["--saved"] == "kratom-oud" and described["--topic"] == "safety"
    assert described["records"] == "1" and described["selection"] == "saved:kratom-oud"


def test_a_filtered_export_does_not_use_up_new(hostile, export):
    export("topic.csv", "--topic", "mechanism")  # left most records out
    everything = export("n.jsonl", "--new")
    assert len(everything.read_text().splitlines()) == len(HOSTILE) + 2
    assert export("again.jsonl", "--new").read_text() == ""  # the unfiltered one counts


def test_a_cell_of_exactly_the_limit_stays_whole():
    assert excel_parts("x" * EXCEL_CELL_MAX) == ["x" * EXCEL_CELL_MAX]
    assert len(excel_parts("=" + "x" * (EXCEL_CELL_MAX - 1))) == 2  # the apostrophe needs room


def test_xlsx_disk_full_is_an_export_error_not_a_traceback(hostile, cli, tmp_path,
                                                           monkeypatch):
    import xlsxwriter
    from xlsxwriter.exceptions import FileCreateError

    def full(self):
        raise FileCreateError(OSError(28, "No space left on device"))

    monkeypatch.setattr(xlsxwriter.Workbook, "close", full)
    result = cli("export", "-o", str(tmp_path / "k.xlsx"))
    assert result.exit_code == 6 and "No space left on device" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


EVIDENCE = {"safety": [Evidence("hepatotoxicity", "Kratom caused =hepatotoxicity here.",
                                "abstract"),
                       Evidence("adverse event", "An adverse event followed.", "abstract")],
            "dosing": [Evidence("g/day", "Users took 5 g/day.", "abstract")],
            "mechanism": [Evidence("receptor", "A weak receptor hint.", "title")]}


@pytest.fixture
def with_evidence(hostile, env):
    """102 assigned safety and dosing, with evidence (and sub-threshold mechanism evidence)."""
    with Library(Path(env["KRATOMLIT_HOME"]) / "library.db") as lib:
        lib.labels.save([(102, Labels("1.1+test", ["safety", "dosing"],
                                      {"safety": 0.7, "dosing": 0.61, "mechanism": 0.3},
                                      EVIDENCE))])
    return hostile


def test_flat_exports_carry_the_phrases_of_each_assigned_topic(with_evidence, export):
    df = pd.read_csv(export("e.csv"), keep_default_na=False).set_index("pmid")
    assert df.loc[102, "evidence_safety"] == "hepatotoxicity; adverse event"
    assert df.loc[102, "evidence_dosing"] == "g/day"
    assert df.loc[102, "evidence_mechanism"] == ""  # not assigned: no evidence claimed
    assert df.loc[101, "evidence_mechanism"] == ""  # labels stored without evidence
    assert "evidence" not in df.columns
    book = openpyxl.load_workbook(export("e.xlsx"))
    header = [c.value for c in book["records"][1]]
    assert "evidence_safety" in header and "evidence" not in header


def test_jsonl_and_parquet_carry_the_full_evidence(with_evidence, export):
    rows = {r["pmid"]: r for r in map(json.loads, export("e.jsonl").read_text().splitlines())}
    ev = rows[102]["evidence"]
    assert {"topic": "safety", "assigned": True, "phrase": "hepatotoxicity",
            "sentence": "Kratom caused =hepatotoxicity here.", "source": "abstract"} in ev
    assert {e["topic"] for e in ev if not e["assigned"]} == {"mechanism"}
    assert rows[102]["evidence_dosing"] == ["g/day"] and rows[103]["evidence"] == []
    out = export("e.parquet")
    assert pq.read_schema(out).field("evidence").type == pa.list_(pa.struct([
        ("topic", pa.string()), ("assigned", pa.bool_()), ("phrase", pa.string()),
        ("sentence", pa.string()), ("source", pa.string())]))
    pq_rows = {r["pmid"]: r for r in pq.read_table(out).to_pylist()}
    assert pq_rows[102]["evidence"] == ev


def test_columns_accepts_evidence_and_a_flat_file_holds_it_as_json(with_evidence, export):
    out = export("e.csv", "--columns", "pmid,evidence_safety,evidence")
    df = pd.read_csv(out, keep_default_na=False).set_index("pmid")
    assert list(df.columns) == ["evidence_safety", "evidence"]
    phrases = [e["phrase"] for e in json.loads(df.loc[102, "evidence"])]
    assert phrases == ["receptor", "hepatotoxicity", "adverse event", "g/day"]  # TOPICS order


def test_xlsx_text_that_looks_like_rich_text_stays_text(env, export):
    """XlsxWriter writes '<r>…</r>' strings into the sheet XML unescaped (it takes them for
    rich text it built): such a title, in a plain row or in a row with an overflowing cell,
    and a saved-search name on the 'columns' sheet, must come back as the text itself."""
    odd = "<r>broken <b> & </r>"
    with Library(Path(env["KRATOMLIT_HOME"]) / "library.db") as lib:
        search = lib.runs.get_search(odd, name="odd")
        plain = _record(301, odd)
        long = _record(302, "<r><t>looks like markup</t></r>")
        long.abstract = "<r>" + LONG + "</r>"
        lib.records.save_batch(search.id, [plain, long])
    book = openpyxl.load_workbook(export("odd.xlsx", "--saved", "odd"))  # corrupt XML fails
    rows = {r[0]: r for r in book["records"].iter_rows(min_row=2, values_only=True)}
    header = [c.value for c in book["records"][1]]
    title, abstract = header.index("title"), header.index("abstract")
    assert rows[301][title] == odd
    assert rows[302][title] == "<r><t>looks like markup</t></r>"
    overflow = [r[4] for r in book["overflow"].iter_rows(min_row=2, values_only=True)]
    assert rows[302][abstract] + "".join(overflow) == "<r>" + LONG + "</r>"
    described = {r[0]: r[1] for r in book["columns"].iter_rows(min_row=2, values_only=True)}
    assert described["search terms"] == odd
