"""End-to-end benchmark of ``kratomlit refresh`` (the cron job) against the E-utilities simulator.

Usage:
    python bench/bench_refresh.py [--sim-dir DIR] [--records N] [--added N] [--killed N]
                                  [--conc N] [--latency-ms MS] [--per-record-ms MS]
                                  [--api-key] [--keep] [--strict]

Writes small JSONL corpora of kratom-like records (three saved searches over them, which
overlap, plus records none of them matches), starts ``eutils_sim`` (from
``../shared/tools`` by default) as a subprocess on a free port for each step, with the
corpus that step needs (later corpus files add records, or replace one to revise it), and
runs the real CLI (``python cli.py refresh --queries DIR --json``) on one
``KRATOMLIT_HOME`` through these scenarios, in order:

* cold       first refresh of an empty library;
* unchanged  the same corpus again: no EFetch at all;
* added      ``--added`` new records: EFetch only those; ``kratomlit new`` and
             ``--export-new`` list exactly them;
* revised    one held record gets a new title and today's DateRevised: only it is fetched
             again, and the library holds the new title;
* killed     ``--killed`` new records served slowly (``--per-record-ms``); after the first
             EFetch batch a second refresh with ``--wait 0`` must exit 9, then the first one
             is killed with SIGKILL;
* resumed    a normal refresh afterwards: fetches only what is still missing, marks the
             killed refresh ``interrupted``, ``PRAGMA integrity_check`` is ok;
* conc       ``--conc`` new records, two refreshes started at once: one waits for the
             other's lock, each new record is fetched once.

For each it reads the simulator's request log (``pmids`` of every EFetch answer) and
``/__stats``, and reports ESearch and EFetch requests, PMIDs fetched, new records, wall
time and the most requests in any 1-second window. Checks after every step: the exit
code; the library's PMIDs (``records``) and each saved search's ``hits`` equal what the
simulator lists for the terms (ESearch with retmax=9999, made by this script after the
measurement); every EFetched PMID was due (new, or the revised one) and had never been
fetched before; ESearch requests = one per saved search + one ``[mdat]`` revision check
(none on the first run); at most 3 requests in any second (10 with ``--api-key``) and no
HTTP 429.

The simulator lives outside the repository (``../shared``); the script exits with status
2 and a message when it is absent. Exit status is 0 unless ``--strict`` is given and a
check failed (then 1). About 1 minute on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulator import (
    WINDOW,
    BenchError,
    Run,
    Sim,
    bench_parser,
    cli_env,
    esearch,
    exit_status,
    finish,
    print_checks,
    print_table,
    query,
    record_check,
    run_steps,
    served,
    start_cli,
    stored_pmids,
    traffic,
)

API_KEY = "bench0000000000000000000000000000000"  # accepted by the simulator's --api-keys '*'
CLI_TIMEOUT_S = 300
BASE_PMID = 30_100_000

# Saved searches (name -> term). They overlap: a record about mitragynine is found by two.
SEARCHES = {
    "kratom-withdrawal": "kratom[tiab] AND withdrawal[tiab]",
    "mitragynine": "mitragynine[tiab]",
    "kratom-oud": "kratom AND (opioid[tiab] OR mitragynine[tiab])",
}
# Record kinds, cycled: title and abstract wording (the last kind matches no search).
KINDS = [
    ("Kratom use and withdrawal symptoms in {who}",
     "BACKGROUND: Kratom withdrawal was assessed. RESULTS: Symptoms were mild."),
    ("Kratom alkaloid mitragynine: receptor pharmacology in {who}",
     "BACKGROUND: Mitragynine binds receptors. RESULTS: Effects were dose related."),
    ("Kratom as self-treatment for opioid use disorder among {who}",
     "BACKGROUND: Kratom is used for opioid use disorder. RESULTS: Many reported benefit."),
    ("Soil bacteria and nitrogen cycling in {who}",
     "BACKGROUND: Nitrogen cycling was measured. RESULTS: Rates varied."),
]
WHO = ["adults", "rats", "veterans", "students", "mice", "patients"]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


# ---- corpora ----------------------------------------------------------------------------


def record(pmid: int, kind: int, revised: str, title: str | None = None) -> dict[str, Any]:
    """One simulator JSONL record of ``kind`` (an index into KINDS)."""
    text, abstract = KINDS[kind]
    return {"pmid": pmid, "title": title or text.format(who=WHO[pmid % len(WHO)]) + ".",
            "abstract": abstract, "journal": "Journal of Test Pharmacology",
            "journal_abbrev": "J Test Pharmacol", "pub_date": f"{2005 + pmid % 20}-0{1 + pmid % 9}",
            "authors": ["Smith J", "Nguyen T", "Garcia M"], "language": "eng",
            "date_revised": revised}


def write_corpus(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for rec in records:
            handle.write(json.dumps(rec) + "\n")
    return path


def block(start: int, n: int, revised: str) -> list[dict[str, Any]]:
    return [record(start + i, i % len(KINDS), revised) for i in range(n)]


# ---- the simulator ----------------------------------------------------------------------


def listed(sim: Sim, term: str) -> set[int]:
    """Every PMID the simulator lists for ``term`` (fits one ESearch page here)."""
    count, ids = esearch(sim, term, pause_s=0.4)  # stays under the rate limit
    if count != len(set(ids)):
        raise BenchError(f"{term!r}: {count} hits, {len(set(ids))} listed; use fewer records")
    return set(ids)


# ---- running the CLI --------------------------------------------------------------------


class Cli:
    """``python cli.py refresh ...`` on one KRATOMLIT_HOME and saved-search folder."""

    def __init__(self, home: Path, queries: Path, api_key: bool):
        self.home, self.queries, self.api_key = home, queries, api_key

    def start(self, sim: Sim | None, *extra: str,
              command: str = "refresh") -> subprocess.Popen[bytes]:
        args = [command]
        if command == "refresh":
            args += ["--queries", str(self.queries), "--json"]
        env = cli_env(self.home, None if sim is None else sim.url,
                      API_KEY if self.api_key else None)
        return start_cli([*args, *extra], env)

    def run(self, sim: Sim | None, *extra: str, command: str = "refresh") -> Run:
        started = time.perf_counter()
        return finish(self.start(sim, *extra, command=command), started, CLI_TIMEOUT_S)


# ---- the library --------------------------------------------------------------------------


def hits_by_search(home: Path) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for name, pmid in query(home, "SELECT s.name, h.pmid FROM hits h "
                                  "JOIN searches s ON s.id = h.search_id"):
        out.setdefault(name, set()).add(pmid)
    return out


# ---- measuring ----------------------------------------------------------------------------


@dataclass
class Row:
    """One scenario's numbers."""

    name: str
    exits: str = ""
    esearch: int = 0
    efetch: int = 0
    fetched: int = 0  # PMIDs served by EFetch
    new: int = 0  # new records as kratomlit reported them (killed: rows stored meanwhile)
    stored: int = 0
    wall_s: float = 0.0
    max_in_1s: int = 0
    http_429: int = 0
    passed: int = 0
    failed: int = 0
    notes: list[str] = field(default_factory=list)


