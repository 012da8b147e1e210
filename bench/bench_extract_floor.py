"""The least extraction costs with today's rules: its work in C, against half of classification.

Usage:
    python bench/bench_extract_floor.py [--data PATH] [--repeat N]

Issue 13 asks that extraction add at most 50 % to classification time. This measures, on
the dev abstracts (title + abstract) in CPU time, the parts of ``Extractor.extract`` that
run in C: the matchable text, the automaton pass drained with nothing done per hit
(pyahocorasick's ``iter_long``), the lower-cased text (for the texts ``extract`` lowers),
and every regular-expression call the n and dose rules make (recorded from a real run of
``extract`` over the same abstracts, then replayed alone through bound methods: the replay
adds only its loop and the calls themselves). Their sum is a floor for the current rules
(fewer regex calls would need different rules); it is set beside ``classify()`` and
``classify().to_dict()`` timed in the same process. It also times the n and dose stages
alone, as ``extract`` runs them, with the automaton pass and the design decision done
beforehand. Exits 0 with a message when the dev file is absent.
"""

from __future__ import annotations

import argparse
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
from bench_extract import _records  # noqa: E402 (bench/ is on sys.path: the script's folder)

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


def _record(rows: list[tuple[str, str]]) -> tuple[list[Call], list[str]]:
    """Every regex call ``extract`` makes over ``rows``, and the texts it lower-cases
    (patterns and the function swapped back after)."""
    calls: list[Call] = []
    lowered: list[str] = []
    swapped: list[tuple[ModuleType, str, Any]] = []
    for module in (doses, sample_size, extract):
        for name, value in list(vars(module).items()):
            if isinstance(value, re.Pattern):
                swapped.append((module, name, value))
                setattr(module, name, _Recorder(value, calls))
    real_lower = extract.lowered_text
    swapped.append((extract, "lowered_text", real_lower))
    def lower(text: str) -> str:
        lowered.append(text)
        return real_lower(text)
    extract.lowered_text = lower
    try:
        extractor = extract.Extractor.load()
        for title, abstract in rows:
            extractor.extract(title, abstract)
    finally:
        for module, name, value in swapped:
            setattr(module, name, value)
    return calls, lowered


Replay = list[tuple[Callable[..., Any], tuple[Any, ...], bool]]


def _replay(calls: Replay) -> None:
    for method, args, drain in calls:
        result = method(*args)
        if drain:
            deque(result, 0)


def _best_us(run: Callable[[], object], per: int, tries: int = 5) -> float:
    """Fastest of ``tries`` runs, in CPU µs per abstract."""
    best = float("inf")
    for _ in range(tries):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best / per * 1e6


def _each(work: Callable[..., object], items: list[Any], repeat: int) -> Callable[[], None]:
    """Run ``work`` on every item, ``repeat`` times, keeping no result (a kept result would
    make the garbage collector's passes part of the time)."""
    def run() -> None:
        for _ in range(repeat):
            for item in items:
                work(*item)
    return run


def _floor_parts(rows: list[tuple[str, str]], repeat: int,
                 extractor: extract.Extractor) -> dict[str, Callable[[], object]]:
    """The parts of ``extract`` that run in C, each as a timed run over ``rows``."""
    recorded, lowered = _record(rows)
    calls = [(getattr(pattern, name), args, name == "finditer")
             for pattern, name, args, kwargs in recorded if not kwargs]
    if len(calls) != len(recorded):  # the rules pass no keyword arguments today
        raise SystemExit("a regex call with keyword arguments: extend _replay")
    texts = [f" {title}\n{abstract} " for title, abstract in rows]
    matchable = [extract._matchable(text) for text in texts]
    automaton = extractor._automaton

    def drain() -> None:
        for _ in range(repeat):
            for m in matchable:
                deque(automaton.iter_long(m), 0)

    return {
        "matchable text": _each(extract._matchable, [(t,) for t in texts], repeat),
        "automaton pass (iter_long drained)": drain,
        f"lower-cased text ({len(lowered)} of {len(texts)} texts)":
            _each(sample_size.lowered_text, [(t,) for t in lowered], repeat),
        f"regex calls replayed ({len(calls) / len(rows):.1f} an abstract)":
            _each(_replay, [(calls,)], repeat),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: dev data not found at {args.data} (pass --data PATH)")
        return 0
    rows = _records(args.data)
    repeat, per = args.repeat, args.repeat * len(rows)
    extractor, classifier = extract.Extractor.load(), Classifier.load()
    parts = _floor_parts(rows, repeat, extractor)
    whole = {
        "extract()": _each(extractor.extract, rows, repeat),
        "classify()": _each(classifier.classify, rows, repeat),
        "classify().to_dict()": _each(lambda t, a: classifier.classify(t, a).to_dict(), rows,
                                      repeat),
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
    n_cost, dose_cost = _stages(extractor, rows, repeat)
    print(f"  {'n alone (as extract runs it)':44} {n_cost:6.1f}")
    print(f"  {'doses alone (as extract runs them)':44} {dose_cost:6.1f}")
    for name in ("classify()", "classify().to_dict()"):
        half = measured[name] / 2
        print(f"half of {name}: {half:.1f} µs; the floor is {floor / half:.2f}x that, "
              f"extract() {measured['extract()'] / half:.2f}x, n and doses alone "
              f"{(n_cost + dose_cost) / half:.2f}x")
    return 0


def _stages(extractor: extract.Extractor, rows: list[tuple[str, str]],
            repeat: int) -> tuple[float, float]:
    """CPU µs per abstract of the n and the dose stages, with what ``extract`` hands them
    (hits, background, anchors, design, lower-cased text) made beforehand."""
    inputs = []
    for title, abstract in rows:
        text, body = f" {title}\n{abstract} ", len(title) + 2
        hits, bg_end, anchors, substances = extractor._hits(text, body)
        sums = [0.0] * len(extract.DESIGNS)
        extractor._score_text(text, body, bg_end, hits, sums, [])
        design = extractor._decide(sums)[0]
        low = (sample_size.lowered_text(text) if anchors[1] or anchors[2] or
               (anchors[0] and design in extract.HUMAN_DESIGNS) else text)
        inputs.append((design, text, body, bg_end, anchors, substances, low))

    def n_stage() -> None:
        for _ in range(repeat):
            for design, text, body, bg_end, anchors, _, low in inputs:
                extractor._n(design, text, body, bg_end, anchors[0], anchors[3], low)

    def dose_stage() -> None:
        for _ in range(repeat):
            for _, text, _, _, anchors, substances, low in inputs:
                doses.find_doses(text, anchors[1], anchors[2], substances, lowered=low)

    per = repeat * len(rows)
    return _best_us(n_stage, per), _best_us(dose_stage, per)


if __name__ == "__main__":
    raise SystemExit(main())
