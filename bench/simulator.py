"""What the end-to-end benchmarks share: the E-utilities simulator, the CLI runs, the library.

``bench_search.py`` and ``bench_refresh.py`` both measure the real ``kratomlit`` CLI against
``eutils_sim`` (from ``../shared/tools``), and both need the same plumbing: start the
simulator on a free port and wait for its port file, read its ``/__stats`` and JSON request
log, make the benchmark's own E-utility calls, run ``python cli.py ...`` with an environment
that points at the simulator, and read ``library.db`` afterwards. It lives here once so the
two benchmarks count requests, time runs and report failures the same way; each script keeps
only its scenarios, checks and tables.

The scripts are run as ``python bench/bench_X.py``, so this folder is on ``sys.path`` and
they import this module as ``simulator``.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # read-only inputs, outside the repository
DEFAULT_SIM_DIR = SHARED / "tools"
EMAIL = "bench@example.org"  # NCBI_EMAIL for the CLI and the benchmark's own requests
WINDOW = 9999  # PubMed's ESearch window: the most PMIDs one ESearch can list


class BenchError(Exception):
    """The benchmark cannot run (missing simulator, simulator died, ...)."""


# ---- the simulator ------------------------------------------------------------------------


class Sim:
    """One ``eutils_sim`` subprocess, logging to its own ``folder``; ``mark()`` starts a
    measurement window.

    The port is 0 (a free one) so that benchmarks and tests running at the same time never
    collide; the simulator writes the port it bound to ``folder/port``, which is awaited
    here. ``options`` are further simulator flags (``--seed``, ``--clone-to``,
    ``--per-record-ms``, ...); ``faults``, when given, is written to ``faults.json`` and
    passed as ``--faults``. ``start_timeout_s`` allows for large ``--clone-to`` corpora,
    which take a while to build.
    """

    def __init__(self, sim_dir: Path, corpora: Sequence[Path], folder: Path, *,
                 latency_ms: int, options: Sequence[str] = (),
                 faults: dict[str, Any] | None = None, start_timeout_s: float = 300):
        folder.mkdir(parents=True)
        self.dir = folder
        self.log = folder / "requests.jsonl"
        port_file = folder / "port"
        cmd = [sys.executable, "-m", "eutils_sim", "--port", "0", "--port-file", str(port_file),
               "--log", str(self.log), "--latency-ms", str(latency_ms), "--quiet", *options]
        for path in corpora:
            cmd += ["--corpus", str(path)]
        if faults is not None:
            conf = folder / "faults.json"
            conf.write_text(json.dumps(faults, indent=1), encoding="utf-8")
            cmd += ["--faults", str(conf)]
        self.cmd = cmd
        self.err_path = folder / "sim.err"
        self.stderr = self.err_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=sim_dir, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr)
        deadline = time.monotonic() + start_timeout_s
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.err_path.read_text(errors="replace")[-800:]
                raise BenchError(f"the simulator did not start ({' '.join(cmd)}):\n{tail}")
            time.sleep(0.05)
        self.root = f"http://127.0.0.1:{int(port_file.read_text())}"
        self.url = self.root + "/entrez/eutils/"  # what KRATOMLIT_EUTILS_URL points at
        self.offset = 0  # where the log of the current measurement window starts

    def get(self, path: str) -> Any:
        """A JSON answer from one of the simulator's own endpoints (``/__stats``, ...)."""
        with urllib.request.urlopen(self.root + path, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """``/__stats``: per-client request counts and rate-limit windows, injected faults."""
        return dict(self.get("/__stats"))

    def mark(self) -> None:
        """Clear statistics, fault streams, WebEnvs and rate windows; skip the log so far,
        so that one simulator can serve several measured runs."""
        self.get("/__reset?all=1")
        self.offset = self.log.stat().st_size if self.log.exists() else 0

    def entries(self) -> list[dict[str, Any]]:
        """The request log since ``mark()`` (all of it before the first mark)."""
        if not self.log.exists():
            return []
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            return [json.loads(line) for line in handle if line.strip()]

    def stop(self) -> None:
        """Terminate the simulator (kill it if it lingers), so no server outlives a run."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()

    def __enter__(self) -> Sim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Traffic:
    """What the simulator saw since ``Sim.mark()``: ``/__stats`` totals over all clients
    (every process comes from 127.0.0.1, so they share one rate-limit identity, as one
    machine does at NCBI) and the request log that cross-checks them."""

    requests: int
    max_in_1s: int  # most requests in any sliding 1-second window, refused ones included
    rate_limited: int  # HTTP 429s from the rate limiter (injected 429s are faults)
    faults: dict[str, int]  # injected faults by kind
    esearch: int
    efetch: int
    served: list[int]  # PMIDs of every complete EFetch answer, in order, duplicates kept
    entries: list[dict[str, Any]]


def served(entries: list[dict[str, Any]]) -> list[int]:
    """PMIDs of every complete EFetch answer, in order (duplicates kept); truncated bodies
    and errors do not count, since the client could not have stored them."""
    return [int(p) for e in entries if e["endpoint"] == "efetch" and e.get("status") == 200
            and e.get("action") != "truncate" for p in e.get("pmids", [])]


def traffic(sim: Sim) -> Traffic:
    """Read ``/__stats`` and the request log once, for a ``measure()`` to fill its row."""
    stats = sim.stats()
    entries = sim.entries()
    clients = list(stats.get("clients", {}).values())
    by_ep = Counter(e["endpoint"] for e in entries)
    return Traffic(requests=sum(c["requests"] for c in clients),
                   max_in_1s=max((c["max_in_1s"] for c in clients), default=0),
                   rate_limited=sum(c["rate_limited"] for c in clients),
                   faults=dict(stats.get("faults", {})),
                   esearch=by_ep["esearch"], efetch=by_ep["efetch"],
                   served=served(entries), entries=entries)


def eutil(sim: Sim, endpoint: str, params: dict[str, str], *, tries: int = 30,
          pause_s: float = 0.5) -> bytes:
    """One E-utility call made by the benchmark itself (not by kratomlit), retried through
    injected faults until a complete, well-formed answer arrives. ``pause_s`` before each
    try keeps these calls under the rate limit, so they never cost kratomlit a 429."""
    data = urllib.parse.urlencode({**params, "tool": "kratomlit-bench",
                                   "email": EMAIL}).encode()
    for _ in range(tries):
        time.sleep(pause_s)
        try:
            with urllib.request.urlopen(sim.url + endpoint, data=data, timeout=60) as resp:
                body = resp.read()
        except (urllib.error.URLError, OSError, ValueError,  # 429/5xx, resets
                http.client.HTTPException):  # short reads, no response
            continue
        done = body.rstrip().endswith((b"</eSearchResult>", b"</PubmedArticleSet>"))
        if done and (b"<Count>" in body or b"<PubmedArticleSet>" in body):
            return body
    raise BenchError(f"{endpoint} kept failing after {tries} tries ({params})")


def esearch(sim: Sim, term: str, *, pause_s: float = 0.5) -> tuple[int, list[int]]:
    """The hit count and the PMIDs (at most one 9,999 window) the simulator lists for
    ``term``: the truth a benchmark compares the library against."""
    body = eutil(sim, "esearch.fcgi", {"db": "pubmed", "term": term, "retmax": str(WINDOW)},
                 pause_s=pause_s)
    count = int(re.search(rb"<Count>(\d+)</Count>", body).group(1))  # type: ignore[union-attr]
    return count, [int(x) for x in re.findall(rb"<Id>(\d+)</Id>", body)]


# ---- running the CLI ----------------------------------------------------------------------


@dataclass
class Run:
    """One finished ``python cli.py ...`` process."""

    rc: int
    wall_s: float
    summary: dict[str, Any]  # its --json output; {} when it printed none (a failed run)
    stdout: str
    stderr: str
    rss_mb: float = 0.0  # peak RSS of the CLI process (and any child it waited for)


def cli_env(home: Path, url: str | None = None, api_key: str | None = None) -> dict[str, str]:
    """The CLI's environment: a fresh ``KRATOMLIT_HOME``, the simulator's ``url``, and none
    of the developer's own API key or config file, which would change what is measured."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NCBI_API_KEY", "KRATOMLIT_CONFIG")}
    env.update(KRATOMLIT_HOME=str(home), NCBI_EMAIL=EMAIL, PYTHONUNBUFFERED="1")
    if url is not None:
        env["KRATOMLIT_EUTILS_URL"] = url
    if api_key is not None:
        env["NCBI_API_KEY"] = api_key
    return env


TIME = Path("/usr/bin/time")  # GNU time: the peak RSS of the process it runs


def start_cli(args: Sequence[str], env: dict[str, str],
              rss_file: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``python cli.py ARGS`` from the repository, as a user runs it, without waiting:
    several may run at once. With ``rss_file`` (and GNU time installed) the process runs
    under ``/usr/bin/time -f %M``, which writes its peak RSS in KiB there (``wait4``
    counts the CLI and every child it reaped, such as a parse worker)."""
    _compile_once()
    wrap = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] \
        if rss_file is not None and TIME.exists() else []
    return subprocess.Popen([*wrap, sys.executable, str(REPO / "cli.py"), *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@functools.cache
def _compile_once() -> None:
    """Write the package's bytecode before the first timed run, as ``pip install`` does:
    with PYTHONDONTWRITEBYTECODE set, every ``python cli.py`` would otherwise compile
    kratomlit from source (~70 ms of each run's start-up, measured on this machine)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "kratomlit")],
                   check=False, stdout=subprocess.DEVNULL)


def finish(proc: subprocess.Popen[bytes], started: float, timeout_s: float,
           rss_file: Path | None = None) -> Run:
    """Wait for ``proc``; its wall time counts from ``started`` (``time.perf_counter()``),
    so processes started together are timed from the same moment."""
    out, err = proc.communicate(timeout=timeout_s)
    wall = time.perf_counter() - started
    text = out.decode("utf-8", "replace")
    try:
        summary = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        summary = {}
    return Run(proc.returncode, wall, summary, text, err.decode("utf-8", "replace"),
               _peak_rss_mb(rss_file))


def _peak_rss_mb(rss_file: Path | None) -> float:
    """What ``/usr/bin/time -f %M`` wrote (KiB), in MB; 0 when nothing was measured."""
    if rss_file is None or not rss_file.exists():
        return 0.0
    lines = rss_file.read_text().split()
    return int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else 0.0


# ---- the library --------------------------------------------------------------------------


def query(home: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on ``home/library.db`` ([] when there is none yet), read directly
    rather than through kratomlit, so a bug there cannot hide a missing record."""
    path = home / "library.db"
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=30)
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def stored_pmids(home: Path) -> set[int]:
    """Every PMID in the library's ``records`` table."""
    return {r[0] for r in query(home, "SELECT pmid FROM records")}


# ---- command line, steps and report ------------------------------------------------------


def bench_parser(description: str,
                 add_options: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: ``--sim-dir`` first, the
    script's own (``add_options``), then ``--keep`` and ``--strict``, so that they read
    and behave alike."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sim-dir", type=Path, default=DEFAULT_SIM_DIR,
                        help="folder holding the eutils_sim package (default: %(default)s)")
    add_options(parser)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    return parser


def record_check(checks: list[tuple[str, bool, str]], what: str, ok: bool, detail: str) -> None:
    """Record one check and print it at once, so a long run shows its progress."""
    checks.append((what, ok, detail))
    print(f"  [{'ok' if ok else 'FAIL'}] {what}: {detail}", flush=True)


# ---- running the steps --------------------------------------------------------------------


def run_steps(prog: str, steps: Sequence[tuple[str, Callable[[], None]]], work: Path,
              keep: bool) -> int:
    """Run each step under a ``== name`` header, then remove ``work`` (unless ``keep``).
    Returns 0, or 2 after saying why on stderr when the benchmark cannot go on
    (``BenchError``): its results so far would be misleading."""
    try:
        for name, step in steps:
            print(f"== {name}", flush=True)
            step()
    except BenchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    finally:
        if keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def print_checks(checks: Sequence[tuple[str, bool, str]]) -> None:
    """The closing tally, with every failed check repeated so it is not lost in the log."""
    failed = [c for c in checks if not c[1]]
    print(f"\nchecks: {len(checks) - len(failed)} passed, {len(failed)} failed")
    for what, _, detail in failed:
        print(f"  FAIL {what}: {detail}")


def exit_status(checks: Sequence[tuple[str, bool, str]], strict: bool) -> int:
    """1 when a check failed and ``--strict`` was given, else 0: by default a benchmark
    reports failures without failing the shell that ran it."""
    return 1 if strict and any(not ok for _, ok, _ in checks) else 0


def print_table(cells: Sequence[Sequence[str]], notes: Iterable[tuple[str, str]],
                left: Sequence[int] = (0,)) -> None:
    """A plain-text table (first row: headings, left-aligned; in the other rows the
    ``left`` columns, negative ones counted from the end, are left-aligned and the rest,
    numbers, right-aligned), then ``(scenario, note)`` lines under it."""
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    left_cols = {j % len(widths) for j in left}
    print()
    for i, r in enumerate(cells):
        print("  ".join(c.rjust(w) if i and j not in left_cols else c.ljust(w)
                        for j, (c, w) in enumerate(zip(r, widths, strict=True))))
    for name, note in notes:
        print(f"  {name}: {note}")
