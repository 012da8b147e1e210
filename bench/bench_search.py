"""End-to-end benchmark of ``kratomlit search`` against the local E-utilities simulator.

Usage:
    python bench/bench_search.py [--sim-dir DIR] [--corpus FILE ...] [--records N]
                                 [--cold-sizes N,N] [--big-records N] [--key-records N]
                                 [--latency-ms MS] [--only NAMES]
                                 [--out FILE | --no-write] [--strict]

Starts ``eutils_sim`` (from ``../shared/tools`` by default) as a subprocess on a free port
with ``--latency-ms`` latency and a corpus grown with ``--clone-to``, runs the real CLI
(``python cli.py search TERM --json``) in fresh ``KRATOMLIT_HOME`` folders, and measures,
from the simulator's ``/__stats`` and JSON request log:

* cold   for each of ``--cold-sizes`` (3,000 and 5,000 records): network requests vs the
         ideal (ESearch calls needed + ceil(new / 500)), the most requests in any 1-second
         window (must be <= 3 without an API key), wall time vs the lower bound
         requests / 3 s, peak RSS of the CLI process (``/usr/bin/time -f %M``);
* warm   the same search again: EFetch requests (must be 0) and wall time;
* conc   two processes started together on one KRATOMLIT_HOME (different terms, then the
         same term): combined max_in_1s <= 3, no HTTP 429, every record stored;
* big    a search with more than 9,999 hits (date slicing), cold and warm; peak RSS
         against the 3,000-record search's;
* key    a cold search of ``--key-records`` with an API key (10 requests/s) and no
         latency, against ``Bio.Entrez.read`` alone on the same EFetch answers, timed in
         this run: how the whole search compares with parsing alone;
* faults injected 429 bursts, 5xx, resets, disconnects and truncated bodies (both
         truncate modes): every PMID the simulator lists for the term must end up in
         ``library.db``; retries are reported;
* parse  records/s of ``Bio.Entrez.read`` alone, ``parse_pubmed_xml`` alone and parse +
         ``Library.save_batch`` on the same EFetch batches of 500 (wall and CPU time).

Prints a results table and writes it as markdown to its own section of
``docs/benchmarks.md`` (the other sections are left as they are). The simulator
and the real PubMed records it serves live outside the repository (``../shared``); the
script exits with status 2 and a message when they are absent. Exit status is 0 unless
``--strict`` is given and a check failed (then 1).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulator import (
    REPO,
    SHARED,
    WINDOW,
    BenchError,
    Run,
    Sim,
    bench_parser,
    cli_env,
    esearch,
    eutil,
    exit_status,
    finish,
    print_checks,
    print_table,
    record_check,
    run_steps,
    start_cli,
    stored_pmids,
    traffic,
)

DEFAULT_CORPORA = [SHARED / "ncbi-samples" / "real-records" / "real_metapub.xml",
                   SHARED / "ncbi-samples" / "real-records" / "real_fatcat.xml"]
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
TERM_ALL = "1:99999999[uid]"  # every record in the simulator's corpus
LIMIT = 3  # NCBI's requests per second without an API key
SCENARIOS = ("cold", "warm", "conc", "big", "faults", "key", "parse")
SECTION = "## Search (`bench/bench_search.py`)"
API_KEY = "benchkey0123456789abcdef01234567"  # the simulator accepts it (--api-keys)
CLI_TIMEOUT_S = 900

sys.path.insert(0, str(REPO))
from kratomlit.eutils import BATCH_SIZE  # noqa: E402

# Injected faults. Probabilities are per request (one seeded draw each); the "*" schedule
# adds two bursts of three consecutive 429s (counted over all E-utility requests).
FAULTS: dict[str, Any] = {
    "*": {"schedule": {"2": "429", "3": "429", "4": "429",
                       "9": "429", "10": "429", "11": "429"}},
    "esearch": {"probabilities": {"429": 0.1, "503": 0.05, "reset": 0.05, "disconnect": 0.05,
                                  "truncate": 0.1}},
    "efetch": {"probabilities": {"429": 0.06, "500": 0.04, "502": 0.04, "503": 0.04,
                                 "reset": 0.06, "disconnect": 0.04, "truncate": 0.05,
                                 "truncate:0.98": 0.08}},
}


def sim_pmids(sim: Sim, term: str, lo: int = 0, hi: int = 99_999_999) -> list[int]:
    """Every PMID the simulator lists for ``term``, past the 9,999 window too (by bisecting
    the PMID range until each part fits one ESearch page)."""
    count, ids = esearch(sim, term if not lo else f"({term}) AND {lo}:{hi}[uid]")
    if count <= len(ids):
        return ids
    lo = max(lo, 1)
    mid = (lo + hi) // 2
    return sim_pmids(sim, term, lo, mid) + sim_pmids(sim, term, mid + 1, hi)


# ---- running the CLI ----------------------------------------------------------------------


@dataclass
class CliRun(Run):
    """A ``search`` run, with its term for the messages about it."""

    term: str = ""


def run_cli(home: Path, sim: Sim, terms: list[str], api_key: str | None = None,
            extra: tuple[str, ...] = ()) -> list[CliRun]:
    """Start one ``kratomlit search TERM --json`` per term at the same moment; wait for all.
    Each process's peak RSS is measured by ``/usr/bin/time``."""
    home.mkdir(parents=True, exist_ok=True)
    rss = [home.parent / f"{home.name}.rss{i}" for i in range(len(terms))]
    for f in rss:
        f.unlink(missing_ok=True)
    started = time.perf_counter()
    procs = [start_cli(["search", term, "--json", *extra], cli_env(home, sim.url, api_key), f)
             for term, f in zip(terms, rss, strict=True)]
    return [CliRun(**vars(finish(proc, started, CLI_TIMEOUT_S, f)), term=term)
            for term, proc, f in zip(terms, procs, rss, strict=True)]


