"""`kratomlit refresh` and `kratomlit new` through the real CLI against the local server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.eutils_server import EUtilsServer, synthetic_doc
from tests.helpers import library_pmids

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def qdir(tmp_path: Path) -> Path:
    """Two saved searches; 'alpha' and 'beta' share one record."""
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "alpha.toml").write_text('name = "alpha"\nterm = "kratom alpha"\n')
    (folder / "beta.toml").write_text('name = "beta"\nterm = "kratom beta"\n')
    return folder


@pytest.fixture
def two_searches(server: EUtilsServer) -> EUtilsServer:
    docs = [synthetic_doc(500 + i, date(2020, 1, 1 + i)) for i in range(6)]
    server.state.add_docs(docs[:4], term="kratom alpha")
    server.state.add_docs(docs[3:], term="kratom beta")  # 503 is in both
    return server


def add(server: EUtilsServer, pmid: int, term: str) -> None:
    doc = synthetic_doc(pmid, date(2021, 3, 1))
    server.state.add_docs([doc], term=term)


def refresh_json(cli, *args: str) -> dict:
    result = cli("refresh", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def fetched_ids(server: EUtilsServer, since: int = 0) -> list[int]:
    return [int(i) for r in server.state.requests("efetch")[since:]
            for i in r.params["id"].split(",")]


def test_first_refresh_stores_every_search_and_labels_them(cli, two_searches, qdir, env):
    summary = refresh_json(cli, "--queries", str(qdir))
    assert summary["status"] == "complete" and summary["exit_code"] == 0
    assert [(s["name"], s["hits"], s["new"]) for s in summary["searches"]] == \
        [("alpha", 4, 4), ("beta", 3, 2)]
    assert library_pmids(env) == [500, 501, 502, 503, 504, 505]
    assert summary["labelled"] == 6
    assert sorted(fetched_ids(two_searches)) == [500, 501, 502, 503, 504, 505]


def test_unchanged_second_run_makes_one_esearch_per_search_and_no_efetch(
        cli, two_searches, qdir):
    refresh_json(cli, "--queries", str(qdir))
    searches, fetches = (len(two_searches.state.requests(e)) for e in ("esearch", "efetch"))
    summary = refresh_json(cli, "--queries", str(qdir))
    assert summary["new"] == 0 and summary["revised"] == 0
    assert len(two_searches.state.requests("efetch")) == fetches
    # one per saved search (never from the HTTP cache) + one [mdat] check for them all
    assert len(two_searches.state.requests("esearch")) - searches == 2 + 1
    mdat = two_searches.state.requests("esearch")[-1].params["term"]
    assert "(kratom alpha) OR (kratom beta)" in mdat and "[mdat]" in mdat


def test_a_new_record_is_fetched_alone_even_with_an_old_date(cli, two_searches, qdir, env):
    refresh_json(cli, "--queries", str(qdir))
    seen = len(two_searches.state.requests("efetch"))
    old = synthetic_doc(77, date(1999, 5, 1))  # published long ago, indexed only now
    two_searches.state.add_docs([old], term="kratom beta")
    summary = refresh_json(cli, "--queries", str(qdir))
    assert fetched_ids(two_searches, seen) == [77]
    assert [s["new"] for s in summary["searches"]] == [0, 1]
    assert library_pmids(env).count(77) == 1


def test_a_revised_record_is_fetched_again_and_updated(cli, two_searches, qdir, env):
    refresh_json(cli, "--queries", str(qdir))
    seen = len(two_searches.state.requests("efetch"))
    revised = synthetic_doc(503, date(2020, 1, 4), title="Corrected title", mdat=date.today())
    two_searches.state.docs[503] = revised
    summary = refresh_json(cli, "--queries", str(qdir))
    assert fetched_ids(two_searches, seen) == [503]
    assert summary["revised"] == 1
    assert [s["updated"] for s in summary["searches"]] == [1, 1]  # both searches hold it
    db = sqlite3.connect(Path(env["KRATOMLIT_HOME"]) / "library.db")
    assert db.execute("SELECT title FROM records WHERE pmid=503").fetchone() == \
        ("Corrected title",)
    assert db.execute("SELECT count(*) FROM labels WHERE pmid=503").fetchone() == (1,)
    assert db.execute("SELECT updated, new, requests FROM runs WHERE refresh_id=2 "
                      "ORDER BY search_id").fetchall() == [(1, 0, 1), (1, 0, 1)]


def test_records_revised_today_are_not_fetched_again_by_later_runs(cli, two_searches, qdir):
    refresh_json(cli, "--queries", str(qdir))
    doc = synthetic_doc(900, date(2021, 1, 1), mdat=date.today())  # new and revised today
    two_searches.state.add_docs([doc], term="kratom alpha")
    refresh_json(cli, "--queries", str(qdir))
    assert fetched_ids(two_searches)[-1] == 900
    seen = len(two_searches.state.requests("efetch"))
    for _ in range(3):  # the [mdat] window lists it for days; the library holds it
        assert refresh_json(cli, "--queries", str(qdir))["revised"] == 0
    assert fetched_ids(two_searches, seen) == []


def test_named_searches_only(cli, two_searches, qdir):
    summary = refresh_json(cli, "beta", "--queries", str(qdir))
    assert [s["name"] for s in summary["searches"]] == ["beta"]


def test_unknown_name_and_empty_folder_are_usage_errors(cli, two_searches, qdir, tmp_path):
    result = cli("refresh", "gamma", "--queries", str(qdir))
    assert result.exit_code == 2 and "No saved search named 'gamma'" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("refresh", "--queries", str(empty))
    assert result.exit_code == 2 and "no saved searches" in result.stderr


def test_one_failing_search_is_partial_and_the_rest_is_saved(cli, two_searches, qdir, env):
    (qdir / "broken.toml").write_text('name = "broken"\nterm = "kratom (alpha"\n')
    result = cli("refresh", "--queries", str(qdir), "--json")
    assert result.exit_code == 10, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "partial"
    status = {s["name"]: s["status"] for s in summary["searches"]}
    assert status == {"alpha": "complete", "beta": "complete", "broken": "failed"}
    assert "partial" in result.stderr and "broken" in result.stderr
    assert library_pmids(env) == [500, 501, 502, 503, 504, 505]


def test_unreadable_query_file_makes_the_run_partial(cli, two_searches, qdir):
    (qdir / "bad.toml").write_text("this is = = not toml")
    result = cli("refresh", "--queries", str(qdir), "--json")
    assert result.exit_code == 10
    assert "bad.toml" in json.loads(result.stdout)["problems"][0]
    assert "was partial (Saved search" in result.stderr and "bad.toml" in result.stderr
    assert "2 of 2 saved searches ran and are up to date; fix the problem" in result.stderr


def test_ncbi_unreachable_fails_cleanly_and_the_next_run_catches_up(
        cli, two_searches, qdir, env, monkeypatch):
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    monkeypatch.setenv("KRATOMLIT_EUTILS_URL", f"http://127.0.0.1:{port}/entrez/eutils/")
    result = cli("refresh", "--queries", str(qdir), "--json")
    assert result.exit_code == 3, result.stderr
    summary = json.loads(result.stdout)
    assert [s["status"] for s in summary["searches"]] == ["failed", "skipped"]
    assert "saved nothing new" in result.stderr and "next refresh catches up" in result.stderr
    monkeypatch.setenv("KRATOMLIT_EUTILS_URL", env["KRATOMLIT_EUTILS_URL"])
    assert refresh_json(cli, "--queries", str(qdir))["new"] == 6


def test_quiet_prints_nothing_and_the_log_has_one_line_per_event(cli, two_searches, qdir, env):
    result = cli("refresh", "--queries", str(qdir), "--quiet")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    log = (Path(env["KRATOMLIT_HOME"]) / "logs" / "kratomlit.log").read_text()
    events = [line for line in log.splitlines() if "refresh 1 " in line]
    assert "started: 2 saved searches" in events[0]
    assert any("search alpha complete: 4 hits, 4 new" in e for e in events)
    assert "finished: complete" in events[-1]


def test_off_a_terminal_the_table_has_no_colour_codes(cli, two_searches, qdir):
    result = cli("refresh", "--queries", str(qdir))
    assert result.exit_code == 0 and "alpha" in result.stdout
    assert "\x1b[" not in result.stdout + result.stderr


def test_new_lists_what_the_latest_refresh_found(cli, two_searches, qdir, tmp_path):
    refresh_json(cli, "--queries", str(qdir))
    add(two_searches, 900, "kratom alpha")
    add(two_searches, 901, "kratom beta")
    digests = tmp_path / "digests"
    summary = refresh_json(cli, "--queries", str(qdir), "--export-new", str(digests))
    rows = [json.loads(line) for line in
            cli("new", "--format", "jsonl").stdout.splitlines()]
    assert cli("new", "--since", "LAST_RUN", "-f", "jsonl").stdout == \
        cli("new", "--since", "last", "-f", "jsonl").stdout
    assert [(r["search"], r["pmid"]) for r in rows] == [("alpha", 900), ("beta", 901)]
    assert rows[0]["url"] == "https://pubmed.ncbi.nlm.nih.gov/900/"
    files = list(digests.glob("kratomlit-new-*.csv"))
    assert [str(f) for f in files] == [summary["digest"]]
    assert sorted(pd.read_csv(files[0])["pmid"]) == [900, 901]
    everything = cli("new", "--since", "2000", "--format", "csv").stdout
    assert sorted(pd.read_csv(__import__("io").StringIO(everything))["pmid"]) == \
        [500, 501, 502, 503, 503, 504, 505, 900, 901]  # 503 under each search
    table = cli("new", "--saved", "beta")
    assert table.exit_code == 0 and "901" in table.stdout and "900" not in table.stdout
    assert rows[0]["topics"] is not None and isinstance(rows[0]["topics"], list)
    unknown = cli("new", "--saved", "gamma")
    assert unknown.exit_code == 2 and "no saved search named gamma" in unknown.stderr
    out = tmp_path / "digest.csv"
    assert cli("new", "-o", str(out)).exit_code == 0  # format from the file's ending
    assert sorted(pd.read_csv(out)["pmid"]) == [900, 901]


def test_new_before_any_refresh_says_what_to_do(cli, two_searches):
    assert cli("search", "kratom alpha").exit_code == 0
    result = cli("new")
    assert result.exit_code == 2 and "Run 'kratomlit refresh' first" in result.stderr


def _refresh_proc(env: dict[str, str], qdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kratomlit", "refresh", "--queries", str(qdir), "--json", *args],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _wait_for(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_overlapping_runs_never_interleave(two_searches, qdir, env):
    # the first run holds the lock, mid-fetch, for longer than a loaded machine takes to
    # start the second process
    two_searches.state.delays["efetch"] = 4.0
    first = _refresh_proc(env, qdir)
    _wait_for(lambda: two_searches.state.requests("efetch"))
    second = _refresh_proc(env, qdir, "--wait", "0")
    out2, err = second.communicate(timeout=60)
    assert second.returncode == 9, err
    assert json.loads(out2)["status"] == "busy"  # --json logs even this run
    assert "Another kratomlit refresh is running" in err
    log = (Path(env["KRATOMLIT_HOME"]) / "logs" / "kratomlit.log").read_text()
    assert "refresh not started: another refresh held" in log
    third = _refresh_proc(env, qdir, "--wait", "60")  # waits for the first, then runs
    out1, err1 = first.communicate(timeout=60)
    out3, err3 = third.communicate(timeout=60)
    assert first.returncode == 0 and third.returncode == 0, err1 + err3
    assert json.loads(out1)["new"] == 6 and json.loads(out3)["new"] == 0
    fetched = fetched_ids(two_searches)
    assert sorted(fetched) == sorted(set(fetched))  # no record fetched twice


def test_a_refresh_killed_mid_fetch_is_finished_by_the_next(server, qdir, env):
    # 8 batches: with three requests in flight, the kill must still land mid-fetch
    docs = [synthetic_doc(10_000 + i, date(2020, 1, 1)) for i in range(4_000)]
    server.state.add_docs(docs, term="kratom alpha")
    server.state.add_docs(docs[:10], term="kratom beta")
    server.state.delays["efetch"] = 0.3
    library = Path(env["KRATOMLIT_HOME"]) / "library.db"

    def stored() -> int:
        if not library.exists():
            return 0
        db = sqlite3.connect(library, timeout=30)
        try:
            return int(db.execute("SELECT count(*) FROM records").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0
        finally:
            db.close()

    proc = _refresh_proc(env, qdir)
    _wait_for(lambda: stored() >= 500)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    held_after_kill = set(library_pmids(env))
    assert 500 <= len(held_after_kill) < 4_000
    before = len(server.state.requests("efetch"))
    server.state.delays.clear()
    out = subprocess.run(
        [sys.executable, "-m", "kratomlit", "refresh", "--queries", str(qdir), "--json"],
        cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pmids = library_pmids(env)
    assert pmids == sorted({d.pmid for d in docs})  # every PMID, exactly once
    assert not held_after_kill & set(fetched_ids(server, before))  # held ones not refetched
    db = sqlite3.connect(library)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert [r[0] for r in db.execute("SELECT status FROM refreshes ORDER BY id")] == \
        ["interrupted", "complete"]
    assert db.execute("SELECT count(*) FROM runs WHERE status='running'").fetchone() == (0,)


def test_a_long_combined_revision_check_is_sent_by_post(cli, server, tmp_path):
    folder = tmp_path / "long"
    folder.mkdir()
    terms = [f"kratom {n} " + " OR ".join(f"word{n}x{i}" for i in range(60)) for n in "ab"]
    for n, term in zip("ab", terms, strict=True):
        (folder / f"{n}.toml").write_text(f'name = "{n}"\nterm = "{term}"\n')
        server.state.add_docs([synthetic_doc(ord(n), date(2020, 1, 1))], term=term)
    refresh_json(cli, "--queries", str(folder))
    refresh_json(cli, "--queries", str(folder))
    check = server.state.requests("esearch")[-1]
    assert check.method == "POST" and check.params["term"].endswith("[mdat]")


def test_new_as_csv_neutralises_formula_titles(cli, server, qdir):
    doc = synthetic_doc(600, date(2020, 1, 1), title="=HYPERLINK(&quot;http://x&quot;)")
    server.state.add_docs([doc], term="kratom alpha")
    server.state.add_docs([synthetic_doc(601, date(2020, 1, 1))], term="kratom beta")
    refresh_json(cli, "--queries", str(qdir))
    out = cli("new", "--since", "2000", "--format", "csv").stdout
    titles = pd.read_csv(__import__("io").StringIO(out)).set_index("pmid")["title"]
    assert titles[600] == "'=HYPERLINK(\"http://x\")"


def test_queries_lists_and_checks_a_refresh_folder(cli, qdir):
    (qdir / "bad.toml").write_text("term = 3")
    result = cli("queries", "--queries", str(qdir), "--terms")
    assert result.exit_code == 0
    assert "alpha" in result.stdout and "kratom beta" in result.stdout
    assert "kratom-oud" not in result.stdout  # shipped searches are not in that folder
    assert "bad.toml" in result.stderr
