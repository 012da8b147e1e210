"""The fault matrix: each fault NCBI is known to produce, injected by the local server into a
real CLI run; afterwards the library must hold exactly the server's PMIDs (none lost, none
twice) or fail with the exit code and message that say what happened, and a re-run must
complete. Also: SIGKILL mid-fetch, unusable homes, and politeness while retrying.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import requests

from kratomlit import eutils
from kratomlit.search import IN_FLIGHT
from tests.eutils_server import EUtilsServer, synthetic_doc
from tests.helpers import library_pmids

ROOT = Path(__file__).resolve().parents[1]
TERM = "matrix"
N_DOCS = 1100  # three EFetch batches of 500
PAGE = 400  # Ids per ESearch page, so the listing takes three pages


def hits(env: dict[str, str]) -> list[int]:
    with sqlite3.connect(Path(env["KRATOMLIT_HOME"]) / "library.db") as db:
        return [r[0] for r in db.execute("SELECT pmid FROM hits")]


@pytest.fixture
def matrix(server: EUtilsServer) -> EUtilsServer:
    docs = [synthetic_doc(7_000_000 + i, date(2000 + i % 20, 1 + i % 12, 1))
            for i in range(N_DOCS)]
    server.state.add_docs(docs, term=TERM)
    server.state.page_cap = PAGE
    return server


def _newer(n: int) -> list[tuple[str, object]]:
    """Records PubMed 'indexes while we page': newest first, so they shift every page."""
    return [(TERM, synthetic_doc(7_900_000 + i, date(2025, 1, 1))) for i in range(n)]


# name: (faults, extra env, retries the client must report)
RECOVERED = {
    "429 burst": ({"esearch": ["429"], "efetch": [None, "429"]}, {}, 2),
    "500 once": ({"esearch": ["500"], "efetch": [None, "500"]}, {}, 2),
    "500 repeatedly": ({"efetch": [None, None, "500", "500", "500", "500"]}, {}, 4),
    "502 once": ({"esearch": [None, "502"], "efetch": ["502"]}, {}, 2),
    "502 repeatedly": ({"esearch": ["502"] * 4}, {}, 4),
    "503 once": ({"efetch": ["503"]}, {}, 1),
    "503 repeatedly": ({"esearch": [None, None, "503", "503", "503"]}, {}, 3),
    "connection reset": ({"esearch": ["reset"], "efetch": [None, "reset"]}, {}, 2),
    "closed without an answer": ({"efetch": ["disconnect", "disconnect"]}, {}, 2),
    "read timeout": ({"esearch": ["stall"], "efetch": [None, "stall"]},
                     {"KRATOMLIT_TIMEOUT": "0.4"}, 2),
    "truncated efetch body": ({"efetch": ["truncate", None, "truncate"]}, {}, 2),
    "malformed XML": ({"efetch": [None, "malformed"]}, {}, 1),
    "HTML error page with 200": ({"esearch": ["html200"], "efetch": ["html200"]}, {}, 2),
    "empty 200": ({"esearch": [None, "empty200"], "efetch": ["empty200"]}, {}, 2),
    "esearch ERROR once": ({"esearch": [None, "error"]}, {}, 1),
    "expired WebEnv mid-paging": ({"esearch": [None, "webenv"]}, {}, 1),
}


@pytest.mark.parametrize("name", list(RECOVERED))
def test_recovered_faults_keep_every_record_once(name, cli, matrix, env, monkeypatch):
    faults, extra, retries = RECOVERED[name]
    matrix.state.stall_s = 1.0
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    matrix.state.faults = {k: list(v) for k, v in faults.items()}
    result = cli("search", TERM, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert sorted(library_pmids(env)) == sorted(matrix.state.truth(TERM))
    assert len(hits(env)) == len(set(hits(env))) == N_DOCS
    assert summary["count"] == summary["listed"] == summary["new"] == N_DOCS
    assert summary["retries"] == retries and summary["complete"]
    assert not any(matrix.state.faults.values())  # every fault was really served
    assert matrix.state.max_in_window(1.0) <= 10  # NCBI's limit with a key, retries included


# name: (faults, extra env, exit code, message, requests the failing endpoint got).
# A search keeps up to IN_FLIGHT EFetch requests in flight; once one fails only it is
# retried, so the count may also hold requests of other batches already on the wire.
FAILED = {
    "429 continuously": ({"esearch": ["429"] * 60}, {"KRATOMLIT_MAX_TRIES": "3"}, 3,
                         "API rate limit exceeded", 3),
    "500 on every try": ({"efetch": [None] + ["500"] * 60}, {"KRATOMLIT_MAX_TRIES": "3"}, 3,
                         "HTTP 500", 4),
    "502 on every try": ({"efetch": [None, None] + ["502"] * 60}, {"KRATOMLIT_MAX_TRIES": "5"},
                         3, "HTTP 502", 7),
    "503 on every try": ({"esearch": ["503"] * 60}, {"KRATOMLIT_MAX_TRIES": "2"}, 3,
                         "HTTP 503", 2),
    "read timeout every try": ({"efetch": ["stall"] * 60},
                               {"KRATOMLIT_TIMEOUT": "0.3", "KRATOMLIT_MAX_TRIES": "2"}, 3,
                               "timed out", 2),
    "esearch ERROR every try": ({"esearch": ["error"] * 60}, {}, 4, "Search Backend failed", 3),
    "expired WebEnv every try": ({"esearch": [None] + ["webenv"] * 60}, {}, 4,
                                 "Unable to obtain query #1", 4),
    "truncated every try": ({"efetch": [None] + ["truncate"] * 60},
                            {"KRATOMLIT_MAX_TRIES": "2"}, 3, "efetch.fcgi", 3),
}


@pytest.mark.parametrize("name", list(FAILED))
def test_persistent_faults_fail_clearly_keep_what_was_stored_and_rerun_completes(
        name, cli, matrix, env, monkeypatch):
    faults, extra, code, message, tries = FAILED[name]
    matrix.state.stall_s = 1.0
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    matrix.state.faults = {k: list(v) for k, v in faults.items()}
    failing = next(iter(faults))
    result = cli("search", TERM)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # one message, wrapped at most
    on_the_wire = IN_FLIGHT - 1 if failing == "efetch" else 0
    assert tries <= len(matrix.state.requests(failing)) <= tries + on_the_wire  # bounded
    held = library_pmids(env)
    truth = matrix.state.truth(TERM)
    assert len(held) == len(set(held)) and set(held) <= truth
    for ids in {e.params["id"] for e in matrix.state.requests("efetch")}:
        batch = {int(p) for p in ids.split(",")}  # stored whole or not at all
        assert batch <= set(held) or not batch & set(held)
    matrix.state.faults = {}
    again = cli("search", TERM, "--json")
    assert again.exit_code == 0, again.stderr
    assert sorted(library_pmids(env)) == sorted(truth)
    assert json.loads(again.stdout)["new"] == N_DOCS - len(held)


def test_a_batch_failing_for_good_keeps_the_later_batches_that_arrived(cli, matrix, env,
                                                                       monkeypatch):
    """The first of three batches fails on every try while the other two, fetched beside
    it, arrive: they are stored before the error is raised, nothing more is sent, and a
    re-run fetches only the failed batch."""
    monkeypatch.setenv("KRATOMLIT_MAX_TRIES", "2")
    matrix.state.page_cap = None
    listed = requests.get(matrix.url + "esearch.fcgi", timeout=10, params={
        "db": "pubmed", "term": TERM, "retmax": 9999}).text  # the order a search fetches in
    first_batch = [int(p) for p in re.findall(r"<Id>(\d+)</Id>", listed)[:500]]
    matrix.state.failing_pmids = {first_batch[0]}
    matrix.state.delays["efetch"] = 0.5  # each answer takes a while: the three go out together
    result = cli("search", TERM)
    assert result.exit_code == 3 and "HTTP 500" in result.stderr
    truth, held = matrix.state.truth(TERM), set(library_pmids(env))
    fetched = matrix.state.requests("efetch")
    arrived = {int(p) for e in fetched if e.status == 200 for p in e.params["id"].split(",")}
    assert held == arrived and held and not held & set(first_batch)  # batches 2, 3 kept
    assert len([e for e in fetched if e.status == 500]) == 2  # max_tries, then nothing
    matrix.state.failing_pmids, matrix.state.delays = set(), {}
    again = cli("search", TERM, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["new"] == len(truth - held)
    assert sorted(library_pmids(env)) == sorted(truth)


def test_count_growing_between_pages_lists_everything_once(cli, matrix, env):
    matrix.state.pending = _newer(7)  # type: ignore[assignment]
    matrix.state.faults = {"esearch": [None, "grow"]}  # after page 1, before page 2
    result = cli("search", TERM, "--json")
    summary = json.loads(result.stdout)
    truth = matrix.state.truth(TERM)
    assert len(truth) == N_DOCS + 7
    held = library_pmids(env)
    assert len(held) == len(set(held))
    assert result.exit_code == 0, result.stderr
    assert sorted(held) == sorted(truth)
    assert summary["count"] == summary["listed"] == summary["new"] == N_DOCS + 7


def test_count_shrinking_between_pages_loses_nothing_still_there(cli, matrix, env):
    matrix.state.faults = {"esearch": [None, "grow"]}
    gone = sorted(matrix.state.terms[TERM])[:5]

    def shrink() -> None:  # five records leave the search while we page
        matrix.state.terms[TERM] = [p for p in matrix.state.terms[TERM] if p not in gone]

    matrix.state.grow = shrink  # type: ignore[method-assign]
    result = cli("search", TERM, "--json")
    assert result.exit_code == 0, result.stderr
    held = library_pmids(env)
    assert len(held) == len(set(held)) and set(held) >= matrix.state.truth(TERM)


def test_count_growing_while_a_big_search_is_sliced_lists_everything_once(server, env):
    from kratomlit.config import load_settings
    from kratomlit.eutils import EUtilsClient
    from kratomlit.session import make_session

    server.state.window = 40  # a small window exercises the slicing logic
    server.state.add_docs([synthetic_doc(7_500_000 + i, date(2000 + i % 20, 6, 1))
                           for i in range(100)], term="sliced")
    server.state.pending = [("sliced", synthetic_doc(7_600_000 + i, date(2001, 3, 1)))
                            for i in range(5)]  # land in a slice not yet listed
    server.state.faults = {"esearch": [None, None, "grow"]}
    with make_session(load_settings()) as session:
        client = EUtilsClient(session, server.url, window=40, sleep=lambda s: None)
        found = client.search("sliced")
    assert found.slices > 1 and len(found.ids) == len(set(found.ids)) == 105
    assert set(found.ids) == server.state.truth("sliced") and found.count == 105


def test_sigkill_mid_fetch_then_rerun_stores_every_record_once(matrix, env):
    matrix.state.delays = {"efetch": 1.5}
    run_env = {**os.environ, **env}
    cmd = [sys.executable, "-m", "kratomlit", "search", TERM, "--json"]
    proc = subprocess.Popen(cmd, env=run_env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(_quiet_stored(env)) < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    first = library_pmids(env)
    assert 500 <= len(first) < N_DOCS and len(first) % 500 == 0
    matrix.state.delays = {}
    again = subprocess.run(cmd, env=run_env, cwd=ROOT, capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["new"] == N_DOCS - len(first)
    held = library_pmids(env)
    assert sorted(held) == sorted(matrix.state.truth(TERM))
    with sqlite3.connect(Path(env["KRATOMLIT_HOME"]) / "library.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*), count(DISTINCT pmid) FROM hits").fetchone() == (
            N_DOCS, N_DOCS)


def _quiet_stored(env: dict[str, str]) -> list[int]:
    try:
        return library_pmids(env)
    except sqlite3.Error:  # the library is still being created
        return []


def test_an_esearch_error_without_the_xml_prolog_is_ncbis_error_not_garbage():
    from kratomlit.eutils import _read_esearch
    from kratomlit.parse import InBandError

    with pytest.raises(InBandError, match="Unable to obtain query #1"):
        _read_esearch(b"<eSearchResult><ERROR>Unable to obtain query #1</ERROR></eSearchResult>")


# ---- retries are polite, bounded and configurable ------------------------------------

def test_fault_storm_without_a_key_stays_within_3_per_second(cli, matrix, env, monkeypatch):
    monkeypatch.delenv("NCBI_API_KEY")
    matrix.state.faults = {"esearch": ["429", "503", "reset"],
                           "efetch": ["empty200", "502", "truncate"]}
    result = cli("search", TERM, "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(library_pmids(env)) == sorted(matrix.state.truth(TERM))
    assert len(matrix.state.log) == 6 + 6
    assert matrix.state.max_in_window(1.0) <= 3


def test_backoff_grows_and_each_wait_is_kept(cli, matrix, env, monkeypatch):
    monkeypatch.setattr(eutils, "BACKOFF_BASE_S", 0.05)
    monkeypatch.setenv("KRATOMLIT_MAX_TRIES", "6")
    matrix.state.faults = {"esearch": ["503"] * 6}
    assert cli("search", TERM).exit_code == 3
    log = (Path(env["KRATOMLIT_HOME"]) / "logs" / "kratomlit.log").read_text()
    waits = [float(w) for w in re.findall(r"retrying esearch\.fcgi in ([\d.]+) s", log)]
    assert len(waits) == 5  # six tries, five waits
    assert waits == sorted(waits) and waits[-1] >= 4 * waits[0]
    arrivals = [e.t for e in matrix.state.requests("esearch")]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert all(gap >= wait - 0.06 for gap, wait in zip(gaps, waits, strict=True))


def test_retry_after_is_honoured(cli, matrix, env, monkeypatch):
    # 2 s: longer than the 10 ms test backoff and than any limiter delay (1.1 s window), so
    # only an honoured Retry-After explains the wait
    matrix.state.retry_after = "2"
    matrix.state.faults = {"esearch": ["429"]}
    assert cli("search", TERM).exit_code == 0
    first, second = matrix.state.requests("esearch")[:2]
    assert 1.95 <= second.t - first.t < 3.5
    log = (Path(env["KRATOMLIT_HOME"]) / "logs" / "kratomlit.log").read_text()
    assert "retrying esearch.fcgi in 2.0 s" in log


def test_a_429_is_handled_by_one_policy_the_clients(cli, matrix, env):
    """requests-ratelimiter would fill the bucket after a 429 (a 1.1 s penalty on top of the
    client's backoff and Retry-After); with one policy, Retry-After: 0 means the backoff."""
    matrix.state.retry_after = "0"
    matrix.state.faults = {"esearch": ["429"]}
    assert cli("search", TERM).exit_code == 0
    first, second = matrix.state.requests("esearch")[:2]
    assert second.t - first.t < 0.6


@pytest.mark.parametrize("how", ["option", "env", "file"])
def test_max_tries_is_configurable_everywhere(how, cli, matrix, env, monkeypatch):
    matrix.state.faults = {"esearch": ["500"] * 60}
    home = Path(env["KRATOMLIT_HOME"])
    args = ["search", TERM]
    if how == "option":
        args = ["--max-tries", "2", *args]
    elif how == "env":
        monkeypatch.setenv("KRATOMLIT_MAX_TRIES", "2")
    else:
        home.mkdir(parents=True)
        (home / "config.toml").write_text("max_tries = 2\n")
        monkeypatch.setenv("KRATOMLIT_MAX_TRIES", "")  # unset: the file decides
    result = cli(*args)
    assert result.exit_code == 3 and "after 2 tries" in result.stderr
    assert len(matrix.state.requests("esearch")) == 2


@pytest.mark.parametrize("value", ["0", "51", "three", "-1"])
def test_bad_max_tries_is_a_usage_error(value, cli, env, monkeypatch):
    monkeypatch.setenv("KRATOMLIT_MAX_TRIES", value)
    result = cli("search", TERM)
    assert result.exit_code == 2 and "KRATOMLIT_MAX_TRIES" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "1e10", "0", "-1"])
