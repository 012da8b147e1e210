"""`list`, `show` and `searches` through the real CLI, against a library filled by a real
search on the local E-utilities server."""

from __future__ import annotations

import csv
import io
import json
import re
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
        assert "it holds records from: none yet" in listed.stderr == exported.stderr
        return
    rows, export_rows = _csv(listed.stdout), _csv(exported.stdout)
    assert sorted(r["pmid"] for r in rows) == sorted(r["pmid"] for r in export_rows)
    by_pmid = {r["pmid"]: r for r in export_rows}
    for row in rows:
        for col in ("title", "first_author", "year", "topics"):
            assert row[col] == by_pmid[row["pmid"]][col]


def test_list_limit_and_jsonl(cli, library):
    _no_designs(library)
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
    with sqlite3.connect(library) as db:  # as if run by 'search --saved kratom-test'
        db.execute("UPDATE searches SET name = 'kratom-test'")
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


def test_show_prints_the_record_its_topics_evidence_and_history(cli, library):
    result = cli("show", "90000002")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.index("RETRACTED") < text.index("self-treatment of opioid withdrawal")
    assert "RetractionIn: Fixture Addict Rep. 2020;8:e1 (PMID 90000099)" in text
    assert "Nguyen T" in text and "https://pubmed.ncbi.nlm.nih.gov/90000002/" in text
    assert "Respondents used 3 to 5 g of kratom leaf powder daily" in text
    assert "✓ withdrawal" in text and "✓ dosing" in text
    # every assigned topic shows a sentence of the record with the phrase that fired
    assert "abstract: Respondents used 3 to 5 g" in text and "[5 g of kratom" in text
    assert "search 1 (kratom): first " in text and "PubMed revised 2023-01-10" in text
    assert "T" not in text.split("first ")[1][:12]  # a readable local time, not ISO


def test_show_labels_the_abstract_sections(cli, library):
    text = cli("show", "90000001").stdout
    assert "BACKGROUND: Kratom (Mitragyna speciosa)" in text and "\nMETHODS: We measured" in text
    assert "DOI 10.5555/fixture.0001" in text and "PMC9000001" in text


def test_show_json_keeps_iso_times_and_the_full_evidence(cli, library):
    _no_designs(library)
    data = json.loads(cli("show", "90000003", "--json").stdout)
    assert data["record"]["pmid"] == 90000003 and "raw_xml" not in data["record"]
    assert data["labels"]["topics"] == ["safety", "dosing"]
    assert {"phrase", "sentence", "source"} <= set(data["labels"]["evidence"]["safety"][0])
    assert data["searches"][0]["term"] == "kratom"
    assert "T" in data["library"]["first_stored"] and data["design"] is None


def test_show_an_unknown_or_deleted_pmid(cli, library):
    unknown = cli("show", "123")
    assert unknown.exit_code == 2 and unknown.stdout == ""
    assert "never seen PMID 123" in unknown.stderr and len(unknown.stderr.splitlines()) == 1
    with sqlite3.connect(library) as db:
        db.execute("UPDATE records SET deleted_at = '2026-12-01T10:00:00+00:00' "
                   "WHERE pmid = 90000004")
    deleted = cli("show", "90000004")
    assert deleted.exit_code == 0 and "PubMed deleted this record on 1 Dec 2026" in deleted.stdout