# ---- measuring ----------------------------------------------------------------------------


@dataclass
class Row:
    """One scenario's numbers, as printed and written to the markdown table."""

    name: str
    hits: int = 0
    new: int = 0
    requests: int = 0  # E-utility requests the simulator saw
    ideal: int = 0
    reported: int = 0  # network_requests as kratomlit reported it
    esearch: int = 0
    efetch: int = 0
    max_in_1s: int = 0
    http_429: int = 0  # rate-limiter refusals (injected 429s are counted as faults)
    faults: int = 0
    retries: int = 0
    from_cache: int = 0
    slices: int = 0
    wall_s: float = 0.0
    bound_s: float = 0.0
    stored: int = 0
    expected: int = 0
    dup_records: int = 0  # records served by EFetch more than once
    rss_mb: float = 0.0  # largest peak RSS of its CLI processes
    notes: list[str] = field(default_factory=list)


def window_max(entries: list[dict[str, Any]]) -> int:
    """Most requests arriving in any 1-second window, from the log (arrival = ts - latency)."""
    times = sorted(datetime.fromisoformat(e["ts"]).timestamp() - (e.get("latency_ms") or 0) / 1e3
                   for e in entries)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def measure(row: Row, sim: Sim, runs: list[CliRun]) -> Row:
    """Fill ``row`` from the simulator's stats and log since ``sim.mark()`` and the runs."""
    seen = traffic(sim)
    row.requests, row.max_in_1s, row.http_429 = seen.requests, seen.max_in_1s, seen.rate_limited
    row.faults = sum(seen.faults.values())
    row.esearch, row.efetch = seen.esearch, seen.efetch
    row.dup_records = sum(n - 1 for n in Counter(seen.served).values())
    log_max = window_max(seen.entries)
    if len(seen.entries) != row.requests or log_max > row.max_in_1s:
        row.notes.append(f"log: {len(seen.entries)} requests, max {log_max}/s")
    for run in runs:
        s = run.summary
        row.hits += s.get("count", 0)
        row.new += s.get("new", 0)
        row.reported += s.get("network_requests", 0)
        row.retries += s.get("retries", 0)
        row.slices += s.get("slices", 0)
        row.from_cache += s.get("from_cache", 0)
        row.wall_s = max(row.wall_s, run.wall_s)
        row.rss_mb = max(row.rss_mb, run.rss_mb)
        if run.rc != 0 or not s:
            tail = " | ".join(run.stderr.strip().splitlines()[-3:])
            row.notes.append(f"exit {run.rc} for {run.term!r}: {tail[:300]}")
    row.bound_s = row.requests / LIMIT
    return row


def esearch_needed(hits: int) -> int:
    """Fewest ESearch calls that can list ``hits`` PMIDs: one, or a count probe plus one
    call per 9,999-hit slice."""
    return 1 if hits <= WINDOW else 1 + math.ceil(hits / WINDOW)


