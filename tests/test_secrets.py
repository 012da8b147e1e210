"""NCBI_API_KEY never leaves the request: after a full run with faults, errors, --json,
classify, refresh, new, every export format and info, no byte of any file under
KRATOMLIT_HOME (SQLite, WAL and log files included), no export and no output holds the
key, raw or URL-encoded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.eutils_server import EUtilsServer

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["0f1e2d3c4b5a69788796a5b4c3d2e1f0abcd",  # an NCBI key is 36 hex digits
        "Kr4tomLit+S3cret/Key=with&odd chars"]  # one whose URL forms differ from it


def _forms(key: str) -> set[bytes]:
    return {f.encode() for f in (key, quote(key, safe=""), quote_plus(key), key.lower())}


def _files_bytes(folder: Path) -> dict[Path, bytes]:
    """Every file's bytes; zip members (XLSX) unpacked, since deflate would hide the key."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as z:
                    data += b"".join(z.read(n) for n in z.namelist())
            out[path] = data
    return out


@pytest.mark.parametrize("key", KEYS)
def test_the_key_is_nowhere_after_a_full_run(key, cli, kratom_server: EUtilsServer, env,
                                             tmp_path, monkeypatch):
    monkeypatch.setenv("NCBI_API_KEY", key)
    state = kratom_server.state
    outputs: list[str] = []

    def run(*args: str, code: int = 0) -> None:
        result = cli(*args)
        assert result.exit_code == code, (args, result.stderr)
        outputs.extend([result.stdout, result.stderr])

    state.faults = {"esearch": ["disconnect"],
                    "efetch": ["429", "500", "reset", "truncate", "html200"]}
    run("search", "kratom", "--json")
    state.faults = {"esearch": ["429"] * 5}  # NCBI's 429 body echoes the key
    run("--max-tries", "1", "search", "kratom OR mitragynine", code=3)
    run("search", "((kratom", code=4)  # in-band ERROR
    state.faults = {"esearch": ["badkey"]}  # HTTP 400 naming the key
    result = cli("search", "kratom AND leaf")
    assert result.exit_code == 4 and "Check NCBI_API_KEY" in result.stderr
    outputs.extend([result.stdout, result.stderr])
    monkeypatch.setenv("KRATOMLIT_TIMEOUT", "0.3")
    state.stall_s = 1.0
    state.faults = {"esearch": ["stall"] * 2}
    run("--max-tries", "2", "search", "kratom AND tea", code=3)
    monkeypatch.delenv("KRATOMLIT_TIMEOUT")
    run("--eutils-url", "http://127.0.0.1:9/entrez/eutils/", "search", "kratom AND x", code=3)
    run("--api-key", key, "search", "kratom", "--max", "2", "--json")
    run("classify", "--json")
    exports = tmp_path / "exports"
    exports.mkdir()
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "k.toml").write_text('name = "k"\nterm = "kratom"\n')
    state.faults = {"efetch": ["429"], "esearch": ["500"]}
    run("refresh", "--queries", str(queries), "--json", "--export-new", str(exports))
    run("refresh", "--queries", str(queries))
    run("new", "--since", "2000", "--format", "jsonl")
    for fmt in ("csv", "tsv", "jsonl", "xlsx", "ris", "bibtex", "parquet"):
        run("export", "-f", fmt, "-o", str(exports / f"all.{fmt}"))
    run("info")
    run("queries", "--terms")

    assert any(e.params.get("api_key") == key for e in state.log)  # the key was really sent
    assert any(e.status == 429 for e in state.log)
    home = Path(env["KRATOMLIT_HOME"])
    files = {**_files_bytes(home), **_files_bytes(exports)}
    assert any(p.name.endswith("-wal") or p.suffix == ".sqlite" for p in files)
    assert len(list(exports.iterdir())) == 8  # 7 formats and the refresh digest
    for form in _forms(key):
        leaks = [str(p) for p, data in files.items() if form in data]
        assert not leaks, f"{form!r} found in {leaks}"
        assert not [o for o in outputs if form.decode() in o]


def test_a_failing_process_does_not_print_the_key(server: EUtilsServer, env):
    key = KEYS[0]
    server.state.faults = {"esearch": ["429"] * 5}
    run_env = {**os.environ, **env, "NCBI_API_KEY": key, "KRATOMLIT_MAX_TRIES": "2"}
    done = subprocess.run([sys.executable, "-m", "kratomlit", "search", "kratom"], env=run_env,
                          cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 3 and b"API rate limit exceeded" in done.stderr
    assert server.state.requests("esearch")[0].params["api_key"] == key
    for form in _forms(key):
        assert form not in done.stdout + done.stderr
        assert not [p for p, d in _files_bytes(Path(env["KRATOMLIT_HOME"])).items() if form in d]
