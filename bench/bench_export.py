"""Time and peak memory of ``kratomlit export`` per format, at two library sizes.

Usage:
    python bench/bench_export.py [--sizes 10000,100000] [--formats csv,xlsx,...]
                                 [--runs N] [--repo DIR] [--work DIR] [--keep]
                                 [--no-write] [--out FILE]

Builds a library per size with ``Library.save_batch`` (synthetic records shaped like real
PubMed ones: ~1,500-character structured abstract, 6 authors with affiliations, 10 MeSH
headings, 5 keywords, a 3 KB raw XML placeholder; every record classified), then runs the
real CLI (``python cli.py export``) per format in its own process, ``--runs`` times, and
reads that process's wall time, CPU time (user + system, ``os.wait4``'s rusage: what the
export costs, whatever else the machine is doing) and peak RSS (``ru_maxrss``); the
median of the runs is reported. ``--repo`` runs another checkout's ``cli.py`` (e.g. the
code before a change) against the same library. A 0-record export
(``--since 2999``) per format gives the fixed cost (interpreter, imports). If memory stays
flat, the peak at 100,000 records is about the peak at 10,000. Results go to stdout and,
as markdown with the command and machine, to the end of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# This process imports nothing heavy and builds libraries in a child: on Linux a child's
# ru_maxrss counts the parent's resident memory at fork, so a fat parent would inflate it.
EXT = {"csv": "csv", "tsv": "tsv", "xlsx": "xlsx", "ris": "ris", "bibtex": "bib",
       "jsonl": "jsonl", "parquet": "parquet"}
WORDS = ("kratom mitragynine 7-hydroxymitragynine opioid receptor withdrawal dependence "
         "patients dose plasma concentration liver injury μ-opioid agonist survey users "
         "analgesic effects adverse events toxicology case report treatment").split()
SECTIONS = ("BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS")


def _text(rng: random.Random, n_chars: int) -> str:
    words: list[str] = []
    size = 0
    while size < n_chars:
        w = rng.choice(WORDS)
        words.append(w)
        size += len(w) + 1
    return " ".join(words)


def _record(pmid: int, rng: random.Random) -> Any:
    from kratomlit.models import Record

    abstract = "\n".join(f"{s}: {_text(rng, 360)}" for s in SECTIONS)  # ~1,500 characters
    authors = [{"last": f"Author{i}", "fore": "Ann", "initials": "A", "suffix": "",
                "collective": "", "valid": True,
                "affiliations": [f"Department {i}, University of Somewhere, Country."]}
               for i in range(6)]
    mesh = [{"descriptor": f"Heading {j}", "ui": f"D{j:06d}", "major": j == 0,
             "qualifiers": [{"name": "pharmacology", "ui": "Q1", "major": False}]}
            for j in range(10)]
    return Record(
        pmid=pmid, title=_text(rng, 110).capitalize() + ".", abstract=abstract,
        authors=authors, journal="Journal of Synthetic Pharmacology", journal_iso="J Synth "
        "Pharmacol", volume="12", issue="3", pages="101-110", pub_year=1990 + pmid % 35,
        pub_date=f"{1990 + pmid % 35}-03-15", doi=f"10.5555/bench.{pmid}",
        pmcid=f"PMC{pmid}", mesh=mesh, keywords=[rng.choice(WORDS) for _ in range(5)],
        publication_types=["Journal Article"], languages=["eng"],
        raw_xml="<PubmedArticle>" + "x" * 3000 + "</PubmedArticle>")


def build(home: Path, n: int) -> None:
    """A library of ``n`` classified records in ``home`` (run in a child process)."""
    sys.path.insert(0, str(REPO))
    from kratomlit.models import TOPICS, Labels
    from kratomlit.store import Library

    rng = random.Random(n)
    with Library(home / "library.db") as lib:
        search = lib.runs.get_search("bench[tiab]", name="bench")
        for lo in range(0, n, 5000):
            batch = [_record(10_000_000 + i, rng) for i in range(lo, min(n, lo + 5000))]
            lib.records.save_batch(search.id, batch)
            lib.labels.save([
                (r.pmid, Labels("bench", [t for t in TOPICS if rng.random() > 0.5],
                                {t: round(rng.random(), 3) for t in TOPICS})) for r in batch])


def build_in_child(home: Path, n: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--build", str(n), str(home)], check=True)
    return time.perf_counter() - start


Run = tuple[float, float, float, int]  # wall s, CPU s, peak RSS MiB, exit status


def run_export(home: Path, fmt: str, out: Path, *extra: str, repo: Path = REPO) -> Run:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB) and exit status of one
    export in its own process."""
    cmd = [sys.executable, str(repo / "cli.py"), "--home", str(home), "export", "-f", fmt,
           "-o", str(out), *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode() if proc.stderr else ""
        print(f"  {fmt}: exit {proc.returncode}: {err.strip()}", file=sys.stderr)
    if proc.stderr:
        proc.stderr.close()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is KiB on Linux


def median_run(runs: list[Run]) -> Run:
    """Median wall, CPU and peak over the runs; the worst exit status."""
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            statistics.median(r[2] for r in runs), max(r[3] for r in runs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--formats", default=",".join(EXT))
    ap.add_argument("--build", nargs=2, metavar=("N", "HOME"), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help="folder for libraries and exports (default: a "
                    "temporary folder, removed unless --keep)")
    ap.add_argument("--runs", type=int, default=1, help="runs per format (median reported)")
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose cli.py to run")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="do not append to --out")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = ap.parse_args()
    if args.build:
        build(Path(args.build[1]), int(args.build[0]))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    tmp = tempfile.TemporaryDirectory(prefix="kratomlit-bench-export-")
    work = args.work or Path(tmp.name)
    results: dict[tuple[str, int], tuple[float, float, float, int]] = {}
    base: dict[str, float] = {}
    for n in sizes:
        home = work / f"home-{n}"
        if not (home / "library.db").exists():
            print(f"building {n:,} records ...", flush=True)
            print(f"  built in {build_in_child(home, n):.1f} s", flush=True)
        for fmt in formats:
            out = work / f"export-{n}.{EXT[fmt]}"
            if fmt not in base:
                base[fmt] = run_export(home, fmt, work / f"empty.{EXT[fmt]}", "--since",
                                       "2999", repo=args.repo)[2]
            wall, cpu, peak, code = median_run(
                [run_export(home, fmt, out, repo=args.repo) for _ in range(args.runs)])
            size = out.stat().st_size if out.exists() else 0
            results[fmt, n] = (wall, cpu, peak, size)
            print(f"  {fmt:8} {n:>7,} records: {wall:6.1f} s wall, {cpu:6.1f} s CPU, peak RSS "
                  f"{peak:6.0f} MiB (0 records: {base[fmt]:.0f} MiB), {size / 2**20:7.1f} MiB "
                  "file" + (f", exit {code}" if code else ""), flush=True)
    table = _markdown(results, base, sizes, formats, args.runs)
    print(table)
    if not args.no_write:
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(table)
    if args.keep:
        print(f"kept {work}")
    else:
        tmp.cleanup()
    return 0


def _markdown(results: dict[tuple[str, int], tuple[float, float, float, int]],
              base: dict[str, float], sizes: list[int], formats: list[str], runs: int) -> str:
    head = " | ".join(f"{n:,}: wall | {n:,}: CPU | {n:,}: peak RSS" for n in sizes)
    lines = [
        "", "## Export (`bench/bench_export.py`)", "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, command `python bench/bench_export.py --sizes "
        f"{','.join(map(str, sizes))} --runs {runs}`. Each export runs in its own process "
        "(the real CLI); CPU is that process's user + system time, peak RSS its "
        f"`ru_maxrss`, each the median of {runs} run(s); '0 records' is the same command on "
        "an empty selection (interpreter and imports).", "",
        f"| format | 0 records: peak RSS | {head} | file at {sizes[-1]:,} |",
        "| --- | ---: | " + " | ".join("---: | ---: | ---:" for _ in sizes) + " | ---: |",
    ]
    for fmt in formats:
        cells = " | ".join(f"{results[fmt, n][0]:.1f} s | {results[fmt, n][1]:.1f} s | "
                           f"{results[fmt, n][2]:.0f} MiB" for n in sizes)
        size = results[fmt, sizes[-1]][3] / 2**20
        lines.append(f"| {fmt} | {base[fmt]:.0f} MiB | {cells} | {size:.0f} MiB |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