def cold_ideal(row: Row) -> int:
    return esearch_needed(row.hits) + math.ceil(row.new / BATCH_SIZE)


# ---- scenarios ----------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    rows: list[Row] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    parse: dict[str, Any] = field(default_factory=dict)
    key: dict[str, Any] = field(default_factory=dict)

    def sim(self, name: str, clone_to: int, faults: dict[str, Any] | None = None,
            latency_ms: int | None = None, options: tuple[str, ...] = ()) -> Sim:
        latency = self.args.latency_ms if latency_ms is None else latency_ms
        return Sim(self.args.sim_dir, self.args.corpus, self.work / name,
                   latency_ms=latency, faults=faults,
                   options=["--seed", str(self.args.seed), "--clone-to", str(clone_to),
                            *options])

    def check(self, what: str, ok: bool, detail: str) -> None:
        record_check(self.checks, what, ok, detail)

    def home(self, name: str) -> Path:
        return self.work / "homes" / name

    def common_checks(self, row: Row, expected: set[int] | None, home: Path,
                      per_second: int = LIMIT) -> None:
        self.check(f"{row.name}: max requests in 1 s <= {per_second}",
                   row.max_in_1s <= per_second, f"max_in_1s={row.max_in_1s}")
        self.check(f"{row.name}: no rate-limit 429", row.http_429 == 0,
                   f"{row.http_429} refused")
        exits = [n for n in row.notes if n.startswith("exit ")]
        if not exits:  # a failed run prints no summary
            self.check(f"{row.name}: reported network requests = simulator's",
                       row.reported == row.requests,
                       f"kratomlit {row.reported}, simulator {row.requests}")
        self.check(f"{row.name}: every run exited 0", not exits, "; ".join(exits) or "all 0")
        if expected is not None:
            held = stored_pmids(home)
            row.stored, row.expected = len(held), len(expected)
            missing = sorted(expected - held)
            self.check(f"{row.name}: every listed PMID stored", not missing,
                       f"{len(held)} stored of {len(expected)}"
                       + (f"; missing e.g. {missing[:5]}" if missing else ""))

    def cold_warm(self, sim: Sim, label: str, expected: set[int], warm: bool) -> None:
        home = self.home(label)
        sim.mark()
        row = measure(Row(f"{label} cold"), sim, run_cli(home, sim, [TERM_ALL]))
        row.ideal = cold_ideal(row)
        self.rows.append(row)
        self.common_checks(row, expected, home)
        fetches = math.ceil(row.new / BATCH_SIZE)
        if row.hits <= WINDOW:
            self.check(f"{row.name}: requests = ideal", row.requests == row.ideal,
                       f"{row.requests} vs ideal {row.ideal} "
                       f"({row.esearch} esearch, {row.efetch} efetch)")
        else:  # bisection needs probes beyond the ideal; EFetch must still be minimal
            self.check(f"{row.name}: EFetch = ceil(new / {BATCH_SIZE})", row.efetch == fetches,
                       f"{row.efetch} efetch vs {fetches}; {row.esearch} esearch vs "
                       f"{esearch_needed(row.hits)} ideal ({row.slices} slices)")
        if not warm:
            return
        sim.mark()
        again = measure(Row(f"{label} warm"), sim, run_cli(home, sim, [TERM_ALL]))
        again.ideal = 1  # the [mdat] revision check; the ESearch itself is cached for 1 h
        self.rows.append(again)
        self.common_checks(again, expected, home)
        self.check(f"{again.name}: no EFetch", again.efetch == 0, f"{again.efetch} efetch")

    def run_cold(self) -> None:
        for i, size in enumerate(self.args.cold_sizes):
            with self.sim(f"sim-cold-{size}", size) as sim:
                expected = set(sim_pmids(sim, TERM_ALL))
                self.cold_warm(sim, f"{len(expected)} hits", expected,
                               i == 0 and "warm" in self.args.only)

    def run_key(self) -> None:
        """A cold search with an API key and no latency, then ``Bio.Entrez.read`` alone on
        the same EFetch answers (fetched again by this script), in this run."""
        n = self.args.key_records
        walls = {}
        with self.sim("sim-key", n, latency_ms=0, options=("--api-keys", API_KEY)) as sim:
            ids = sorted(sim_pmids(sim, TERM_ALL))
            for label, extra in (("", ()), (", --no-classify", ("--no-classify",))):
                home = self.home(f"key{len(extra)}")
                sim.mark()
                row = measure(Row(f"{len(ids)} hits cold, API key, 0 ms{label}"), sim,
                              run_cli(home, sim, [TERM_ALL], API_KEY, extra))
                row.ideal = cold_ideal(row)
                row.bound_s = row.requests / 10
                self.rows.append(row)
                self.common_checks(row, set(ids), home, per_second=10)
                walls[label] = row.wall_s
            bodies = fetch_bodies(sim, ids, pause_s=0.15, api_key=API_KEY)
        entrez = entrez_time(bodies, self.args.rounds)
        self.key = {"records": len(ids), "wall_s": walls[""], **entrez,
                    "bare_s": walls[", --no-classify"]}

    def run_big(self) -> None:
        with self.sim("sim-big", self.args.big_records) as sim:
            expected = set(sim_pmids(sim, TERM_ALL))
            self.cold_warm(sim, f"{len(expected)} hits", expected, True)

    def run_conc(self) -> None:
        with self.sim("sim-conc", self.args.records) as sim:
            ids = sorted(sim_pmids(sim, TERM_ALL))
            mid = ids[len(ids) // 2 - 1]  # two halves of equal size
            halves = [f"1:{mid}[uid]", f"{mid + 1}:99999999[uid]"]
            for label, terms in (("2 procs, 2 terms", halves), ("2 procs, same term",
                                                               [TERM_ALL, TERM_ALL])):
                home = self.home(label.replace(" ", "_").replace(",", ""))
                sim.mark()
                runs = run_cli(home, sim, terms)
                row = measure(Row(label), sim, runs)
                row.hits = len(ids)  # distinct hits of both terms
                # each process must search; between them each record needs fetching once
                row.ideal = sum(esearch_needed(r.summary.get("count", 0)) for r in runs)
                row.ideal += sum(math.ceil(r.summary.get("count", 0) / BATCH_SIZE)
                                 for r in runs[:len(set(terms))])
                self.rows.append(row)
                self.common_checks(row, set(ids), home)

    def run_faults(self) -> None:
        for mode in ("length", "close"):
            conf = {"faults": FAULTS, "fault_options": {"truncate_mode": mode}}
            with self.sim(f"sim-faults-{mode}", self.args.records, conf) as sim:
                expected = set(sim_pmids(sim, TERM_ALL))
                home = self.home(f"faults-{mode}")
                sim.mark()
                row = measure(Row(f"faults, truncate={mode}"), sim,
                              run_cli(home, sim, [TERM_ALL]))
                row.ideal = cold_ideal(row)
                if any(n.startswith("exit ") for n in row.notes):
                    self.rerun(sim, home, row, expected)
                kinds = sim.get("/__stats").get("faults", {})
                row.notes.append("injected: " + ", ".join(f"{k} {v}"
                                                          for k, v in sorted(kinds.items())))
                self.rows.append(row)
                self.common_checks(row, expected, home)

    def rerun(self, sim: Sim, home: Path, row: Row, expected: set[int]) -> None:
        """After a failed run, do what its message says: run the command again (twice at
        most), and record whether the library then holds every PMID."""
        for attempt in (1, 2):
            again = run_cli(home, sim, [TERM_ALL])[0]
            held = stored_pmids(home)
            row.notes.append(f"re-run {attempt}: exit {again.rc}, {len(held)} stored, "
                             f"summary new={again.summary.get('new')} "
                             f"already_held={again.summary.get('already_held')}")
            if again.rc == 0:
                break
        self.check(f"{row.name}: complete after re-running", expected <= stored_pmids(home),
                   row.notes[-1])

    def run_parse(self) -> None:
        with self.sim("sim-parse", self.args.records) as sim:
            bodies = fetch_bodies(sim, ids := sorted(sim_pmids(sim, TERM_ALL)))
        self.parse = parse_bench(bodies, self.work / "parse", self.args.rounds)
        self.check("parse: every record parsed and stored", self.parse["stored"] == len(ids),
                   f"{self.parse['stored']} of {len(ids)}")


# ---- parse + store vs Bio.Entrez.read -------------------------------------------------------


def fetch_bodies(sim: Sim, ids: list[int], pause_s: float = 0.5,
                 api_key: str | None = None) -> list[bytes]:
    """The EFetch answers a search gets for ``ids``, in batches of ``BATCH_SIZE``. Faster
    than 3 requests/s needs ``api_key``: the simulator counts refused requests in the
    window, so keyless retries every 0.15 s would be refused for ever."""
    key = {"api_key": api_key} if api_key else {}
    return [eutil(sim, "efetch.fcgi", {"db": "pubmed", "retmode": "xml", **key,
                                       "id": ",".join(map(str, ids[i:i + BATCH_SIZE]))},
                  pause_s=pause_s)
            for i in range(0, len(ids), BATCH_SIZE)]


def entrez_time(bodies: list[bytes], rounds: int) -> dict[str, float]:
    """Best-of-``rounds`` wall and CPU seconds of ``Bio.Entrez.read`` over ``bodies``."""
    from Bio import Entrez

    def entrez() -> None:
        for body in bodies:
            Entrez.read(io.BytesIO(body), validate=False)

    times = [_timed(entrez) for _ in range(rounds)]
    return {"entrez_s": min(t[0] for t in times), "entrez_cpu": min(t[1] for t in times)}


def parse_bench(bodies: list[bytes], work: Path, rounds: int) -> dict[str, Any]:
    """Best-of-``rounds`` records/s (wall and CPU): Entrez.read alone, parse_pubmed_xml,
    parse + save."""
    from kratomlit.parse import parse_pubmed_xml
    from kratomlit.store import Library

    work.mkdir(parents=True, exist_ok=True)
    batches = [[r.pmid for r in parse_pubmed_xml(b).records] for b in bodies]  # warms caches
    n_records = sum(map(len, batches))

    def parse() -> None:
        for body in bodies:
            parse_pubmed_xml(body)

    stored = 0

    def parse_store() -> None:
        nonlocal stored
        path = Path(tempfile.mkdtemp(dir=work)) / "library.db"
        with Library(path) as lib:
            sid = lib.runs.get_search(TERM_ALL).id
            for body in bodies:
                lib.records.save_batch(sid, parse_pubmed_xml(body).records)
            stored = lib.records.count()

    out: dict[str, Any] = {"batches": len(bodies), "records": n_records,
                           "mb": sum(map(len, bodies)) / 1e6}
    entrez = entrez_time(bodies, rounds)
    out.update(entrez=n_records / entrez["entrez_s"], entrez_s=entrez["entrez_s"],
               entrez_cpu=entrez["entrez_cpu"])
    for name, fn in (("parse", parse), ("parse_store", parse_store)):
        times = [_timed(fn) for _ in range(rounds)]
        best = min(t[0] for t in times)
        out[name] = n_records / best
        out[name + "_s"] = best
        out[name + "_cpu"] = min(t[1] for t in times)
    times = [_timed(lambda: pipeline(bodies, batches, work)) for _ in range(rounds)]
    out["pipeline"] = n_records / min(t[0] for t in times)
    out["pipeline_s"] = min(t[0] for t in times)
    out["pipeline_cpu"] = min(t[1] for t in times)  # this process only: storing
    out["stored"] = stored
    return out


class _Answers:
    """Stands in for ``EUtilsClient`` in ``prefetched``: each batch's EFetch answer, fetched
    before the timing, handed over at once (the pipeline without the network)."""

    def __init__(self, bodies: list[bytes], batches: list[list[int]]):
        self.by_first = {ids[0]: body for ids, body in zip(batches, bodies, strict=True)}

    def efetch_unparsed(self, ids: list[int], **_: Any) -> bytes:
        return self.by_first[ids[0]]

    def refetch(self, ids: list[int], why: str = "") -> Any:
        raise BenchError(f"the pipeline refused an answer it had parsed before ({why})")


def pipeline(bodies: list[bytes], batches: list[list[int]], work: Path) -> int:
    """``search``'s own pipeline (``prefetched``: the first batches parsed in its fetching
    threads while the worker process starts, its start-up included, the rest in the
    worker), storing here as ``search`` does, with the answers in hand instead of the
    network."""
    from kratomlit.search import prefetched
    from kratomlit.store import Library

    path = Path(tempfile.mkdtemp(dir=work)) / "library.db"
    with Library(path) as lib:
        sid = lib.runs.get_search(TERM_ALL).id
        for _ids, parsed in prefetched(_Answers(bodies, batches), batches):  # type: ignore[arg-type]
            assert parsed is not None
            lib.records.save_batch(sid, parsed.records)
        return lib.records.count()


def _timed(fn: Any) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()``; CPU time is this process's, threads included."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


# ---- output -------------------------------------------------------------------------------

COLUMNS = [("scenario", "name", "{}"), ("hits", "hits", "{}"), ("new", "new", "{}"),
           ("req", "requests", "{}"), ("ideal", "ideal", "{}"), ("reported", "reported", "{}"),
           ("esearch", "esearch", "{}"), ("efetch", "efetch", "{}"),
           ("max/1s", "max_in_1s", "{}"), ("429", "http_429", "{}"),
           ("faults", "faults", "{}"), ("retries", "retries", "{}"),
           ("cached", "from_cache", "{}"),
           ("slices", "slices", "{}"),
           ("wall s", "wall_s", "{:.1f}"), ("req/3 s", "bound_s", "{:.1f}"),
           ("stored", "stored", "{}"), ("dup", "dup_records", "{}"),
           ("RSS MB", "rss_mb", "{:.0f}")]


def table_rows(rows: list[Row]) -> list[list[str]]:
    out = [[c[0] for c in COLUMNS]]
    for row in rows:
        out.append([fmt.format(getattr(row, attr)) for _, attr, fmt in COLUMNS])
    return out


def print_results(bench: Bench) -> None:
    print_table(table_rows(bench.rows), [(row.name, n) for row in bench.rows for n in row.notes])
    p = bench.parse
    if p:
        print(f"\nparse ({p['records']} records in {p['batches']} batches, {p['mb']:.1f} MB): "
              f"Bio.Entrez.read {p['entrez']:.0f} rec/s, parse_pubmed_xml {p['parse']:.0f} "
              f"rec/s, parse + save_batch {p['parse_store']:.0f} rec/s")
    for line in targets(bench):
        print(line)
    print_checks(bench.checks)


def markdown(bench: Bench, command: str) -> str:
    """This benchmark's section of ``docs/benchmarks.md`` (``SECTION`` and ### parts)."""
    a = bench.args
    rows = table_rows(bench.rows)
    lines = [
        SECTION, "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on a {os.cpu_count()}-core "
        f"{platform.system()} machine ({platform.machine()}), "
        f"Python {platform.python_version()}, shared with other work (wall times are "
        "noisy; CPU times are given where they matter).", "",
        "Command (from the repository root):", "", "```sh", command, "```", "",
        f"The simulator (`{_shown(a.sim_dir)}/eutils_sim`) serves the 343 real PubMed records of "
        f"`{', '.join(p.name for p in a.corpus)}` cloned to "
        f"{', '.join(map(str, a.cold_sizes))} records ({a.records} for the concurrency, "
        f"fault and parse runs, {a.big_records} for the sliced search), with "
        f"{a.latency_ms} ms latency per response and NCBI's 3 requests/s limit (no API "
        f"key; the key run: no latency, 10 requests/s). Every run uses a fresh "
        f"`KRATOMLIT_HOME` and the term `{TERM_ALL}` (all records) unless noted.", "",
    ]
    lines += ["### Targets (issue 15)", "", *targets(bench), ""]
    lines += ["### Runs", "",
              "| " + " | ".join(rows[0]) + " |",
              "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(rows[0])))
              + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    lines += ["", *LEGEND, ""]
    notes = [f"* {row.name}: {n}" for row in bench.rows for n in row.notes]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    lines += parse_markdown(bench.parse)
    lines += observations(bench)
    lines += ["### Checks", ""]
    lines += [f"* {'ok' if ok else '**FAIL**'} {what}: {detail}"
              for what, ok, detail in bench.checks]
    return "\n".join(lines) + "\n"


def targets(bench: Bench) -> list[str]:
    """Issue 15's four targets, each with this run's number and whether it is met."""
    out = []
    p = bench.parse
    if p:
        ratio = p["entrez_s"] / p["parse_store_s"]
        cpu = p["entrez_cpu"] / p["parse_store_cpu"]
        piped = p["entrez_s"] / p["pipeline_s"]
        out.append(f"* parse + store >= 4x `Bio.Entrez.read` alone ({p['records']} records): "
                   f"one after the other in one process {ratio:.1f}x by wall time "
                   f"({cpu:.1f}x by CPU time); as `search` runs them (`prefetched`: "
                   "parsing in fetching threads, then its worker process, while storing) "
                   f"{piped:.1f}x by wall time "
                   f"({'met' if max(ratio, piped) >= 4 else 'not met'}).")
    for row in bench.rows:
        if row.name.endswith("hits cold") and row.hits == 5000 and row.bound_s:
            r = row.wall_s / row.bound_s
            out.append(f"* cold 5,000 at {bench.args.latency_ms} ms, no key, <= 1.3x the "
                       f"politeness bound: {row.wall_s:.1f} s for {row.requests} requests "
                       f"(bound {row.bound_s:.1f} s) = {r:.2f}x, {row.stored} stored "
                       f"({'met' if r <= 1.3 and row.stored == row.expected else 'not met'}).")
    k = bench.key
    if k:
        e, c = k["entrez_s"], k["entrez_cpu"]
        out.append(f"* cold {k['records']:,} with an API key, no latency (start-up, requests, "
                   f"parse, store: `--no-classify`), <= 0.4x `Bio.Entrez.read` on the same "
                   f"answers ({e:.1f} s wall, {c:.1f} s CPU in this run): "
                   f"{k['bare_s']:.1f} s = {k['bare_s'] / e:.2f}x its wall time, "
                   f"{k['bare_s'] / c:.2f}x its CPU time "
                   f"({'met' if k['bare_s'] / e <= 0.4 else 'not met'}); with topic labels, "
                   f"design, n and doses as `search` gives by default: {k['wall_s']:.1f} s = "
                   f"{k['wall_s'] / e:.2f}x ({k['wall_s'] / c:.2f}x of its CPU time).")
    cold = {row.hits: row for row in bench.rows if row.name.endswith("hits cold")}
    small, big = cold.get(min(cold, default=0)), cold.get(max(cold, default=0))
    if small and big and small is not big and small.rss_mb and big.rss_mb:
        r = big.rss_mb / small.rss_mb
        out.append(f"* peak RSS {big.hits:,} <= 1.5x {small.hits:,} and <= 400 MB: "
                   f"{big.rss_mb:.0f} MB vs {small.rss_mb:.0f} MB = {r:.2f}x "
                   f"({'met' if r <= 1.5 and big.rss_mb <= 400 else 'not met'}).")
    return out


def _shown(path: Path) -> str:
    """A path relative to the repository's parent when it lies there (``../shared/...``)."""
    try:
        return str(Path("..") / path.resolve().relative_to(REPO.parent))
    except ValueError:
        return str(path)


def observations(bench: Bench) -> list[str]:
    """What the numbers say, computed from this run."""
    out = []
    rate = bench.parse.get("parse_store")
    for row in bench.rows:
        if row.new and row.bound_s and not row.faults:
            per_s = 10 if "API key" in row.name else LIMIT
            line = (f"* {row.name}: wall time {row.wall_s:.1f} s is "
                    f"{row.wall_s / row.bound_s:.1f}x the {row.bound_s:.1f} s that "
                    f"{row.requests} requests need at {per_s}/s")
            if rate and "procs" not in row.name:
                line += (f"; parsing and storing {row.new} records one after the other "
                         f"at the measured {rate:.0f} records/s would take "
                         f"{row.new / rate:.1f} s")
            out.append(line + ".")
        if row.dup_records:
            out.append(f"* {row.name}: {row.dup_records} records were served twice "
                       f"({row.efetch} EFetch requests where {row.ideal - row.esearch} would "
                       "do); processes share the HTTP cache and rate limit, not the work, and "
                       "`new` is summed over processes.")
    return ["### Observations", "", *out, ""] if out else []


LEGEND = [
    "* `req`: E-utility requests the simulator received (its `/__stats`, cross-checked "
    "with its request log); `ideal`: ESearch calls needed (1, or 1 + ceil(hits / 9,999) "
    "past the window) + ceil(new / 500) EFetch calls; warm runs: 1 (the `[mdat]` revision "
    "check; the ESearch itself is cached); `reported`: `network_requests` from "
    "kratomlit's JSON summary (summed over processes).",
    "* `max/1s`: most requests in any sliding 1-second window (simulator's `max_in_1s`, "
    "refused requests included); must be <= 3. `429`: requests the rate limiter refused; "
    "`faults`: injected faults (injected 429s included); `retries`: as kratomlit reports.",
    "* `wall s`: wall time of the CLI process(es), start to exit; `req/3 s`: the lower "
    "bound 3 requests/s sets for that many requests.",
    "* `stored`: rows in `library.db` table `records` afterwards (expected: every PMID the "
    "simulator lists for the term); `dup`: records EFetch served more than once.",
    "* Fault runs inject, by seeded probability per request, 429, 500/502/503, TCP reset, "
    "disconnect and truncated bodies (half, and 98 %), plus two bursts of three "
    "consecutive 429s; once with `truncate_mode: length` (short body under a full "
    "Content-Length) and once with `close` (short body, no length).",
]


def _ahead() -> int:
    from kratomlit.search import AHEAD

    return AHEAD


def parse_markdown(p: dict[str, Any]) -> list[str]:
    if not p:
        return []
    rows = [("`Bio.Entrez.read(validate=False)` alone", "entrez"),
            ("`parse_pubmed_xml`", "parse"),
            ("`parse_pubmed_xml` + `Library.save_batch` (new SQLite file)", "parse_store"),
            ("as `search` runs them: `prefetched` (first 2 batches parsed in its fetching "
             "threads while the worker starts, then in the worker) + `save_batch` here, "
             f"{_ahead()} answers ahead (CPU: this process only)", "pipeline")]
    return [
        "### Parse and store throughput", "",
        f"{p['records']} records in {p['batches']} EFetch batches of {BATCH_SIZE} "
        f"({p['mb']:.1f} MB), fetched once from the simulator, then timed in-process "
        "(best of the rounds):", "",
        "| step | records/s (wall) | seconds (wall) | seconds (CPU) | x Bio.Entrez.read (wall) |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {label} | {p[key]:.0f} | {p[key + '_s']:.2f} | {p[key + '_cpu']:.2f} | "
          f"{p['entrez_s'] / p[key + '_s']:.1f} |" for label, key in rows], "",
    ]


def write_section(path: Path, text: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it), leaving the rest."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if SECTION in old:
        start = old.index(SECTION)
        nxt = old.find("\n## ", start + len(SECTION))
        old = old[:start].rstrip("\n") + ("\n\n" + old[nxt + 1:] if nxt >= 0 else "\n")
    path.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")


# ---- main ---------------------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser) -> None:
    """This script's own options, between --sim-dir and --keep/--strict (see bench_parser)."""
    parser.add_argument("--corpus", type=Path, action="append",
                        help="corpus file for the simulator, repeatable (default: the two "
                        "real-records XML files in ../shared/ncbi-samples)")
    parser.add_argument("--records", type=int, default=3000,
                        help="corpus of the conc, faults and parse runs (default 3000)")
    parser.add_argument("--cold-sizes", default="3000,5000",
                        help="corpus sizes of the cold runs, comma-separated (default "
                        "3000,5000); the first is also run warm")
    parser.add_argument("--key-records", type=int, default=5000,
                        help="corpus of the API-key run (default 5000)")
    parser.add_argument("--big-records", type=int, default=12000,
                        help="corpus size for the > 9,999-hit search (default 12000)")
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="simulator fault seed")
    parser.add_argument("--rounds", type=int, default=3, help="parse benchmark rounds")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-write", action="store_true", help="do not write --out")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__.splitlines()[0], add_options)
    args = parser.parse_args(argv)
    args.corpus = args.corpus or DEFAULT_CORPORA
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    args.cold_sizes = [int(n) for n in args.cold_sizes.split(",") if n.strip()]
    unknown = args.only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}")
    if args.big_records <= WINDOW:
        parser.error("--big-records must exceed 9999")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [p for p in [args.sim_dir / "eutils_sim" / "__main__.py", *args.corpus]
               if not p.exists()]
    if missing:
        print("bench_search: cannot run, not found: " + ", ".join(map(str, missing)) +
              "\n(the simulator and corpora live in ../shared; pass --sim-dir / --corpus)",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="kratomlit-bench-"))
    bench = Bench(args, work)
    command = "python bench/bench_search.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]))
    steps = [("cold", bench.run_cold), ("conc", bench.run_conc), ("big", bench.run_big),
             ("faults", bench.run_faults), ("key", bench.run_key), ("parse", bench.run_parse)]
    if run_steps("bench_search", [(n, s) for n, s in steps if n in args.only], work, args.keep):
        return 2
    print_results(bench)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_section(args.out, markdown(bench, command.strip()))
        print(f"wrote {args.out}")
    return exit_status(bench.checks, args.strict)


if __name__ == "__main__":
    sys.exit(main())