def test_searches_lists_the_ids_export_accepts(cli, library):
    result = cli("searches", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["id"] == 1 and row["term"] == "kratom" and row["name"] is None
    assert row["runs"] == 1 and row["count"] == 4 and row["held"] == 4
    assert row["last_status"] == "complete"
    assert cli("export", "--search", str(row["id"]), "-f", "csv", "-o", "-").exit_code == 0
    table = cli("searches").stdout
    assert "kratom" in table and "any date" in table


def test_the_search_summary_names_its_id_and_dates(cli, kratom_server):
    result = cli("search", "kratom", "--mindate", "2019", "--maxdate", "2024")
    assert "Search 1: kratom (2019" in result.stdout and "to 2024" in result.stdout


def _no_designs(library: Path) -> None:
    """As a library from before study designs (search now extracts them as it stores)."""
    with sqlite3.connect(library) as db:
        db.execute("DELETE FROM extractions")


def test_designs_show_in_list_and_show_once_the_library_has_them(cli, library):
    _no_designs(library)
    assert cli("list", "--design", "case report").exit_code == 2  # no designs yet
    assert "design" not in cli("list").stdout.splitlines()[1]
    from kratomlit.models import Dose, Evidence, Extraction
    from kratomlit.store import Library

    case = Extraction("case report", 0.9, [Evidence("a fatal case", "A fatal case.", "abstract")],
                      1, [Dose("0.4 mg/L", 0.4, 0.4, "mg/L", None, "mitragynine", "...")])
    with Library(library) as lib:  # written as the extractor writes them
        lib.extractions.save("x1", [(90000003, case), (90000002, Extraction("survey", 0.7, n=212))])
    table = cli("list").stdout
    assert "design" in table and "case report" in table and "212" in table
    rows = _csv(cli("list", "--design", "Case Report", "--format", "csv").stdout)
    assert [(r["pmid"], r["design"], r["n"]) for r in rows] == [("90000003", "case report", "1")]
    wrong = cli("list", "--design", "rct")
    assert wrong.exit_code == 2 and "case report, survey" in wrong.stderr
    shown = cli("show", "90000003").stdout
    assert "Design: case report (confidence 0.90); n = 1" in shown and "Doses: 0.4 mg/L" in shown
    assert json.loads(cli("show", "90000003", "--json").stdout)["design"]["doses"][0][
        "unit"] == "mg/L"


def test_new_to_the_library_and_new_to_a_search_are_both_shown(cli, server, tmp_path):
    from datetime import date

    from tests.eutils_server import synthetic_doc

    docs = {p: synthetic_doc(p, date(2020, 1, 1 + p % 20)) for p in (500, 501, 502, 503, 900)}
    server.state.add_docs([docs[p] for p in (500, 501, 900)], term="adhoc")
    server.state.add_docs([docs[p] for p in (500, 501, 502, 503)], term="kratom alpha")
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "alpha.toml").write_text('name = "alpha"\nterm = "kratom alpha"\n')
    assert cli("search", "adhoc").exit_code == 0  # an analyst's ad hoc search, no name
    first = json.loads(cli("refresh", "--queries", str(folder), "--json").stdout)
    assert [(s["new"], s["new_to_search"]) for s in first["searches"]] == [(2, 4)]
    rows = [json.loads(x) for x in cli("new", "-f", "jsonl").stdout.splitlines()]
    assert {r["search"] for r in rows} == {"alpha"}  # saved searches only, as documented
    assert sorted(r["pmid"] for r in rows) == [500, 501, 502, 503]  # = new to search
    server.state.add_docs([docs[900]], term="kratom alpha")
    table = cli("refresh", "--queries", str(folder))
    assert table.exit_code == 0
    assert re.search(r"alpha\W+complete\W+5\W+0\W+1\W", table.stdout)  # library 0, search 1
    assert "library" in table.stdout and "search" in table.stdout.split("alpha")[0]
    assert "T" not in table.stdout.split("modified in PubMed since ")[1][:12]  # local time
    assert "which 'kratomlit new' lists" in " ".join(table.stdout.split())
    rows = [json.loads(x) for x in cli("new", "-f", "jsonl").stdout.splitlines()]
    assert [(r["search"], r["pmid"], r["new_to_library"]) for r in rows] == \
        [("alpha", 900, False)]  # the ad hoc search had stored it before
    shown = cli("new")
    assert "1 records new to their saved search since" in " ".join(shown.stdout.split())
    assert "(0 of them new to the library" in " ".join(shown.stdout.split())


def _alpha(server, tmp_path: Path) -> Path:
    from datetime import date

    from tests.eutils_server import synthetic_doc

    server.state.add_docs([synthetic_doc(700 + i, date(2021, 1, 1 + i)) for i in range(3)],
                          term="kratom alpha")
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "alpha.toml").write_text('name = "alpha"\nterm = "kratom alpha"\n')
    return folder


def test_a_refresh_that_waits_for_another_says_so(cli, server, env, tmp_path):
    from filelock import FileLock

    folder = _alpha(server, tmp_path)
    home = Path(env["KRATOMLIT_HOME"])
    home.mkdir(parents=True)
    with FileLock(home / "refresh.lock"):  # another refresh holds it throughout
        waited = cli("refresh", "--queries", str(folder), "--wait", "0.3")
        quiet = cli("refresh", "--queries", str(folder), "--wait", "0.3", "--quiet")
        at_once = cli("refresh", "--queries", str(folder), "--wait", "0")
    assert waited.exit_code == 9 and "waiting up to 0.3 s" in waited.stderr
    assert quiet.exit_code == 9 and "waiting" not in quiet.stderr  # cron: errors only
    assert at_once.exit_code == 9 and "waiting" not in at_once.stderr


