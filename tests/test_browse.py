"""`list`, `show` and `searches` through the real CLI, against a library filled by a real
search on the local E-utilities server."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

KRATOM = [90000001, 90000002, 90000003, 90000004]


@pytest.fixture
def library(cli, kratom_server, env):
    result = cli("search", "kratom")
    assert result.exit_code == 0, result.stderr
    return Path(env["KRATOMLIT_HOME"]) / "library.db"


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_list_shows_every_record_newest_first(cli, library):
    result = cli("list")
    assert result.exit_code == 0, result.stderr
    print(result.stdout)
    lines = [line for line in result.stdout.splitlines() if line.strip()[:8].isdigit()]
    assert [int(line.split()[0]) for line in lines] == [90000001, 90000004, 90000003, 90000002]


FILTERS = [[], ["--topic", "dosing"], ["--year-from", "2021"], ["--saved", "nope"],
           ["--min-score", "0.5", "--year-to", "2023"], ["--search", "1", "--topic", "safety"]]


@pytest.mark.parametrize("filters", FILTERS)
def test_list_csv_agrees_with_export_under_the_same_filters(cli, library, filters):
    listed = cli("list", "--format", "csv", *filters)
    exported = cli("export", "--format", "csv", "-o", "-", *filters)
    assert listed.exit_code == exported.exit_code
    if listed.exit_code:
        assert listed.stdout == exported.stdout == ""
        assert "saved searches it holds: none yet" in listed.stderr == exported.stderr
        return
    rows, export_rows = _csv(listed.stdout), _csv(exported.stdout)
    assert sorted(r["pmid"] for r in rows) == sorted(r["pmid"] for r in export_rows)
    by_pmid = {r["pmid"]: r for r in export_rows}
    for row in rows:
        for col in ("title", "first_author", "year", "topics"):
            assert row[col] == by_pmid[row["pmid"]][col]


def test_list_limit_and_jsonl(cli, library):
    result = cli("list", "--format", "jsonl", "--limit", "2")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["pmid"] for r in rows] == [90000001, 90000004]  # newest first
    assert rows[0]["topics"] == ["mechanism"] and rows[0]["first_seen"].startswith("20")
    assert rows[0]["design"] is None
    assert cli("list", "--format", "xml").exit_code == 2


def test_export_to_stdout_is_the_file_and_nothing_else(cli, library, tmp_path,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    piped = cli("export", "--format", "csv", "-o", "-")
    assert piped.exit_code == 0, piped.stderr
    assert cli("export", "--format", "csv", "-o", "k.csv").exit_code == 0
    assert piped.stdout == (tmp_path / "k.csv").read_text(encoding="utf-8")
    assert "Wrote 4 records to stdout" in piped.stderr
    jsonl = cli("export", "-f", "jsonl", "-o", "-").stdout
    assert [json.loads(line)["pmid"] for line in jsonl.splitlines()] == KRATOM
    for fmt in ("xlsx", "parquet"):
        refused = cli("export", "--format", fmt, "-o", "-")
        assert refused.exit_code == 2 and "stdout" in refused.stderr and not refused.stdout
    assert cli("export", "-o", "-").exit_code == 2  # no format to tell from '-'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "k.csv"]  # never a '-'


def test_new_to_stdout_never_writes_a_file_named_dash(cli, library, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("new", "--since", "2000", "--format", "csv", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert sorted(int(r["pmid"]) for r in _csv(result.stdout)) == KRATOM
    assert not (tmp_path / "-").exists()


def test_a_topic_filter_over_unclassified_records_says_so(cli, kratom_server, tmp_path):
    assert cli("search", "kratom", "--no-classify").exit_code == 0
    for command in (["list"], ["export", "-f", "csv", "-o", str(tmp_path / "t.csv")]):
        result = cli(*command, "--topic", "safety")
        assert result.exit_code == 1, result.stderr
        assert "4 records have no topic labels yet" in result.stderr
        assert "kratomlit classify" in result.stderr
    assert not (tmp_path / "t.csv").exists()
    assert cli("list").exit_code == 0  # no topic filter: nothing to explain


def test_a_topic_filter_over_a_partly_classified_library_warns(cli, library):
    with sqlite3.connect(library) as db:
        db.execute("DELETE FROM labels WHERE pmid = 90000004")
    result = cli("list", "--topic", "mechanism", "--format", "csv")
    assert result.exit_code == 0 and len(_csv(result.stdout)) == 1
    assert "1 records have no topic labels yet" in result.stderr