def test_bad_timeout_is_a_usage_error_not_a_traceback(value, cli, env, monkeypatch):
    monkeypatch.setenv("KRATOMLIT_TIMEOUT", value)
    result = cli("search", TERM)
    assert result.exit_code == 2 and "KRATOMLIT_TIMEOUT" in result.stderr
    monkeypatch.delenv("KRATOMLIT_TIMEOUT")
    flag = cli("--timeout", value, "search", TERM)
    assert flag.exit_code == 2 and "--timeout" in flag.stderr


# ---- the home and the library cannot be written --------------------------------------

@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (who ignores modes): chattr +i, else chmod."""
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root without chattr: cannot make a file read-only")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    mode = path.stat().st_mode
    path.chmod(0o500 if path.is_dir() else 0o400)
    try:
        yield
    finally:
        path.chmod(mode)


def test_missing_home_is_created(cli, matrix, env):
    assert not Path(env["KRATOMLIT_HOME"]).exists()
    assert cli("search", TERM).exit_code == 0
    assert sorted(library_pmids(env)) == sorted(matrix.state.truth(TERM))


def test_unwritable_home_is_a_storage_error(cli, matrix, env):
    home = Path(env["KRATOMLIT_HOME"])
    home.mkdir()
    with read_only(home):
        result = cli("search", TERM)
    assert result.exit_code == 5 and "KRATOMLIT_HOME" in result.stderr
    assert "Traceback" not in result.stderr and not list(home.iterdir())


def test_read_only_library_is_a_storage_error_and_unchanged(cli, matrix, env):
    assert cli("search", TERM, "--max", "3").exit_code == 0
    db = Path(env["KRATOMLIT_HOME"]) / "library.db"
    before = db.read_bytes()
    with read_only(db):
        result = cli("search", TERM)
    assert result.exit_code == 5 and "readonly" in result.stderr
    assert "KRATOMLIT_HOME" in result.stderr
    assert "Traceback" not in result.stderr and db.read_bytes() == before
    assert len(library_pmids(env)) == 3
    again = cli("search", TERM)  # writable again: the run completes
    assert again.exit_code == 0, again.stderr
    assert sorted(library_pmids(env)) == sorted(matrix.state.truth(TERM))
