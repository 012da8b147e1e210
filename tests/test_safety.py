"""Nothing overwritten, nothing left half-done (issue 17, items 1, 6, 8, 9, 10, 11): real
files, real signals, real SQLite locks, the real CLI."""

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

import pytest

from kratomlit.models import Record
from kratomlit.store import Library
from tests.eutils_server import synthetic_doc

REPO = Path(__file__).resolve().parents[1]


def _home(env: dict[str, str]) -> Path:
    return Path(env["KRATOMLIT_HOME"])


def _library(env: dict[str, str], n: int = 3, title: str = "Kratom title {i}") -> Path:
    """A library of ``n`` synthetic records found by the saved search 'demo'."""
    path = _home(env) / "library.db"
    with Library(path) as lib:
        search = lib.runs.get_search("demo term", name="demo")
        for lo in range(0, n, 5000):
            lib.records.save_batch(search.id, [
                Record(pmid=1000 + i, title=title.format(i=i), abstract="Abstract " * 40,
                       pub_year=2020, raw_xml=f"<x{i}/>") for i in range(lo, min(n, lo + 5000))])
    return path


def _info_ok(cli) -> bool:
    result = cli("info")
    return result.exit_code == 0 and "records: " in result.stdout


# ---- 1. output paths ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["library.db", "library.db-wal", "http_cache.sqlite",
                                  "ratelimit.sqlite", "config.toml"])
def test_output_commands_refuse_kratomlits_own_files(cli, env, name):
    _library(env)
    target = _home(env) / name
    before = target.read_bytes() if target.exists() else None
    for args in (["export", "-f", "csv", "-o", str(target)],
                 ["new", "--since", "2000", "--format", "csv", "-o", str(target)]):
        result = cli(*args)
        assert result.exit_code == 2 and "kratomlit's own" in result.stderr, args
    assert (target.read_bytes() if target.exists() else None) == before
    assert _info_ok(cli)


def test_classify_output_refuses_the_library(cli, env, tmp_path):
    library = _library(env)
    gold = tmp_path / "in.jsonl"
    gold.write_text(json.dumps({"pmid": 1, "title": "t", "abstract": "a"}) + "\n")
    result = cli("classify", "--input", str(gold), "--output", str(library))
    assert result.exit_code == 2 and "kratomlit's own library.db" in result.stderr
    assert _info_ok(cli)


def test_output_refuses_devices_symlinks_and_folders(cli, env, tmp_path):
    _library(env)
    real = tmp_path / "real.csv"
    real.write_text("keep me")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    for target, what in ((Path("/dev/null"), "not a regular file"),
                         (link, "symbolic link"), (tmp_path, "folder")):
        result = cli("export", "-f", "csv", "-o", str(target))
        assert result.exit_code == 2 and what in result.stderr, (target, result.stderr)
    assert Path("/dev/null").is_char_device() and link.is_symlink()
    assert real.read_text() == "keep me"


def test_a_name_that_cannot_be_encoded_is_refused_before_writing(cli, env, tmp_path):
    _library(env)
    bad = tmp_path / os.fsdecode(b"k\xff.csv")
    result = cli("export", "-o", str(bad))
    assert result.exit_code == 2 and "not valid UTF-8" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


# ---- 6. SIGTERM and what a killed process leaves -------------------------------------------

def _run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kratomlit", *args], cwd=REPO,
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sigterm_during_an_xlsx_export_keeps_the_old_file_and_no_part(env, tmp_path):
    _library(env, n=30_000)
    target = tmp_path / "x.xlsx"
    target.write_text("the previous export")
    proc = _run(env, "export", "-o", str(target))
    _wait_for(lambda: any(p.suffix == ".part" for p in tmp_path.iterdir()))
    time.sleep(0.3)  # well inside the write
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Interrupted" in err and "Traceback" not in err
    assert target.read_text() == "the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "x.xlsx"]


def test_a_killed_exports_part_file_is_removed_by_the_next_export(cli, env, tmp_path):
    _library(env)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    leftover = tmp_path / f".k.csv.{dead.stdout.strip()}.abc123.part"
    leftover.write_text("half a file")
    other = tmp_path / ".other.csv.1.abc.part"  # not ours to judge: another target
    other.write_text("x")
    assert cli("export", "-o", str(tmp_path / "k.csv")).exit_code == 0
    assert not leftover.exists() and other.exists()


def test_sigterm_during_a_search_closes_its_run_as_interrupted(server, env):
    docs = [synthetic_doc(700 + i, date(2020, 1, 1)) for i in range(1200)]
    server.state.add_docs(docs, term="slow term")
    server.state.delays = {"efetch": 1.0}
    proc = _run(env, "search", "slow term")
    _wait_for(lambda: server.state.requests("efetch"))
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Interrupted" in err, err
    with sqlite3.connect(_home(env) / "library.db") as db:
        assert db.execute("SELECT status, error FROM runs").fetchall() == [
            ("failed", "interrupted")]


