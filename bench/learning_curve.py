"""Would more labels of the same kind reach the topic targets? A learning curve.

Usage:
    python bench/learning_curve.py [--data PATH] [--repeats R] [--k K] [--shares S ...]

Runs ``kratomlit.train.cross_validate`` with each training fold cut to a share of its rows
(``train_share``; the folds and so the held-out rows are the same for every share, and
everything learned is fitted on the share only), then fits ``F1 = a - b * n^-c`` to each
metric's means against the training-set size ``n``. ``a`` is where more data of this kind
levels off; the script says whether and where each curve crosses its target (issue 12:
macro-F1 0.90, every topic 0.85, ``dosing`` precision 0.85). Needs the train extra
(scikit-learn, scipy). Single-threaded; ~10 s a repeat on this machine with the default
six shares. ``--score-from N`` scores only the rows from line N on (every row is still
trained on and predicted as usual): ``--score-from 97`` scores the dev file's second
release, the 165 abstracts the lexicon prior was not hand-tuned on (the prior, fixed at
every share, lifts the first 97). ``dosing P`` is then not reported. Exits 0 with a
message when the dev file is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "kratom_dev.jsonl"
SHARES = (0.25, 0.4, 0.55, 0.7, 0.85, 1.0)
TARGETS = {"macro-F1": 0.90, "mechanism": 0.85, "withdrawal": 0.85, "safety": 0.85,
           "dosing": 0.85, "dosing P": 0.85}

sys.path.insert(0, str(REPO))


def _fit(sizes: list[float], means: list[float]) -> tuple[float, float, float] | None:
    """a, b, c of ``a - b * n^-c`` (least squares), or None when it does not converge."""
    import numpy as np
    from scipy.optimize import curve_fit

    def curve(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        return a - b * np.power(n, -c)
    try:
        found, _ = curve_fit(curve, np.array(sizes), np.array(means), p0=(means[-1] + 0.05,
                             1.0, 0.5), bounds=((0.0, 0.0, 0.05), (1.5, 1e4, 5.0)),
                             maxfev=20_000)
    except (RuntimeError, ValueError):
        return None
    a, b, c = (float(v) for v in found)
    return a, b, c


def _crossing(fit: tuple[float, float, float], target: float, largest: float) -> str:
    a, b, c = fit
    if a <= target:
        return "never (levels off below)"
    n = (b / (a - target)) ** (1 / c)
    if n <= largest:
        return "reached within the data"
    return f"n ~ {math.ceil(n):,}" if n < 1e7 else "only past 10 million"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--shares", type=float, nargs="+", default=list(SHARES))
    parser.add_argument("--json", type=Path, help="also write the table and fits here")
    parser.add_argument("--score-from", type=int, default=0, metavar="N",
                        help="score only rows N.. (97: the second release)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: dev data not found at {args.data} (pass --data PATH)")
        return 0
    from kratomlit.train import cross_validate, load_gold

    items = load_gold([args.data])
    rows: list[dict[str, float]] = []
    started = time.perf_counter()
    print(f"{len(items)} abstracts, {args.k}-fold x {args.repeats} repeats per share"
          + (f"; scored on rows {args.score_from}-{len(items) - 1}" if args.score_from else ""))
    print(f"{'share':>6} {'n':>6} {'macro-F1':>16} {'mech':>6} {'withdr':>6} {'safety':>6} "
          f"{'dosing':>6} {'dos P':>6}")
    for share in args.shares:
        scored: dict[str, Sequence[int]] | None = (
            {"scored": range(args.score_from, len(items))} if args.score_from else None)
        report = cross_validate(items, k=args.k, repeats=args.repeats, train_share=share,
                                subsets=scored)
        row = {"share": share, "n": round(share * len(items) * (args.k - 1) / args.k, 1)}
        if scored:
            sub = report.subsets["scored"]
            f1 = {t: sub["f1"][t][0] for t in sub["f1"]}
            row |= {"macro-F1": sub["macro_f1"][0], "macro-F1 sd": sub["macro_f1"][1], **f1,
                    "dosing P": float("nan")}
        else:
            f1 = {t: report.per_topic[t]["f1"][0] for t in report.per_topic}
            row |= {"macro-F1": report.macro_f1[0], "macro-F1 sd": report.macro_f1[1], **f1,
                    "dosing P": report.per_topic["dosing"]["precision"][0]}
        rows.append(row)
        print(f"{share:6.2f} {row['n']:6.1f} {row['macro-F1']:.4f} ± {row['macro-F1 sd']:.4f} "
              f"{f1['mechanism']:6.3f} {f1['withdrawal']:6.3f} {f1['safety']:6.3f} "
              f"{f1['dosing']:6.3f} {row['dosing P']:6.3f}", flush=True)
    fits: dict[str, list[float] | None] = {}
    if len(rows) >= 4:
        print("\nF1 = a - b * n^-c fitted to the means; a is where more such labels level off")
        for metric, target in TARGETS.items():
            if math.isnan(rows[0][metric]):
                continue
            fit = _fit([r["n"] for r in rows], [r[metric] for r in rows])
            fits[metric] = list(fit) if fit else None
            if fit is None:
                print(f"  {metric:10} no fit")
                continue
            print(f"  {metric:10} a={fit[0]:.3f} b={fit[1]:.3g} c={fit[2]:.3f}; "
                  f"target {target}: {_crossing(fit, target, rows[-1]['n'])}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "fits": fits, "repeats": args.repeats,
                                         "k": args.k}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
