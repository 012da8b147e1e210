"""Throughput of the classifier's library path (``Classifier.classify``) on one core.

Usage:
    python bench/bench_classify.py [--data PATH] [--repeat N] [--rounds R]

Classifies the dev abstracts (title + abstract + MeSH) with the shipped model ``repeat``
times per round, ``rounds`` rounds, and reports the best and the median round's abstracts
per second (on a shared, noisy machine the median is the honest figure; the target is
checked against it), for
``classify()`` alone and for ``classify().to_dict()`` (what the library stores, evidence
included: the target applies to this one, as ``classify()`` defers the evidence). Each line
also gives the median round's CPU time per abstract, which other jobs' load moves less than
the wall clock. Exits 0 with a message when the dev file is absent (it lives outside the
repository, in ``../shared``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "kratom_dev.jsonl"
TARGET = 20_000  # abstracts per second, one core

sys.path.insert(0, str(REPO))
from kratomlit.classify import Classifier  # noqa: E402


def _records(path: Path) -> list[tuple[str, str, list[str]]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                item = json.loads(line)
                rows.append((item.get("title") or "", item.get("abstract") or "",
                             item.get("mesh") or []))
    return rows


def _round(classifier: Classifier, rows: list[tuple[str, str, list[str]]], repeat: int,
           to_dict: bool = False) -> tuple[float, float]:
    """One round: (wall seconds, CPU seconds)."""
    classify = classifier.classify
    start, cpu = time.perf_counter(), time.process_time()
    if to_dict:
        for _ in range(repeat):
            for title, abstract, mesh in rows:
                classify(title, abstract, mesh).to_dict()
    else:
        for _ in range(repeat):
            for title, abstract, mesh in rows:
                classify(title, abstract, mesh)
    return time.perf_counter() - start, time.process_time() - cpu


def _report(label: str, rounds: list[tuple[float, float]], n: int) -> float:
    """Print best and median of the rounds (wall), and the median CPU time; return the
    median rate."""
    times = [wall for wall, _ in rounds]
    best, median = min(times), statistics.median(times)
    cpu = statistics.median(c for _, c in rounds)
    print(f"{label}: best {n / best:,.0f}/s ({1e6 * best / n:.1f} µs each), "
          f"median {n / median:,.0f}/s ({1e6 * median / n:.1f} µs each; "
          f"CPU {1e6 * cpu / n:.1f} µs)")
    return n / median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: dev data not found at {args.data} (pass --data PATH)")
        return 0
    rows = _records(args.data)
    t0 = time.perf_counter()
    classifier = Classifier.load()
    load_ms = (time.perf_counter() - t0) * 1000
    _round(classifier, rows, 1)  # warm-up
    plain: list[tuple[float, float]] = []
    stored: list[tuple[float, float]] = []
    for _ in range(args.rounds):  # interleaved, so both variants see the same machine noise
        plain.append(_round(classifier, rows, args.repeat))
        stored.append(_round(classifier, rows, args.repeat, to_dict=True))
    n = len(rows) * args.repeat
    chars = sum(len(t) + len(a) for t, a, _ in rows) / len(rows)
    print(f"classifier {classifier.version}: model loaded in {load_ms:.0f} ms "
          f"({len(classifier.extractor.features)} features)")
    print(f"{n} abstracts (mean {chars:.0f} chars) per round, {args.rounds} rounds")
    _report("classify()          ", plain, n)
    rate = _report("classify().to_dict()", stored, n)
    print(f"target {TARGET:,}/s (median, classify().to_dict()): "
          f"{'met' if rate >= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