def test_a_run_left_running_by_a_killed_process_is_closed_by_the_next(cli, server, env):
    server.state.add_docs([synthetic_doc(800, date(2020, 1, 1))], term="kratom")
    assert cli("search", "kratom").exit_code == 0
    with sqlite3.connect(_home(env) / "library.db") as db:  # as SIGKILL leaves it
        db.execute("INSERT INTO runs (search_id, started, status, revisions_checked) "
                   "VALUES (1, '2026-01-01T00:00:00', 'running', 0)")
    assert cli("search", "kratom").exit_code == 0
    with sqlite3.connect(_home(env) / "library.db") as db:
        statuses = [r[0] for r in db.execute("SELECT status FROM runs ORDER BY id")]
    assert statuses == ["complete", "failed", "complete"]


# ---- 8 and 11. the exit code describes the disk; readers never wait for writers ---------

def test_readers_do_not_wait_for_a_writer_and_the_export_still_lands(cli, env, tmp_path):
    library = _library(env)
    writer = sqlite3.connect(library, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a refresh mid-transaction
    try:
        start = time.monotonic()
        assert _info_ok(cli)
        out = tmp_path / "k.csv"
        result = cli("export", "-o", str(out))
        took = time.monotonic() - start
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.exit_code == 0, result.stderr  # the file is there: success
    assert out.read_text().count("\n") == 4
    assert "could not record the export" in result.stderr
    assert took < 30  # the 60 s busy wait would be a hang to the analyst


def test_a_library_on_a_read_only_medium_still_reads(cli, env, tmp_path):
    library = _library(env)
    with sqlite3.connect(library) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.chmod(library, 0o444)
    try:
        out = tmp_path / "k.jsonl"
        result = cli("export", "-o", str(out))
    finally:
        os.chmod(library, 0o644)
    assert result.exit_code == 0 and out.read_text().count("\n") == 3


def test_a_long_lock_message_does_not_advise_moving_the_library():
    from kratomlit.store.core import _open_problem

    text = _open_problem(Path("lib.db"), sqlite3.OperationalError("database is locked"))
    assert "move it aside" not in text and "try again" in text and "Do not delete" in text


# ---- 9. one validation of saved searches --------------------------------------------------

@pytest.mark.parametrize("body,message", [
    ('name = "bad"\nterm = "kratom"\nmindate = "2022"\nmaxdate = "2020"\n',
     "mindate 2022-01-01 is after maxdate 2020-12-31"),
    ('name = "bad"\nterm = "kratom"\nmindate = 2020-01-01T10:00:00\n', "dates are written"),
    ('name = "bad"\nterm = "kratom"\ndescription = 3\n', "'description' must be a string"),
])
def test_saved_searches_are_validated_the_same_everywhere(cli, env, tmp_path, body, message):
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "bad.toml").write_text(body)
    user = _home(env) / "queries"
    user.mkdir(parents=True)
    (user / "bad.toml").write_text(body)
    refresh = cli("refresh", "--queries", str(folder))
    listing = cli("queries", "--queries", str(folder))
    search = cli("search", "--saved", "bad")
    assert refresh.exit_code == 2 and search.exit_code == 2
    for result in (refresh, listing, search):
        assert message in result.stderr, result.stderr


def test_two_files_with_one_name_are_reported(cli, env, tmp_path):
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "a.toml").write_text('name = "same"\nterm = "kratom"\n')
    (folder / "b.toml").write_text('name = "same"\nterm = "mitragynine"\n')
    result = cli("queries", "--queries", str(folder), "--terms")
    assert "already taken" in result.stderr and "kratom" in result.stdout


# ---- 10. JSON lines that line readers cannot split ---------------------------------------

def test_every_jsonl_writer_escapes_unicode_line_breaks(cli, env, server, tmp_path):
    _library(env, n=4, title="Kratom\u0085 next\u2028line\u2029para {i}")
    with sqlite3.connect(_home(env) / "library.db") as db:  # 'new' lists finished refreshes
        db.execute("INSERT INTO refreshes (started, finished, status) VALUES "
                   "('2000-01-01', '2000-01-01', 'complete')")
    out = tmp_path / "k.jsonl"
    assert cli("export", "-o", str(out)).exit_code == 0
    digest = cli("new", "--since", "2000", "--format", "jsonl").stdout
    for text in (out.read_text(encoding="utf-8"), digest):
        assert len(text.splitlines()) == 4
        assert not {"\u0085", "\u2028", "\u2029"} & set(text)
        assert json.loads(text.splitlines()[0])["title"].startswith("Kratom\u0085 next")
