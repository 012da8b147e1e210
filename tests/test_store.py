"""The library: migrations, one transaction per batch, resuming an interrupted search."""

from __future__ import annotations

import json
import sqlite3
from datetime import date

from kratomlit.migrations import MIGRATIONS
from kratomlit.models import Record
from kratomlit.store import Library
from tests.eutils_server import synthetic_doc

EXPECTED_TABLES = {"_migrations", "records", "searches", "runs", "hits", "labels"}


def test_migrations_create_schema_once(tmp_path):
    path = tmp_path / "lib.db"
    Library(path).close()
    Library(path).close()  # reopening applies nothing twice
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert EXPECTED_TABLES <= tables
    applied = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == [m.__name__ for m in MIGRATIONS]
    cols = {r[1] for r in db.execute("PRAGMA table_info(records)")}
    assert {"pmid", "data", "raw_xml", "first_stored", "last_fetched", "deleted_at"} <= cols


def test_live_records_are_found_without_reading_their_xml(tmp_path):
    """Counting and paging the records PubMed has not deleted (after every search, for
    the labels) use the ``records_live`` index, not a walk through every record's XML."""
    with Library(tmp_path / "lib.db") as lib:
        lib.records.save_batch(None, [Record(pmid=p, title="t", raw_xml="<x/>" * 3000)
                                      for p in (1, 2, 3)], deleted=[2])
        assert lib.records.count() == 2
        assert [r.pmid for r in lib.labels.to_label("v1")] == [1, 3]
        plans = [" ".join(str(c) for c in row) for sql, args in (
            ("SELECT count(*) FROM records WHERE deleted_at IS NULL", ()),
            ("SELECT r.pmid, r.data FROM records r LEFT JOIN labels t ON t.pmid = r.pmid "
             "WHERE r.deleted_at IS NULL AND r.pmid > ? AND (t.version IS NULL OR "
             "t.version != ?) ORDER BY r.pmid LIMIT 1000", (-1, "v1")))
            for row in lib.db.execute(f"EXPLAIN QUERY PLAN {sql}", args)]
    assert "INDEX records_live" in plans[0]
    assert "USING INDEX records_live" in " ".join(plans[1:])


def test_a_failing_batch_leaves_nothing_behind(tmp_path):
    with Library(tmp_path / "lib.db") as lib:
        search = lib.runs.get_search("kratom")
        good = Record(pmid=1, title="ok", raw_xml="<PubmedArticle/>")
        bad = Record(pmid=2, title="bad", raw_xml="<PubmedArticle/>")
        bad.mesh = [{"descriptor": object()}]  # not JSON-serialisable: fails mid-batch
        try:
            lib.records.save_batch(search.id, [good, bad])
        except TypeError:
            pass
        assert lib.records.held([1, 2]) == set()
        assert lib.db.execute("SELECT count(*) FROM hits").fetchone()[0] == 0


def test_unchanged_record_is_not_rewritten(tmp_path):
    with Library(tmp_path / "lib.db") as lib:
        search = lib.runs.get_search("kratom")
        rec = Record(pmid=7, title="t", raw_xml="<x/>")
        assert lib.records.save_batch(search.id, [rec])["inserted"] == 1
        assert lib.records.save_batch(search.id, [rec])["unchanged"] == 1
        rec.raw_xml = "<x>revised</x>"
        assert lib.records.save_batch(search.id, [rec])["updated"] == 1


def test_interrupted_search_resumes_where_it_stopped(cli, server):
    docs = [synthetic_doc(7_000_000 + i, date(2020, 1, 1)) for i in range(1200)]
    server.state.add_docs(docs, term="resume")
    server.state.faults = {"efetch": [None] + ["500"] * 12}  # batch 2 fails every retry
    first = cli("search", "resume")
    assert first.exit_code == 3
    db = sqlite3.connect(_home() / "library.db")
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == 500
    server.state.faults = {}
    fetched_before = len(server.state.requests("efetch"))
    second = json.loads(cli("search", "resume", "--json").stdout)
    assert second["new"] == 700 and second["already_held"] == 500
    assert len(server.state.requests("efetch")) - fetched_before == 2


def _home():
    import os
    from pathlib import Path

    return Path(os.environ["KRATOMLIT_HOME"])


OPEN = """
import sys, time
from pathlib import Path
from kratomlit.store import Library
start = float(sys.argv[2])
while time.time() < start:
    pass
Library(Path(sys.argv[1])).close()
"""


def test_processes_opening_a_new_library_at_once_all_succeed(tmp_path):
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    for trial in range(3):
        path = tmp_path / f"lib{trial}.db"
        start = str(time.time() + 1.5)
        procs = [subprocess.Popen([sys.executable, "-c", OPEN, str(path), start], cwd=repo,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


def test_two_runs_of_one_search_side_by_side_count_each_record_once(server, env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    server.state.add_docs([synthetic_doc(7_500_000 + i, date(2021, 1, 1)) for i in range(1500)],
                          term="same")
    procs = [subprocess.Popen([sys.executable, "-m", "kratomlit", "search", "same", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **env}, cwd=Path(__file__).resolve().parents[1])
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    summaries = [json.loads(out) for out, _ in outputs]
    assert sum(s["new"] for s in summaries) == 1500
    assert all(s["new"] + s["already_held"] == 1500 for s in summaries)
    assert sqlite3.connect(_home() / "library.db").execute(
        "SELECT count(*) FROM records").fetchone()[0] == 1500
    assert len(server.state.requests("efetch")) == 3  # the second waited, fetched nothing


def test_library_json_round_trips_what_orjson_and_json_each_write():
    """Columns are written by orjson; what it refuses (a lone surrogate) goes to json, and
    ``loads`` reads both back unchanged (non-ASCII as is, floats exactly)."""
    from kratomlit.store.core import dumps, loads

    value = {"title": "Kratom (Mitragyna speciosa) – µ-opioid", "low": 0.1, "n": 3,
             "topics": ["dosing"], "none": None}
    assert loads(dumps(value)) == value and "µ" in dumps(value)
    odd = {"text": "broken \ud800 surrogate"}
    assert dumps(odd) == json.dumps(odd, ensure_ascii=False)
    assert loads(dumps(odd)) == odd



def test_a_new_library_has_16k_pages_and_an_old_one_keeps_its_own(tmp_path, monkeypatch):
    """Records' XML fills overflow pages, written one per system call: a new library
    uses 16 KiB pages; one made before (4 KiB pages) opens and grows as it is."""
    from kratomlit.store import Library, core

    def page_size(lib: Library) -> int:
        return lib.db.execute("PRAGMA page_size").fetchone()[0]

    with Library(tmp_path / "new.db") as lib:
        assert page_size(lib) == 16384
    monkeypatch.setattr(core, "PAGE_SIZE", 4096)
    with Library(tmp_path / "old.db") as lib:
        assert page_size(lib) == 4096
    monkeypatch.undo()
    with Library(tmp_path / "old.db") as lib:
        lib.records.save_batch(None, [])
        assert page_size(lib) == 4096 and lib.records.count() == 0
