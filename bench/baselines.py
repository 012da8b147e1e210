"""Off-the-shelf text classifiers on the topic task: how the shipped model compares.

Usage:
    python bench/baselines.py [--data PATH] [--repeats R]

Per topic, scikit-learn pipelines with no kratom knowledge (TF-IDF of words or characters,
then logistic regression, a calibrated linear SVM or complement naive Bayes) are scored
with repeated stratified 5-fold cross-validation; the decision threshold is chosen inside
each training fold, on out-of-fold probabilities of an inner 5-fold split, so nothing is
tuned on held-out rows. Prints macro-F1 (mean ± sd over repeats), per-topic F1 and
``dosing`` precision, to set beside ``kratomlit eval --cv``. Needs the train extra.
Exits 0 with a message when the dev file is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "kratom_dev.jsonl"
TOPICS = ("mechanism", "withdrawal", "safety", "dosing")


def _pipelines() -> dict[str, Callable[[], Any]]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import ComplementNB
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    def words() -> TfidfVectorizer:
        return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                               stop_words="english")
    return {
        "word 1-2-grams + LR (C=10, balanced)": lambda: make_pipeline(
            words(), LogisticRegression(C=10, class_weight="balanced", max_iter=2000)),
        "word 1-2-grams + LR (C=3)": lambda: make_pipeline(
            words(), LogisticRegression(C=3, max_iter=2000)),
        "word 1-2-grams + linear SVM (calibrated)": lambda: make_pipeline(
            words(), CalibratedClassifierCV(LinearSVC(C=0.5), cv=3)),
        "words + complement NB": lambda: make_pipeline(
            TfidfVectorizer(min_df=2, stop_words="english"), ComplementNB(alpha=0.3)),
        "char 3-5-grams + LR (C=10, balanced)": lambda: make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2,
                            sublinear_tf=True, max_features=60_000),
            LogisticRegression(C=10, class_weight="balanced", max_iter=2000)),
    }


def _threshold(y: Any, p: Any) -> float:
    """The probability cut with the best F1 on these (out-of-fold) scores."""
    import numpy as np
    from sklearn.metrics import f1_score
    cuts = np.arange(0.10, 0.91, 0.02)
    return float(max(cuts, key=lambda t: f1_score(y, p >= t, zero_division=0)))


def _run(make: Callable[[], Any], x: Any, y: Any, repeats: int) -> Any:
    """Per repeat: the four topics' F1, macro-F1 and dosing precision."""
    import numpy as np
    from sklearn.metrics import f1_score, precision_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    runs = []
    for repeat in range(repeats):
        predicted = np.zeros_like(y)
        for k in range(len(TOPICS)):
            outer = StratifiedKFold(5, shuffle=True, random_state=100 + repeat)
            for train, test in outer.split(x, y[:, k]):
                inner = StratifiedKFold(5, shuffle=True, random_state=7)
                oof = cross_val_predict(make(), x[train], y[train, k], cv=inner,
                                        method="predict_proba")[:, 1]
                cut = _threshold(y[train, k], oof)
                model = make().fit(x[train], y[train, k])
                predicted[test, k] = model.predict_proba(x[test])[:, 1] >= cut
        f1 = [f1_score(y[:, k], predicted[:, k]) for k in range(len(TOPICS))]
        runs.append(f1 + [float(np.mean(f1)), precision_score(y[:, 3], predicted[:, 3])])
    return np.array(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: dev data not found at {args.data} (pass --data PATH)")
        return 0
    import numpy as np
    warnings.filterwarnings("ignore")
    with args.data.open(encoding="utf-8") as handle:
        items = [json.loads(line) for line in handle if line.strip()]
    # the title twice, as the shipped model weighs the title above the body
    x = np.array([f"{i.get('title') or ''} . {i.get('title') or ''} . {i.get('abstract') or ''}"
                  for i in items], dtype=object)
    y = np.array([[t in i["labels"] for t in TOPICS] for i in items], dtype=int)
    print(f"{len(items)} abstracts, 5-fold x {args.repeats} repeats")
    for name, make in _pipelines().items():
        runs = _run(make, x, y, args.repeats)
        topics = " ".join(f"{t} {runs[:, i].mean():.3f}" for i, t in enumerate(TOPICS))
        spread = f" ± {runs[:, 4].std(ddof=1):.3f}" if len(runs) > 1 else ""
        print(f"{name:42} macro-F1 {runs[:, 4].mean():.3f}{spread} | "
              f"{topics} | dosing P {runs[:, 5].mean():.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
