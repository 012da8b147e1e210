"""Wall time of ``kratomlit report`` end to end on a library of 100,000 synthetic records.

Usage:
    python bench/bench_report.py [--records 100000] [--rounds 3] [--work DIR] [--keep]
                                 [--no-write] [--out FILE]

Builds the library with the real schema (``store.Library`` runs the migrations), then
inserts rows straight into SQLite (building 100,000 records through ``save_batch`` would
take minutes and is not what is measured): records sized like real ones (a ~1,500-character
abstract, 6 authors, 10 MeSH headings in the JSON; a 3 KB raw XML placeholder), 3 saved
searches that overlap (every record found by one to three of them), 60 refreshes the
records were stored in, topic labels for 95 % of the records and, in an ``extractions``
table like the planned ``m005_extractions``, a study design for 60 %. Then it runs the real
CLI (``python cli.py report``) in its own process, ``--rounds`` times per scenario, and
keeps the best wall time and the peak RSS (``os.wait4``). Target: ``report --output`` in
at most 10 s at 100,000 records. Results go to stdout and, as markdown with the command and
machine, to the end of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOPICS = ("mechanism", "withdrawal", "safety", "dosing")
DESIGNS = ("case report", "cross-sectional survey", "cohort", "rct", "animal study",
           "in vitro", "review", "case series", "qualitative", "unknown")
SEARCHES = ("kratom-oud", "mitragynine-pharmacology", "kratom-safety")
REFRESHES = 60
SCENARIOS = {  # name -> report arguments (after the output folder, when there is one)
    "report --output DIR": ["--output"],
    "report --output DIR --saved kratom-oud --since 2026/06": [
        "--saved", "kratom-oud", "--since", "2026/06", "--output"],
    "report (terminal summary)": [],
}
WORDS = ("kratom mitragynine 7-hydroxymitragynine opioid receptor withdrawal dependence "
         "patients dose plasma concentration liver injury agonist survey users analgesic "
         "effects adverse events toxicology case report treatment").split()


def _text(rng: random.Random, n_chars: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < n_chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)


def _data(pmid: int, year: int, title: str, abstract: str) -> str:
    authors = [{"last": f"Author{i}", "fore": "Ann", "initials": "A", "suffix": "",
                "collective": "", "valid": True,
                "affiliations": [f"Department {i}, University of Somewhere, Country."]}
               for i in range(6)]
    mesh = [{"descriptor": f"Heading {j}", "ui": f"D{j:06d}", "major": j == 0,
             "qualifiers": []} for j in range(10)]
    return json.dumps({
        "pmid": pmid, "kind": "article", "title": title, "abstract": abstract,
        "abstract_sections": [], "authors": authors, "journal": "Journal of Synthetic "
        "Pharmacology", "journal_iso": "J Synth Pharmacol", "volume": "12", "issue": "3",
        "pages": "101-110", "pub_year": year, "pub_date": f"{year}-03-15",
        "doi": f"10.5555/bench.{pmid}", "pmcid": "", "mesh": mesh, "keywords": ["kratom"],
        "publication_types": ["Journal Article"], "languages": ["eng"], "corrections": [],
        "date_revised": "2026-01-01"})


def build(path: Path, n: int) -> None:
    """A library of ``n`` records at ``path``, as described in the module docstring."""
    sys.path.insert(0, str(REPO))
    from kratomlit.store import Library

    rng = random.Random(n)
    start = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    stamps = [start + timedelta(days=3 * i) for i in range(REFRESHES)]
    with Library(path) as lib, lib.transaction() as db:
        iso = [s.isoformat(timespec="milliseconds") for s in stamps]
        db.executemany("INSERT INTO refreshes (id, started, finished, status, pid) "
                       "VALUES (?, ?, ?, 'complete', 1)",
                       [(i + 1, s, (stamps[i] + timedelta(minutes=20)).isoformat(
                           timespec="milliseconds")) for i, s in enumerate(iso)])
        for sid, name in enumerate(SEARCHES, 1):
            db.execute("INSERT INTO searches (id, term, name, created) VALUES (?, ?, ?, ?)",
                       (sid, f"{name} term[tiab]", name, iso[0]))
            db.executemany("INSERT INTO runs (search_id, started, finished, status, "
                           "refresh_id) VALUES (?, ?, ?, 'complete', ?)",
                           [(sid, s, s, i + 1) for i, s in enumerate(iso)])
        raw = "<PubmedArticle>" + "x" * 3000 + "</PubmedArticle>"
        for lo in range(0, n, 10_000):
            rows, hits, labels, designs = [], [], [], []
            for pmid in range(30_000_000 + lo, 30_000_000 + min(n, lo + 10_000)):
                year = min(2026, int(1965 + 61 * rng.random() ** 0.35))
                refresh = min(REFRESHES - 1, int(REFRESHES * rng.random() ** 3))
                stored = (stamps[refresh] + timedelta(seconds=rng.randrange(1200))
                          ).isoformat(timespec="milliseconds")
                title = _text(rng, 110).capitalize() + "."
                abstract = _text(rng, 1500)
                rows.append((pmid, title, abstract, year, _data(pmid, year, title, abstract),
                             raw, stored, stored))
                for sid in rng.sample(range(1, 4), rng.choice((1, 1, 2, 3))):
                    hits.append((sid, pmid, stored, stored))
                if rng.random() < 0.95:
                    topics = [t for t in TOPICS if rng.random() < 0.35]
                    labels.append((pmid, json.dumps(topics), json.dumps(
                        {t: round(rng.random(), 3) for t in TOPICS}), stored))
                if rng.random() < 0.6:
                    designs.append((pmid, rng.choice(DESIGNS), rng.random()))
            db.executemany(
                "INSERT INTO records (pmid, title, abstract, journal, pub_year, data, raw_xml, "
                "first_stored, last_fetched) VALUES (?, ?, ?, 'Journal of Synthetic "
                "Pharmacology', ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO hits VALUES (?, ?, ?, ?)", hits)
            db.executemany("INSERT INTO labels VALUES (?, 'bench', ?, ?, '{}', ?)", labels)
            if lo == 0:  # the lead's m005_extractions, made here until it lands
                db.execute("CREATE TABLE IF NOT EXISTS extractions (pmid INTEGER PRIMARY KEY, "
                           "version TEXT, design TEXT, design_confidence REAL, n INTEGER, "
                           "data TEXT)")
            db.executemany("INSERT INTO extractions VALUES (?, 'bench', ?, ?, NULL, '{}')",
                           designs)


def run(home: Path, args: list[str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB) and exit status of one
    report in its own process (CPU time, unlike wall time, does not grow when other work
    shares the cores)."""
    cmd = [sys.executable, str(REPO / "cli.py"), "--home", str(home), "report", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if code:
        print(f"  exit {code}: {err.strip()}", file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, help="folder for the library and reports (default: "
                    "a temporary folder, removed unless --keep)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="do not append to --out")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="kratomlit-bench-report-")
    work = args.work or Path(tmp.name)
    home = work / f"home-{args.records}"
    if not (home / "library.db").exists():
        print(f"building {args.records:,} records ...", flush=True)
        start = time.perf_counter()
        build(home / "library.db", args.records)
        print(f"  built in {time.perf_counter() - start:.1f} s "
              f"({(home / 'library.db').stat().st_size / 2**20:.0f} MiB)", flush=True)
    results = {}
    for name, extra in SCENARIOS.items():
        out = [str(work / "report")] if extra and extra[-1] == "--output" else []
        rounds = [run(home, [*extra, *out]) for _ in range(args.rounds)]
        results[name] = (min(r[0] for r in rounds), min(r[1] for r in rounds),
                         max(r[2] for r in rounds), max(r[3] for r in rounds))
        print(f"  {name}: wall {[round(r[0], 2) for r in rounds]} s, CPU "
              f"{[round(r[1], 2) for r in rounds]} s, peak RSS {results[name][2]:.0f} MiB",
              flush=True)
    table = _markdown(results, args.records, args.rounds)
    print(table)
    if not args.no_write:
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(table)
    if args.keep:
        print(f"kept {work}")
    else:
        tmp.cleanup()
    return 1 if any(r[-1] for r in results.values()) else 0


def _markdown(results: dict[str, tuple[float, float, float, int]], n: int,
              rounds: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        "", "## Report (`bench/bench_report.py`)", "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, command `python bench/bench_report.py --records {n} "
        f"--rounds {rounds}`. A library of {n:,} synthetic records (3 overlapping saved "
        f"searches, {REFRESHES} refreshes, 95 % labelled, 60 % with a study design), built "
        "straight into SQLite with the real schema; each report runs the real CLI in its own "
        "process (interpreter start and imports included); best wall and CPU (user + "
        f"system) time of the rounds, highest peak RSS; load average {load:.1f} at the end. "
        "Target: `report --output` at most 10 s.", "",
        "| command | wall time | CPU time | peak RSS | exit |",
        "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| `{name}` | {wall:.1f} s | {cpu:.1f} s | {rss:.0f} MiB | {code} |"
              for name, (wall, cpu, rss, code) in results.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