def measure(row: Row, sim: Sim) -> list[int]:
    """Fill ``row`` from the simulator's stats and log; return the PMIDs EFetch served."""
    seen = traffic(sim)
    row.max_in_1s, row.http_429 = seen.max_in_1s, seen.rate_limited
    row.esearch, row.efetch = seen.esearch, seen.efetch
    row.fetched = len(seen.served)
    return seen.served


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    rows: list[Row] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    corpora: list[Path] = field(default_factory=list)
    ever_fetched: set[int] = field(default_factory=set)
    checked_runs: int = 0  # completed refreshes: a base for the [mdat] check exists after one
    base: set[int] = field(default_factory=set)  # PMIDs of the first corpus
    killed_due: set[int] = field(default_factory=set)  # PMIDs added before the killed run

    def __post_init__(self) -> None:
        self.limit = 10 if self.args.api_key else 3
        queries = self.work / "queries"
        queries.mkdir(parents=True)
        for name, term in SEARCHES.items():
            (queries / f"{name}.toml").write_text(f'name = "{name}"\nterm = "{term}"\n',
                                                  encoding="utf-8")
        self.home = self.work / "home"
        self.cli = Cli(self.home, queries, self.args.api_key)
        self.next_pmid = BASE_PMID

    def check(self, row: Row, what: str, ok: bool, detail: str) -> None:
        record_check(self.checks, f"{row.name}: {what}", ok, detail)
        if ok:
            row.passed += 1
        else:
            row.failed += 1

    def sim(self, name: str, per_record_ms: int = 0) -> Sim:
        options = ["--per-record-ms", str(per_record_ms), "--today", today()]
        if self.args.api_key:
            options += ["--api-keys", "*"]
        return Sim(self.args.sim_dir, self.corpora, self.work / "sims" / name,
                   latency_ms=self.args.latency_ms, options=options, start_timeout_s=120)

    def add_corpus(self, name: str, n: int) -> set[int]:
        """A corpus file of ``n`` new records (DateRevised today); return their PMIDs."""
        recs = block(self.next_pmid, n, today())
        self.next_pmid += n + 1000
        self.corpora.append(write_corpus(self.work / f"{name}.jsonl", recs))
        return {r["pmid"] for r in recs}

    # ---- checks shared by every scenario ----

    def truth(self, sim: Sim) -> dict[str, set[int]]:
        return {name: listed(sim, term) for name, term in SEARCHES.items()}

    def library_checks(self, row: Row, truth: dict[str, set[int]]) -> None:
        everything = set().union(*truth.values())
        held = stored_pmids(self.home)
        row.stored = len(held)
        self.check(row, "library = simulator's PMIDs", held == everything,
                   f"{len(held)} stored, {len(everything)} listed; missing "
                   f"{sorted(everything - held)[:5]}, extra {sorted(held - everything)[:5]}")
        hits = hits_by_search(self.home)
        bad = {n: (len(hits.get(n, set())), len(ids)) for n, ids in truth.items()
               if hits.get(n, set()) != ids}
        self.check(row, "hits per search = simulator's", not bad,
                   "all equal" if not bad else f"(held, listed) {bad}")

    def wire_checks(self, row: Row, pmids: list[int], due: set[int],
                    again: set[int] | None = None) -> None:
        """``pmids`` served by EFetch: each due, none served twice, none fetched in an
        earlier scenario except ``again`` (a revised record)."""
        again = again or set()
        counts = Counter(pmids)
        twice = sorted(p for p, n in counts.items() if n > 1)
        undue = sorted(set(counts) - due)
        before = sorted((set(counts) & self.ever_fetched) - again)
        self.check(row, "EFetch only for due PMIDs", not undue and not twice,
                   f"{len(counts)} fetched, {len(due)} due; not due {len(undue)} "
                   f"{undue[:5]}; fetched twice {len(twice)}")
        self.check(row, "no PMID fetched again that an earlier run fetched", not before,
                   f"{len(before)} refetched, e.g. {before[:5]}")
        self.ever_fetched |= set(counts)
        self.check(row, f"max requests in 1 s <= {self.limit}, no 429",
                   row.max_in_1s <= self.limit and row.http_429 == 0,
                   f"max_in_1s={row.max_in_1s}, 429s={row.http_429}")

    def esearch_check(self, row: Row, runs: int = 1) -> None:
        per_run = len(SEARCHES) + (1 if self.checked_runs else 0)
        want = per_run * runs
        self.check(row, "ESearch = searches + [mdat] check", row.esearch == want,
                   f"{row.esearch} vs {want}")

    def exit_check(self, row: Row, run: Run, want: int = 0) -> None:
        tail = " | ".join(run.stderr.strip().splitlines()[-2:])[:300]
        self.check(row, f"exit {want}", run.rc == want, f"exit {run.rc}" +
                   (f": {tail}" if run.rc != want and tail else ""))

    # ---- scenarios ----

    def simple(self, name: str, due: set[int], again: set[int] | None = None,
               extra: tuple[str, ...] = ()) -> tuple[Row, Run, set[int]]:
        """One refresh on a fresh simulator over the current corpora; returns its row, run
        and every PMID the saved searches list."""
        row = Row(name)
        sim = self.sim(name)
        try:
            run = self.cli.run(sim, *extra)
            pmids = measure(row, sim)
            truth = self.truth(sim)
        finally:
            sim.stop()
        row.exits, row.wall_s, row.new = str(run.rc), run.wall_s, int(run.summary.get("new", 0))
        listed = set().union(*truth.values())
        due = (due & listed) | (again or set())
        self.exit_check(row, run)
        self.esearch_check(row)
        self.wire_checks(row, pmids, due, again)
        self.library_checks(row, truth)
        self.rows.append(row)
        if run.rc == 0:
            self.checked_runs += 1
        return row, run, listed

    def run_cold(self) -> None:
        self.corpora.append(write_corpus(self.work / "base.jsonl",
                                         block(self.next_pmid, self.args.records, "2024-05-01")))
        base = {self.next_pmid + i for i in range(self.args.records)}
        self.next_pmid += self.args.records + 1000
        self.base = base
        self.simple("cold", base)

    def run_unchanged(self) -> None:
        row, _, _ = self.simple("unchanged", set())
        self.check(row, "no EFetch", row.efetch == 0, f"{row.efetch} efetch")

    def run_added(self) -> None:
        added = self.add_corpus("added", self.args.added)
        digests = self.work / "digests"
        row, run, listed = self.simple("added", added, extra=("--export-new", str(digests)))
        matching = listed & added
        new = self.cli.run(None, "--format", "csv", command="new")
        listed = set(map(int, re.findall(r"^[^,\n]+,[^,\n]+,(\d+),", new.stdout, re.M)))
        self.check(row, "'kratomlit new' lists exactly the added records",
                   new.rc == 0 and listed == matching,
                   f"exit {new.rc}; {len(listed)} listed, {len(matching)} added and matching")
        files = sorted(digests.glob("kratomlit-new-*.csv")) if digests.is_dir() else []
        in_file = set()
        if files:
            text = files[-1].read_text(encoding="utf-8-sig")
            in_file = set(map(int, re.findall(r"^[^,\n]+,[^,\n]+,(\d+),", text, re.M)))
        self.check(row, "--export-new wrote a dated CSV of them",
                   len(files) == 1 and in_file == matching and run.summary.get("digest") ==
                   str(files[0]), f"{[f.name for f in files]}, {len(in_file)} PMIDs")

    def run_revised(self) -> None:
        pmid = min(self.base)  # kind 0: found by kratom-withdrawal
        title = "Kratom withdrawal revisited: a corrected analysis (revised)."
        self.corpora.append(write_corpus(self.work / "revised.jsonl",
                                         [record(pmid, 0, today(), title=title)]))
        row, run, _ = self.simple("revised", set(), again={pmid})
        held = query(self.home, f"SELECT title FROM records WHERE pmid={pmid}")
        self.check(row, "the revised record was refetched and updated",
                   pmid in self.ever_fetched and bool(held) and held[0][0] == title
                   and run.summary.get("revised") == 1,
                   f"title now {held[0][0] if held else None!r}; "
                   f"summary revised={run.summary.get('revised')}")

    def run_killed(self) -> None:
        due = self.add_corpus("killed", self.args.killed)
        row = Row("killed")
        sim = self.sim("killed", per_record_ms=self.args.per_record_ms)
        try:
            started = time.perf_counter()
            first = self.cli.start(sim)
            try:
                busy = self._busy_while_fetching(row, sim, first)
            finally:
                if first.poll() is None:
                    first.send_signal(signal.SIGKILL)
                run = finish(first, started, CLI_TIMEOUT_S)
            pmids = measure(row, sim)
        finally:
            sim.stop()
        row.exits, row.wall_s = f"{run.rc} / {busy.rc}", run.wall_s
        held = stored_pmids(self.home)
        row.stored = len(held)
        row.new = len(held & due)
        self.check(row, "killed with SIGKILL mid-fetch", run.rc == -signal.SIGKILL
                   and 0 < row.new, f"exit {run.rc}; {row.new} of the new records stored")
        self.check(row, "second refresh with --wait 0 exits 9 and says why",
                   busy.rc == 9 and "Another kratomlit refresh is running" in busy.stderr
                   and _busy_line(busy.stdout), f"exit {busy.rc}: {busy.stderr.strip()[:160]}")
        self.wire_checks(row, pmids, due)
        lost = set(pmids) - held  # served, but the process died before storing them
        self.ever_fetched -= lost
        if lost:
            row.notes.append(f"{len(lost)} PMIDs were served but not stored before the kill "
                             "(the batch in flight); fetching them again is expected")
        self.rows.append(row)
        self.killed_due = due

    def _busy_while_fetching(self, row: Row, sim: Sim, first: subprocess.Popen[bytes]) -> Run:
        """Wait for the first EFetch answer, then run a refresh with --wait 0 meanwhile."""
        deadline = time.monotonic() + 120
        while not served(sim.entries()):
            if first.poll() is not None or time.monotonic() > deadline:
                raise BenchError("the refresh to kill ended before its first EFetch answer "
                                 "(raise --killed or --per-record-ms)")
            time.sleep(0.05)
        busy = self.cli.run(sim, "--wait", "0")
        if first.poll() is not None:
            row.notes.append("the first refresh finished before it could be killed")
        return busy

    def run_resumed(self) -> None:
        before = stored_pmids(self.home)
        row, _, _ = self.simple("resumed", self.killed_due - before)
        statuses = [r[0] for r in query(self.home, "SELECT status FROM refreshes ORDER BY id")]
        self.check(row, "killed refresh marked interrupted, this one complete",
                   statuses[-2:] == ["interrupted", "complete"], f"statuses {statuses}")
        ok = query(self.home, "PRAGMA integrity_check")
        self.check(row, "PRAGMA integrity_check", ok == [("ok",)], str(ok)[:120])

    def run_conc(self) -> None:
        due = self.add_corpus("conc", self.args.conc)
        row = Row("conc (2 at once)")
        sim = self.sim("conc")
        try:
            started = time.perf_counter()
            procs = [self.cli.start(sim) for _ in range(2)]
            runs = [finish(p, started, CLI_TIMEOUT_S) for p in procs]
            pmids = measure(row, sim)
            truth = self.truth(sim)
        finally:
            sim.stop()
        row.exits = " / ".join(str(r.rc) for r in runs)
        row.wall_s = max(r.wall_s for r in runs)
        row.new = sum(int(r.summary.get("new", 0)) for r in runs)
        for run in runs:
            self.exit_check(row, run)
        ids = sorted(int(r.summary.get("id", 0)) for r in runs)
        spans = query(self.home, "SELECT started, finished FROM refreshes WHERE id IN "
                      f"({ids[0]}, {ids[1]}) ORDER BY id")
        news = {int(r.summary.get("id", 0)): r.summary.get("new") for r in runs}
        self.check(row, "one waited for the other's lock, then found nothing new",
                   len(spans) == 2 and str(spans[1][0]) >= str(spans[0][1])
                   and news.get(ids[1]) == 0,
                   f"new per refresh {news}; (started, finished) {spans}")
        self.esearch_check(row, runs=2)
        self.wire_checks(row, pmids, due & set().union(*truth.values()))
        self.library_checks(row, truth)
        self.rows.append(row)