def test_quiet_leaves_no_progress_bar_on_a_terminal(cli, server, tmp_path, monkeypatch):
    from rich.console import Console

    from kratomlit import render

    folder = _alpha(server, tmp_path)
    screen = io.StringIO()
    monkeypatch.setattr(render, "err", Console(file=screen, force_terminal=True, width=80))
    assert cli("refresh", "--queries", str(folder), "--quiet").exit_code == 0
    assert screen.getvalue() == ""
    assert cli("refresh", "--queries", str(folder)).exit_code == 0
    assert screen.getvalue()  # the same console does show a bar without --quiet


def test_help_short_flag_completion_and_plain_flags(cli, monkeypatch):
    assert cli("-h").stdout == cli("--help").stdout
    assert "Usage: kratomlit list" in cli("list", "-h").stdout
    # --show-completion is a flag: Typer asks shellingham which shell runs us, by walking
    # up the process tree (a 'bash' after it is never read). Under 'sh -c pytest' that finds
    # sh ("Shell sh not supported", exit 1), so the test names the shell itself.
    import shellingham

    monkeypatch.setattr(shellingham, "detect_shell", lambda *a, **k: ("bash", "/bin/bash"))
    completion = cli("--show-completion")
    assert completion.exit_code == 0 and "_kratomlit_completion" in completion.stdout
    monkeypatch.setattr(shellingham, "detect_shell", lambda *a, **k: ("zsh", "/bin/zsh"))
    assert "#compdef kratomlit" in cli("--show-completion").stdout
    assert "<bool>" not in cli("search", "--help").stdout
    for command in ("list", "show", "searches", "export", "refresh", "new"):
        assert "<bool>" not in cli(command, "--help").stdout, command


def test_every_command_taking_saved_lists_the_known_names(cli, library, tmp_path):
    with sqlite3.connect(library) as db:
        db.execute("UPDATE searches SET name = 'kratom-test'")
    typo = "kratom-tset"
    for command in (["list"], ["export", "-f", "csv", "-o", "-"], ["new"]):
        result = cli(*command, "--saved", typo)
        assert result.exit_code == 2 and "kratom-test" in result.stderr, command
        assert not result.stdout
    for command in (["search"], ["refresh"]):  # saved-search files: shipped and the user's
        args = [*command, "--saved", typo] if command == ["search"] else [*command, typo]
        result = cli(*args)
        assert result.exit_code == 2 and "Known: kratom-all" in result.stderr, command


def test_tables_print_local_readable_times(cli, server, tmp_path):
    import os
    import time

    from kratomlit.render import local_time

    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    try:
        assert local_time("2026-12-04T15:06:59.123+00:00") == "4 Dec 2026 16:06"
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
    assert local_time("") == "" and local_time("2019 Jan") == "2019 Jan"
    folder = _alpha(server, tmp_path)
    assert cli("refresh", "--queries", str(folder), "--quiet").exit_code == 0
    info = cli("info").stdout
    assert re.search(r"last refresh: complete, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d\n", info)


def test_listing_text_in_pieces_has_one_header():
    from kratomlit.browse import ListRow, listing_text

    rows = [ListRow(p, 2020, "A B", f"=title {p}", "J", None if p % 2 else ["safety"], None,
                    None, "2026-01-01T00:00:00+00:00") for p in range(5)]
    text = "".join(listing_text(rows, "csv", size=2))
    parsed = _csv(text)
    assert [int(r["pmid"]) for r in parsed] == list(range(5)) and text.count("pmid,") == 1
    assert parsed[0]["title"] == "'=title 0" and parsed[0]["topics"] == "safety"
    lines = "".join(listing_text(rows, "jsonl", size=2)).splitlines()
    assert [json.loads(x)["topics"] for x in lines[:2]] == [["safety"], None]
    assert "".join(listing_text([], "csv")).startswith("pmid,year")
    assert "".join(listing_text([], "jsonl")) == ""


def test_list_skips_a_first_author_listed_in_error(cli, env):
    from kratomlit.models import Record
    from kratomlit.store import Library

    def person(last: str, valid: bool) -> dict:
        return {"last": last, "fore": "", "initials": "Q", "suffix": "", "collective": "",
                "affiliations": [], "valid": valid}

    with Library(Path(env["KRATOMLIT_HOME"]) / "library.db") as lib:
        search = lib.runs.get_search("x")
        lib.records.save_batch(search.id, [
            Record(pmid=7, title="t", authors=[person("Wrong", False), person("Right", True)],
                   raw_xml="<a/>"),
            Record(pmid=8, title="u", authors=[person("First", True)], raw_xml="<b/>")])
    rows = _csv(cli("list", "--format", "csv").stdout)
    assert [(r["pmid"], r["first_author"]) for r in rows] == [("8", "First Q"), ("7", "Right Q")]
