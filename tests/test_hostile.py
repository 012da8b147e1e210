"""Hostile and bad input: each is refused with one clear line and its exit code, or stored
faithfully; nothing the user had is overwritten, and no XML trick reads a file, fetches a
URL or expands an entity bomb.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date
from pathlib import Path

import pytest

from tests.eutils_server import PROLOG, synthetic_doc
from tests.helpers import library_pmids

MARKER = "KRATOMLIT-XXE-MARKER-4b1d"


def _home(env: dict[str, str]) -> Path:
    home = Path(env["KRATOMLIT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    return home


def _article_set(*chunks: bytes, prolog: bytes = PROLOG.encode()) -> bytes:
    return prolog + b"<PubmedArticleSet>\n" + b"\n".join(chunks) + b"\n</PubmedArticleSet>\n"


def _every_byte_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


# ---- the user's own input -------------------------------------------------------------

@pytest.mark.parametrize("text", [
    b"term = ", b'name = "Bad Name"\nterm = "kratom"', b"term = 5",
    b'term = "kratom"\ncolour = "red"', b'term = "kratom"\nmindate = "2020/02/30"',
    b'term = "   "', b"\xff\xfe\x00garbage",
])
def test_malformed_query_files_are_named_and_do_not_disable_others(cli, env, text):
    folder = _home(env) / "queries"
    folder.mkdir()
    (folder / "broken.toml").write_bytes(text)
    result = cli("search", "--saved", "broken")
    assert result.exit_code == 2 and "broken.toml" in result.stderr
    assert "Traceback" not in result.stderr
    listing = cli("queries")
    assert listing.exit_code == 0 and "kratom-oud" in listing.stdout


def test_unknown_saved_search_lists_the_known_ones(cli, env):
    result = cli("search", "--saved", "kratom-everything")
    assert result.exit_code == 2 and "No saved search named 'kratom-everything'" in result.stderr
    assert "kratom-oud" in result.stderr


@pytest.mark.parametrize("value", ["2021/02/30", "2021/02/29", "2021/13", "2021-00-10", "0999",
                                   "20211", "yesterday", "2021/1/1/1"])
def test_impossible_dates_are_usage_errors(cli, env, value):
    for flag in ("--mindate", "--maxdate"):
        result = cli("search", "kratom", flag, value)
        assert result.exit_code == 2, (flag, value, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (Path(env["KRATOMLIT_HOME"]) / "library.db").exists()


@pytest.mark.parametrize("value", ["-1", "0", "ten", "1e3"])
def test_bad_max_is_a_usage_error(cli, env, value):
    result = cli("search", "kratom", "--max", value)
    assert result.exit_code == 2 and "--max" in result.stderr


def test_huge_max_fetches_everything_once(cli, kratom_server, env):
    result = cli("search", "kratom", "--max", "99999999999999999999999", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["new"] == 4 and sorted(library_pmids(env)) == [
        90000001, 90000002, 90000003, 90000004]


def test_export_into_a_missing_folder_is_an_export_error(cli, kratom_server, tmp_path):
    assert cli("search", "kratom").exit_code == 0
    target = tmp_path / "no" / "such" / "folder" / "out.csv"
    result = cli("export", "-o", str(target))
    assert result.exit_code == 6 and "Traceback" not in result.stderr
    assert str(target.parent) in result.stderr.replace("\n", "")
    assert not target.parent.exists()


def test_classify_output_into_a_missing_folder_and_a_bad_input_file(cli, env, tmp_path):
    good, bad = tmp_path / "in.jsonl", tmp_path / "bad.jsonl"
    good.write_text('{"pmid": 1, "title": "Kratom withdrawal", "abstract": "Craving."}\n')
    bad.write_bytes(b'\xff\xfe{"pmid": 1')
    missing = cli("classify", "--input", str(good), "--output", str(tmp_path / "no" / "o.jsonl"))
    assert missing.exit_code == 6 and "does not exist" in missing.stderr
    broken = cli("classify", "--input", str(bad), "--output", str(tmp_path / "o.jsonl"))
    assert broken.exit_code == 7 and "line 1" in broken.stderr
    assert not (tmp_path / "o.jsonl").exists()


# ---- damaged, foreign and newer databases: refused, left byte for byte -----------------

def _run_once(cli, env) -> Path:
    assert cli("search", "kratom").exit_code == 0
    return Path(env["KRATOMLIT_HOME"])


@pytest.mark.parametrize("name", ["http_cache.sqlite", "library.db"])
def test_corrupt_databases_are_refused_and_not_overwritten(cli, env, kratom_server, name):
    target = _home(env) / name
    target.write_bytes(b"SQLite format 3\x00" + b"\xde\xad\xbe\xef" * 5000)
    before = target.read_bytes()
    result = cli("search", "kratom")
    assert result.exit_code == 5, result.stderr
    assert "Traceback" not in result.stderr and target.read_bytes() == before


def test_truncated_library_is_refused_and_not_overwritten(cli, env, kratom_server):
    home = _run_once(cli, env)
    db = home / "library.db"
    db.write_bytes(db.read_bytes()[:8192])  # the header survives, the pages do not
    before = db.read_bytes()
    for args in (("search", "kratom"), ("export", "-o", str(home / "x.csv")), ("info",)):
        result = cli(*args)
        assert result.exit_code == 5, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert db.read_bytes() == before


def test_library_from_a_newer_kratomlit_is_refused_untouched(cli, env, kratom_server):
    home = _run_once(cli, env)
    db = home / "library.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = db.read_bytes()
    kratom_server.state.add_docs([synthetic_doc(90000009, date(2024, 1, 1))], term="kratom")
    result = cli("search", "kratom")
    assert result.exit_code == 5 and "newer kratomlit" in result.stderr
    assert db.read_bytes() == before


def test_another_programs_database_is_not_turned_into_a_library(cli, env, kratom_server):
    db = _home(env) / "library.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.close()
    before = db.read_bytes()
    result = cli("search", "kratom")
    assert result.exit_code == 5 and "not a kratomlit library" in result.stderr
    assert db.read_bytes() == before


# ---- odd records: stored faithfully ---------------------------------------------------

def test_records_without_title_or_abstract_are_stored_and_exported(cli, server, env, tmp_path):
    no_title = synthetic_doc(8_800_001, date(2020, 1, 1))
    no_title.xml = no_title.xml.replace("Synthetic kratom record 8800001", "")
    no_abstract = synthetic_doc(8_800_002, date(2020, 1, 1))
    start, end = no_abstract.xml.index("<Abstract>"), no_abstract.xml.index("</Abstract>")
    no_abstract.xml = no_abstract.xml[:start] + no_abstract.xml[end + len("</Abstract>"):]
    server.state.add_docs([no_title, no_abstract], term="bare")
    assert cli("search", "bare").exit_code == 0
    out = tmp_path / "bare.jsonl"
    assert cli("export", "-f", "jsonl", "-o", str(out)).exit_code == 0
    rows = {r["pmid"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows[8_800_001]["title"] == "" and "mitragynine" in rows[8_800_001]["abstract"]
    assert rows[8_800_002]["abstract"] == "" and rows[8_800_002]["title"]
    assert cli("export", "-f", "csv", "-o", str(tmp_path / "bare.csv")).exit_code == 0


def test_a_ten_megabyte_abstract_is_stored_whole(cli, server, env):
    doc = synthetic_doc(8_800_010, date(2020, 1, 1))
    text = ("Mitragynine binds the mu-opioid receptor. " * 250_000)[:10_000_000].strip()
    doc.xml = doc.xml.replace("Abstract of record 8800010 about mitragynine.", text)
    server.state.add_docs([doc, synthetic_doc(8_800_011, date(2020, 1, 1))], term="long")
    started = time.monotonic()
    result = cli("search", "long", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["new"] == 2
    assert time.monotonic() - started < 30
    with sqlite3.connect(Path(env["KRATOMLIT_HOME"]) / "library.db") as db:
        assert db.execute("SELECT length(abstract) FROM records WHERE pmid = 8800010"
                          ).fetchone()[0] == len(text)


def test_control_characters_and_invalid_utf8_do_not_sink_the_batch(cli, server, env):
    docs = [synthetic_doc(8_800_020 + i, date(2020, 1, 1)) for i in range(4)]
    server.state.add_docs(docs, term="dirty")
    raw = [d.xml.encode() for d in docs]
    raw[0] = raw[0].replace(b"Synthetic kratom", b"Synthetic\x01 kratom\x0b")
    raw[1] = raw[1].replace(b"Abstract of record", b"Abstract&#x1b; of&#27; record")
    raw[2] = raw[2].replace(b"Synthetic kratom", b"Synth\xff\xfeetic kratom")
    server.state.bodies["dirty"] = _article_set(*raw)
    server.state.faults = {"efetch": ["body:dirty"]}
    result = cli("search", "dirty", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["new"] == 4 and summary["retries"] == 0
    with sqlite3.connect(Path(env["KRATOMLIT_HOME"]) / "library.db") as db:
        titles = dict(db.execute("SELECT pmid, title FROM records"))
        abstract = db.execute("SELECT abstract FROM records WHERE pmid = 8800021").fetchone()[0]
    assert titles[8_800_020] == "Synthetic\ufffd kratom\ufffd record 8800020"
    assert abstract.startswith("Abstract\ufffd of\ufffd record")
    assert titles[8_800_022].startswith("Synth\ufffd") and titles[8_800_023].startswith("Synth")


# ---- XML that tries to read files, fetch URLs or explode ------------------------------

@pytest.fixture
def marker_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(MARKER)
    return path


@pytest.fixture
def no_network(monkeypatch):
    import Bio.Entrez.Parser as P

    monkeypatch.setattr(P, "urlopen", lambda *a, **k: pytest.fail(f"parser fetched {a}"))


# EFetch answers that declare a DTD or entities are parsed inertly (nothing expanded, read
# or fetched; the batch is stored): tests/test_parse_hostile.py.


def test_an_esearch_answer_with_entities_is_refused(cli, server, env, marker_file, no_network):
    server.state.bodies["x"] = (
        b'<?xml version="1.0"?>\n<!DOCTYPE eSearchResult [<!ENTITY xxe SYSTEM "'
        + marker_file.as_uri().encode() + b'">]>\n<eSearchResult><Count>1</Count><RetMax>1'
        b"</RetMax><RetStart>0</RetStart><IdList><Id>&xxe;</Id></IdList></eSearchResult>")
    server.state.faults = {"esearch": ["body:x"] * 3}
    result = cli("--max-tries", "3", "search", "hostile")
    assert result.exit_code == 4 and "refused unparsed" in result.stderr
    assert "'hostile'" in result.stderr and MARKER not in result.stderr
    assert len(server.state.log) == 1  # not retried