# ---- output -------------------------------------------------------------------------------

COLUMNS = [("scenario", "name", "{}"), ("exit", "exits", "{}"), ("esearch", "esearch", "{}"),
           ("efetch", "efetch", "{}"), ("fetched", "fetched", "{}"), ("new", "new", "{}"),
           ("stored", "stored", "{}"), ("wall s", "wall_s", "{:.1f}"),
           ("max/1s", "max_in_1s", "{}"), ("429", "http_429", "{}"),
           ("checks", "passed", "{}")]


def print_results(bench: Bench) -> None:
    rows = [[c[0] for c in COLUMNS]]
    for row in bench.rows:
        cells = [fmt.format(getattr(row, attr)) for _, attr, fmt in COLUMNS]
        cells[-1] = f"{row.passed}/{row.passed + row.failed}" + (" FAIL" if row.failed else "")
        rows.append(cells)
    print_table(rows, [(row.name, n) for row in bench.rows for n in row.notes], left=(0, -1))
    print_checks(bench.checks)


# ---- main ---------------------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser) -> None:
    """This script's own options, between --sim-dir and --keep/--strict (see bench_parser)."""
    parser.add_argument("--records", type=int, default=2000,
                        help="records in the first corpus, 3/4 of them matching (default 2000)")
    parser.add_argument("--added", type=int, default=120,
                        help="records added before the 'added' refresh (default 120)")
    parser.add_argument("--killed", type=int, default=1200,
                        help="records added before the killed refresh (default 1200)")
    parser.add_argument("--conc", type=int, default=400,
                        help="records added before the two concurrent refreshes (default 400)")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--per-record-ms", type=int, default=6,
                        help="EFetch latency per record in the killed run (default 6)")
    parser.add_argument("--api-key", action="store_true",
                        help="run with an API key (the simulator accepts any): 10 requests/s")


