"""The least extraction can cost: its work in C alone, against half of classification.

Usage:
    python bench/bench_extract_floor.py [--data PATH] [--repeat N]

Issue 13 asks that extraction add at most 50 % to classification time. This measures, on
the dev abstracts (title + abstract) in CPU time, the parts of ``Extractor.extract`` that
run in C and that no Python tuning can remove: the matchable text, the automaton pass
drained with nothing done per hit (pyahocorasick's ``iter_long``), the lower-cased text,
and every regular-expression call the n and dose rules make (recorded from a real run of
``extract`` over the same abstracts, then replayed alone). Their sum is a floor for any
extractor built on this design; it is set beside ``classify()`` and ``classify().to_dict()``
timed in the same process. Exits 0 with a message when the dev file is absent.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "kratom_dev.jsonl"

sys.path.insert(0, str(REPO))
from kratomlit import doses, extract, sample_size  # noqa: E402
from kratomlit.classify import Classifier  # noqa: E402

Call = tuple[re.Pattern[str], str, tuple[Any, ...], dict[str, Any]]


class _Recorder:
    """Stands in for a compiled pattern and records each call made through it."""

    def __init__(self, pattern: re.Pattern[str], calls: list[Call]) -> None:
        self._pattern, self._calls = pattern, calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._pattern, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append((self._pattern, name, args, kwargs))
            return method(*args, **kwargs)
        return call


def _record_regex_calls(rows: list[tuple[str, str]]) -> list[Call]:
    """Every regex call ``extract`` makes over ``rows`` (patterns swapped back after)."""
    calls: list[Call] = []
    swapped: list[tuple[ModuleType, str, re.Pattern[str]]] = []
    for module in (doses, sample_size, extract):
        for name, value in list(vars(module).items()):
            if isinstance(value, re.Pattern):
                swapped.append((module, name, value))
                setattr(module, name, _Recorder(value, calls))
    try:
        extractor = extract.Extractor.load()
        for title, abstract in rows:
            extractor.extract(title, abstract)
    finally:
        for module, name, value in swapped:
            setattr(module, name, value)
    return calls


def _replay(calls: list[Call]) -> None:
    for pattern, name, args, kwargs in calls:
        result = getattr(pattern, name)(*args, **kwargs)
        if name == "finditer":
            deque(result, 0)


def _best_us(run: Callable[[], object], per: int, tries: int = 5) -> float:
    """Fastest of ``tries`` runs, in CPU µs per abstract."""
    best = float("inf")
    for _ in range(tries):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best / per * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: dev data not found at {args.data} (pass --data PATH)")
        return 0
    with args.data.open(encoding="utf-8") as handle:
        rows = [(item.get("title") or "", item.get("abstract") or "")
                for item in map(json.loads, filter(str.strip, handle))]
    repeat, per = args.repeat, args.repeat * len(rows)
    calls = _record_regex_calls(rows)
    extractor, classifier = extract.Extractor.load(), Classifier.load()
    texts = [f" {title}\n{abstract} " for title, abstract in rows]
    matchable = [extract._matchable(text) for text in texts]
    automaton = extractor._automaton

    def drain() -> None:
        for _ in range(repeat):
            for m in matchable:
                deque(automaton.iter_long(m), 0)

    def each(work: Callable[..., object], items: list[Any]) -> Callable[[], None]:
        """Run ``work`` on every item, ``repeat`` times, keeping no result (a kept result
        would make the garbage collector's passes part of the time)."""
        def run() -> None:
            for _ in range(repeat):
                for item in items:
                    work(*item)
        return run

    parts = {
        "matchable text": each(extract._matchable, [(t,) for t in texts]),
        "automaton pass (iter_long drained)": drain,
        "lower-cased text": each(sample_size.lowered_text, [(t,) for t in texts]),
        f"regex calls replayed ({len(calls) / len(rows):.1f} an abstract)":
            lambda: [_replay(calls) for _ in range(repeat)],
    }
    whole = {
        "extract()": each(extractor.extract, rows),
        "classify()": each(classifier.classify, rows),
        "classify().to_dict()": each(lambda t, a: classifier.classify(t, a).to_dict(), rows),
    }
    floor = 0.0
    print(f"{len(rows)} abstracts x {repeat}; CPU µs per abstract, fastest of 5")
    for name, run in parts.items():
        cost = _best_us(run, per)
        floor += cost
        print(f"  {name:44} {cost:6.1f}")
    print(f"  {'floor: extraction work in C':44} {floor:6.1f}")
    measured = {name: _best_us(run, per) for name, run in whole.items()}
    for name, cost in measured.items():
        print(f"  {name:44} {cost:6.1f}")
    for name in ("classify()", "classify().to_dict()"):
        half = measured[name] / 2
        print(f"half of {name}: {half:.1f} µs; the floor is {floor / half:.2f}x that, "
              f"extract() {measured['extract()'] / half:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