def _busy_line(stdout: str) -> bool:
    """``--json`` prints one line even for a run that found the lock taken."""
    try:
        return bool(json.loads(stdout)["status"] == "busy")
    except (ValueError, KeyError, TypeError):
        return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser((__doc__ or "").splitlines()[0], add_options)
    args = parser.parse_args(argv)
    if args.records * 3 // 4 + args.added + args.killed + args.conc > WINDOW:
        parser.error("too many records: every search must stay within 9,999 hits")
    if args.killed < 8:
        parser.error("--killed must be at least 8")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.sim_dir / "eutils_sim" / "__main__.py").exists():
        print(f"bench_refresh: cannot run, not found: {args.sim_dir / 'eutils_sim'}\n"
              "(the simulator lives in ../shared/tools; pass --sim-dir)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="kratomlit-bench-refresh-"))
    bench = Bench(args, work)
    steps = [bench.run_cold, bench.run_unchanged, bench.run_added, bench.run_revised,
             bench.run_killed, bench.run_resumed, bench.run_conc]
    if run_steps("bench_refresh", [(s.__name__.removeprefix("run_"), s) for s in steps], work,
                 args.keep):
        return 2
    print_results(bench)
    return exit_status(bench.checks, args.strict)


if __name__ == "__main__":
    sys.exit(main())
