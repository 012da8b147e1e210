"""Fit the topic model from labelled abstracts, and measure it honestly by cross-validation.

Needs the ``train`` extra (scikit-learn, numpy, scipy); classifying does not
(``kratomlit.classify`` reads the model file this module writes).

What is learned, always from the training data alone (so cross-validation refits all of it
inside each training fold):

* the vocabulary: word unigrams and bigrams found in at least ``min_df`` training abstracts
  (none with a stop word or research boilerplate: ``_STOP``), next to the lexicon's
  phrases and amount units (``data/topics.toml``, candidates only: the
  lexicon's old hand weights are not used);
* per topic, L2-regularised logistic regression weights; the regularisation strength C is
  chosen by an inner stratified K-fold on the training data;
* calibration: Platt scaling fitted on the inner folds' out-of-fold scores, folded into the
  weights, so ``1 / (1 + exp(-(b + w.x)))`` is the calibrated probability;
* the threshold: the one maximising F1 on those out-of-fold probabilities;
* pruning: per topic only the ``keep`` largest weights (by |w| x how often the feature is
  present) stay, and the model is refitted on them, so the runtime automaton is small.

Fixed by design, not learned: the zone weights (title/body 1, background 0, hedged 0.5),
the extractor and the cues that find the background.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from kratomlit.classify import (
    CUE_KINDS,
    MODEL_FORMAT,
    TOPICS,
    Extractor,
    Feature,
    ModelError,
    Zones,
    default_lexicon_path,
    matchable,
    model_version,
)
from kratomlit.evaluate import metrics

# Words an n-gram candidate may not contain: English function words (scikit-learn's list)
# and the vocabulary every abstract uses to describe itself ("study", "conducted",
# "presented", "various"). They carried no topic, yet some won small positive weights on 262
# abstracts and were shown as evidence ("when" 7 times, "presented", "evaluate",
# "unique"). Cross-validated (10 x 5-fold, paired): macro-F1 0.790 +- 0.009 against
# 0.793 +- 0.008 with the 28 function words used before ("a an and are as ... which with",
# all in scikit-learn's list; delta -0.002 +- 0.013, noise); evidence rows of assigned
# topics from learned n-grams 135 -> 102 of ~930 on the dev set.
_BOILERPLATE = frozenset("""study studies studied conducted collected evaluate evaluated
evaluation presented purpose aim aims aimed objective objectives background method methods
result results conclusion conclusions conclude concluded research aspects unique various
several reported report reports reviewed review investigate investigated examined examine
describe described present findings finding data analysis analyzed analysed assessed assess
available current however also using used use based including included well may might
could""".split())
_STOP = ENGLISH_STOP_WORDS | _BOILERPLATE


@dataclass(frozen=True)
class Settings:
    """Everything that shapes training besides the data (recorded in the model file)."""

    zones: Zones = field(default_factory=Zones)
    min_df: int = 3  # an n-gram must be in this many training abstracts
    max_df: float = 0.15  # ... and in at most this share of them (common words: no signal)
    ngrams: int = 2
    c_grid: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    inner_folds: int = 5
    keep: int = 400  # features kept per topic after the first fit
    prior_scale: float = 5.0
    plain: bool = True  # phrase and n-gram features next to the prior sums
    own_prior: bool = False  # True: each topic sees only its own lexicon sum (CV 0.805 ± 0.009, but
    # it loses the lexicon's cross-topic negatives: 3 more coverage abstracts wrong)
    min_weight: float = 0.05  # effective weights smaller than this are dropped
    prior: str = "linear"  # the lexicon's weighted sums as features: none/linear/saturated
    seed: int = 12
    stop_words: str = "scikit-learn English + research boilerplate"  # see _STOP


@dataclass(frozen=True)
class Lexicon:
    """Candidate phrases, amount units and the zone cues, from ``data/topics.toml``, with
    the hand-set weights as a prior (feature -> topic -> weight)."""

    phrases: tuple[str, ...]
    amounts: tuple[str, ...]
    cues: dict[str, list[str]]
    prior: dict[Feature, dict[str, float]] = field(default_factory=dict)


def _names(table: Any) -> list[str]:
    if isinstance(table, dict):
        return [str(k) for k in table]
    if isinstance(table, list):
        return [str(k) for k in table]
    return []


def read_lexicon(path: Path | None = None) -> Lexicon:
    """Phrases (every topic's and the off-topic ones), units and cues from the lexicon."""
    path = Path(path) if path is not None else default_lexicon_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the lexicon ({exc})") from exc
    phrases: list[str] = []
    amounts: list[str] = []
    prior: dict[Feature, dict[str, float]] = {}
    for section in (*TOPICS, "off_topic"):
        table = data.get(section, {})
        phrases += _names(table.get("terms"))
        amounts += _names(table.get("amounts"))
        for kind, name in (("phrase", "terms"), ("amount", "amounts")):
            values = table.get(name)
            if not isinstance(values, dict):
                continue
            for key, weight in values.items():
                feature = Feature(kind, key.strip().lower())
                for topic in (TOPICS if section == "off_topic" else (section,)):
                    slot = prior.setdefault(feature, {})
                    slot[topic] = max(slot.get(topic, 0.0), float(weight), key=abs)
    cues = data.get("cues", {})
    missing = [k for k in CUE_KINDS if not isinstance(cues.get(k), list)]
    if missing:
        raise ModelError(f"{path}: [cues] lacks {', '.join(missing)}")
    unique = sorted({p.strip().lower() for p in phrases if p.strip()})
    units = sorted({a.strip().lower() for a in amounts if a.strip()})
    return Lexicon(tuple(unique), tuple(units), {k: list(cues[k]) for k in CUE_KINDS}, prior)


# -- data -------------------------------------------------------------------------------------
def _fields(item: dict[str, Any]) -> dict[str, Any]:
    return {"mesh": item.get("mesh") or (), "keywords": item.get("keywords") or (),
            "publication_types": item.get("publication_types") or ()}


def _tokens(item: dict[str, Any]) -> set[str]:
    """The item's word n-grams (no digits, no stop words), for the vocabulary."""
    grams: set[str] = set()
    text = matchable(f"{item.get('title') or ''}. {item.get('abstract') or ''}")
    for sentence in text.split(". "):
        words = [w.strip(".") for w in sentence.split()]
        words = [w if w.isalpha() and len(w) > 1 else "" for w in words]
        for n in range(1, 3):
            for i in range(len(words) - n + 1):
                gram = words[i:i + n]
                if all(gram) and not any(g in _STOP for g in gram):  # "the opioid" reads badly
                    grams.add(" ".join(gram))
    return grams


def labels_matrix(items: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.array([[t in item["labels"] for t in TOPICS] for item in items], dtype=int)


class _Data:
    """Every candidate feature of every item, extracted once; folds take columns of it."""

    def __init__(self, items: Sequence[dict[str, Any]], lexicon: Lexicon,
                 settings: Settings) -> None:
        self.items = list(items)
        self.grams = [_tokens(item) for item in self.items]
        all_grams = sorted(set().union(*self.grams)) if self.grams else []
        lex = [Feature("phrase", p) for p in lexicon.phrases]
        lex += [Feature("amount", a) for a in lexicon.amounts]
        names = {f.name for f in lex if f.kind == "phrase"}
        self.features = lex + [Feature("phrase", g) for g in all_grams if g not in names]
        self.n_lexicon = len(lex)
        self.cues = lexicon.cues
        extractor = Extractor(self.features, lexicon.cues, settings.zones)
        rows, cols, vals = [], [], []
        for r, item in enumerate(self.items):
            for c, v in extractor.values(item.get("title"), item.get("abstract"),
                                         **_fields(item)).items():
                rows.append(r)
                cols.append(c)
                vals.append(v)
        x = sparse.csr_matrix((vals, (rows, cols)),
                              shape=(len(self.items), len(self.features)))
        self.prior = np.zeros((len(self.features), len(TOPICS)))
        for i, f in enumerate(self.features[:self.n_lexicon]):
            for t, w in lexicon.prior.get(f, {}).items():
                self.prior[i, TOPICS.index(t)] = w
        sums = np.asarray(x @ self.prior)
        if settings.prior == "saturated":
            sums = 1 - np.exp(-sums)
        sums = sums * settings.prior_scale
        self.n_plain = len(self.features)
        self.plain = settings.plain
        if settings.prior != "none":
            x = sparse.hstack([x, sparse.csr_matrix(sums)]).tocsr()
        self.x = x
        self.y = labels_matrix(self.items)
        self._index = {f: i for i, f in enumerate(self.features)}

    def columns(self, train: np.ndarray, min_df: int, max_df: float) -> np.ndarray:
        """Lexicon features plus the n-grams in at least ``min_df`` training items and in at
        most ``max_df`` of them."""
        df: Counter[str] = Counter()
        for r in train:
            df.update(self.grams[r])
        most = max_df * len(train)
        grams = [self._index[Feature("phrase", g)] for g, n in df.items()
                 if min_df <= n <= most and Feature("phrase", g) in self._index]
        present = np.asarray((self.x[train] > 0).sum(axis=0)).ravel()
        lexicon = [i for i in range(self.n_lexicon) if present[i] > 0]
        priors = list(range(self.n_plain, self.x.shape[1]))
        if not self.plain:
            return np.array(priors, dtype=int)
        return np.array(sorted(set(lexicon) | set(grams) | set(priors)), dtype=int)


# -- fitting ----------------------------------------------------------------------------------
@dataclass
class TopicFit:
    """One topic's fitted model over some columns: weights already Platt-scaled."""

    columns: np.ndarray
    weights: np.ndarray
    intercept: float
    threshold: float
    c: float


def _lr(c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, solver="liblinear", random_state=seed, max_iter=1000)


def _oof_scores(x: Any, y: np.ndarray, c: float, settings: Settings) -> np.ndarray:
    """Out-of-fold decision values over an inner stratified K-fold."""
    folds = StratifiedKFold(n_splits=_n_splits(y, settings.inner_folds), shuffle=True,
                            random_state=settings.seed)
    out = np.zeros(len(y))
    for tr, te in folds.split(np.zeros(len(y)), y):
        model = _lr(c, settings.seed).fit(x[tr], y[tr])
        out[te] = model.decision_function(x[te])
    return out


def _n_splits(y: np.ndarray, wanted: int) -> int:
    return max(2, min(wanted, int(y.sum()), int(len(y) - y.sum())))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and offset mapping decision values to calibrated log-odds."""
    model = LogisticRegression(C=1e4, solver="lbfgs").fit(scores.reshape(-1, 1), y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability cut maximising F1 (ties: closest to 0.5), on a 0.01 grid."""
    best, best_key = 0.5, (-1.0, 0.0)
    for t in np.round(np.arange(0.10, 0.91, 0.01), 2):
        pred = p >= t
        tp = int((pred & (y == 1)).sum())
        f1 = 2 * tp / (pred.sum() + y.sum()) if pred.sum() + y.sum() else 0.0
        key = (round(f1, 6), -abs(t - 0.5))
        if key > best_key:
            best, best_key = float(t), key
    return best


def _fit_topic(x: Any, y: np.ndarray, columns: np.ndarray, settings: Settings) -> TopicFit:
    """C by inner CV (log loss of Platt-scaled OOF scores), prune, refit, calibrate, cut."""
    xs = x[:, columns]
    best_c, best_loss, best_oof = settings.c_grid[0], float("inf"), np.zeros(len(y))
    for c in settings.c_grid:
        oof = _oof_scores(xs, y, c, settings)
        a, b = _platt(oof, y)
        loss = _log_loss(y, 1 / (1 + np.exp(-(a * oof + b))))
        if loss < best_loss - 1e-9:
            best_c, best_loss, best_oof = c, loss, oof
    del best_oof
    first = _lr(best_c, settings.seed).fit(xs, y)
    present = np.asarray((xs > 0).sum(axis=0)).ravel()
    strength = np.abs(first.coef_[0]) * np.sqrt(present)
    order = np.argsort(-strength, kind="stable")[:settings.keep]
    kept = np.sort(order[strength[order] > 0])
    cols = columns[kept]
    xk = x[:, cols]
    oof = _oof_scores(xk, y, best_c, settings)
    a, b = _platt(oof, y)
    threshold = best_threshold(y, 1 / (1 + np.exp(-(a * oof + b))))
    model = _lr(best_c, settings.seed).fit(xk, y)
    return TopicFit(cols, a * model.coef_[0], a * float(model.intercept_[0]) + b, threshold,
                    best_c)


@dataclass
class Fitted:
    """All four topics' models as the classifier runs them: effective weights over the plain
    features (the lexicon-sum coefficients folded in, rounded, tiny ones dropped)."""

    weights: np.ndarray  # plain features x topics
    intercepts: np.ndarray
    thresholds: np.ndarray
    c: list[float]
    shares: dict[str, dict[str, float]]


def _fit_all(data: _Data, train: np.ndarray, settings: Settings) -> Fitted:
    columns = data.columns(train, settings.min_df, settings.max_df)
    x = data.x[train]
    effective = np.zeros((data.n_plain, len(TOPICS)))
    shares: dict[str, dict[str, float]] = {}
    fits = []
    for k, topic in enumerate(TOPICS):
        cols = columns
        if settings.own_prior:  # a topic's model sees only its own lexicon sum
            other = {data.n_plain + j for j in range(len(TOPICS)) if j != k}
            cols = np.array([c for c in columns if c not in other], dtype=int)
        fit = _fit_topic(x, data.y[train, k], cols, settings)
        fits.append(fit)
        for col, w in zip(fit.columns, fit.weights, strict=True):
            if col < data.n_plain:
                effective[col, k] += w
            else:  # a lexicon sum: its coefficient spreads over the lexicon's phrases
                source = col - data.n_plain
                effective[:, k] += w * settings.prior_scale * data.prior[:, source]
                shares.setdefault(topic, {})[TOPICS[source]] = round(
                    float(w) * settings.prior_scale, 4)
    effective = np.round(effective, 4)
    effective[np.abs(effective) < settings.min_weight] = 0.0
    return Fitted(effective, np.round([f.intercept for f in fits], 4),
                  np.array([f.threshold for f in fits]), [f.c for f in fits], shares)


def _predict(data: _Data, rows: np.ndarray, fitted: Fitted) -> np.ndarray:
    """Probabilities (rows x topics), rounded as the classifier rounds them."""
    z = data.x[rows][:, :data.n_plain] @ fitted.weights + fitted.intercepts
    return np.round(1 / (1 + np.exp(-z)), 3)


# -- cross-validation -------------------------------------------------------------------------
def _strata(y: np.ndarray, k: int) -> list[str]:
    """Stratify on the label combination; combinations rarer than K pool by topic count."""
    keys = ["".join(map(str, row)) for row in y]
    counts = Counter(keys)
    pooled = [key if counts[key] >= k else f"n{key.count('1')}" for key in keys]
    counts = Counter(pooled)
    largest = counts.most_common(1)[0][0] if counts else ""
    return [key if counts[key] >= k else largest for key in pooled]


@dataclass
class CVReport:
    """Repeated stratified K-fold results: per repeat, pooled over its folds."""

    k: int
    repeats: int
    n: int
    per_topic: dict[str, dict[str, tuple[float, float]]]  # topic -> metric -> (mean, sd)
    macro_f1: tuple[float, float]
    micro_f1: tuple[float, float]
    brier: dict[str, float]
    reliability: list[dict[str, Any]]
    thresholds: dict[str, tuple[float, float]]
    subsets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return round(statistics.fmean(values), 4), round(sd, 4)


def _scores(gold: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    g = [{t for t, v in zip(TOPICS, row, strict=True) if v} for row in gold]
    p = [{t for t, v in zip(TOPICS, row, strict=True) if v} for row in pred]
    per = metrics(g, p)
    tp = sum(m.tp for m in per.values())
    fp = sum(m.fp for m in per.values())
    fn = sum(m.fn for m in per.values())
    micro = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"per": per, "macro": sum(m.f1 for m in per.values()) / len(TOPICS), "micro": micro}


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Predicted vs observed positive rate in equal-width probability bins (all topics)."""
    rows = []
    flat_y, flat_p = y.ravel(), p.ravel()
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        mask = (flat_p >= lo) & ((flat_p < hi) if b < bins - 1 else (flat_p <= hi))
        if mask.any():
            rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(mask.sum()),
                         "mean_predicted": round(float(flat_p[mask].mean()), 3),
                         "observed": round(float(flat_y[mask].mean()), 3)})
    return rows


def cross_validate(items: Sequence[dict[str, Any]], k: int = 5, repeats: int = 3,
                   settings: Settings | None = None, lexicon: Lexicon | None = None,
                   subsets: dict[str, Sequence[int]] | None = None,
                   train_share: float = 1.0) -> CVReport:
    """Repeated stratified K-fold: vocabulary, weights, C, calibration and thresholds are
    all refitted inside each training fold; each repeat is scored on its pooled
    out-of-fold predictions, and the report gives mean and sd over repeats.

    ``train_share`` < 1 fits each fold on that share of its training rows only (a learning
    curve: the folds, and so the held-out rows, stay the same for every share)."""
    if not 0.0 < train_share <= 1.0:
        raise ValueError(f"train_share must be in (0, 1], got {train_share}")
    settings = settings or Settings()
    data = _Data(items, lexicon or read_lexicon(), settings)
    y = data.y
    splitter = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats,
                                       random_state=settings.seed)
    probs = np.zeros((repeats, len(items), len(TOPICS)))
    cuts = np.zeros((repeats, len(items), len(TOPICS)), dtype=bool)
    chosen: dict[str, list[float]] = {t: [] for t in TOPICS}
    strata = _strata(y, k)
    for n, (train, test) in enumerate(splitter.split(np.zeros(len(items)), strata)):
        if train_share < 1.0:
            rng = np.random.default_rng((settings.seed, n))
            train = _stratified_order(train, strata, rng)[:round(train_share * len(train))]
            train.sort()
            if len(train) < 2 * settings.inner_folds:
                raise ValueError(f"train_share {train_share} leaves {len(train)} training "
                                 f"rows a fold; at least {2 * settings.inner_folds} are needed")
        fitted = _fit_all(data, train, settings)
        p = _predict(data, test, fitted)
        probs[n // k, test] = p
        cuts[n // k, test] = p >= fitted.thresholds
        for t, threshold in zip(TOPICS, fitted.thresholds, strict=True):
            chosen[t].append(float(threshold))
    runs = [_scores(y, cuts[r]) for r in range(repeats)]
    report = _report(k, repeats, y, probs, runs, chosen)
    for name, rows in (subsets or {}).items():
        idx = np.array(rows, dtype=int)
        sub = [_scores(y[idx], cuts[r][idx]) for r in range(repeats)]
        report.subsets[name] = {"n": len(idx), "macro_f1": _mean_sd([s["macro"] for s in sub]),
                                "f1": {t: _mean_sd([s["per"][t].f1 for s in sub])
                                       for t in TOPICS}}
    return report


def _stratified_order(rows: np.ndarray, strata: Sequence[str],
                      rng: np.random.Generator) -> np.ndarray:
    """``rows`` in a seeded order whose every prefix holds each stratum in proportion
    (systematic sampling per stratum), so a smaller share is part of a larger one."""
    groups: dict[str, list[int]] = {}
    for r in rows:
        groups.setdefault(strata[r], []).append(int(r))
    ordered, position, tie = [], [], []
    for key in sorted(groups):
        members = rng.permutation(groups[key])
        offset = rng.random()
        for i, r in enumerate(members):
            ordered.append(int(r))
            position.append((i + offset) / len(members))
            tie.append(rng.random())
    return np.array(ordered)[np.lexsort((np.array(tie), np.array(position)))]


def _report(k: int, repeats: int, y: np.ndarray, probs: np.ndarray, runs: list[dict[str, Any]],
            chosen: dict[str, list[float]]) -> CVReport:
    per_topic = {
        t: {name: _mean_sd([getattr(r["per"][t], name) for r in runs])
            for name in ("precision", "recall", "f1")}
        for t in TOPICS
    }
    brier = {t: round(float(np.mean((probs[:, :, i] - y[:, i]) ** 2)), 4)
             for i, t in enumerate(TOPICS)}
    stacked_y = np.concatenate([y] * repeats)
    table = reliability_table(stacked_y, probs.reshape(-1, len(TOPICS)))
    return CVReport(k, repeats, len(y), per_topic, _mean_sd([r["macro"] for r in runs]),
                    _mean_sd([r["micro"] for r in runs]), brier, table,
                    {t: _mean_sd(v) for t, v in chosen.items()})


# -- the model file ---------------------------------------------------------------------------
def data_hash(items: Sequence[dict[str, Any]]) -> str:
    """sha256 over what training reads of each item, in order."""
    digest = hashlib.sha256()
    for item in items:
        used = {k: item.get(k) for k in ("pmid", "title", "abstract", "mesh", "keywords",
                                         "publication_types", "labels")}
        digest.update(json.dumps(used, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def fit_model(items: Sequence[dict[str, Any]], settings: Settings | None = None,
              lexicon: Lexicon | None = None) -> dict[str, Any]:
    """Fit on all items and return the model file's content (without CV scores)."""
    settings = settings or Settings()
    lexicon = lexicon or read_lexicon()
    data = _Data(items, lexicon, settings)
    fitted = _fit_all(data, np.arange(len(items)), settings)
    weights: dict[int, dict[str, float]] = {}
    for col, k in zip(*np.nonzero(fitted.weights), strict=True):
        weights.setdefault(int(col), {})[TOPICS[k]] = float(fitted.weights[col, k])
    order = sorted(weights, key=lambda c: (-max(abs(v) for v in weights[c].values()),
                                           data.features[c].name))
    rows = [{"kind": data.features[c].kind, "feature": data.features[c].name,
             "weights": weights[c]} for c in order]
    zones = asdict(settings.zones)
    return {
        "format": MODEL_FORMAT,
        "about": "Learned topic model: logit(p) = intercept + sum(weight x value); a "
                 "feature's value is its best occurrence's zone weight (see docs/classifier.md)",
        "zones": zones,
        "cues": lexicon.cues,
        "intercepts": {t: float(v) for t, v in zip(TOPICS, fitted.intercepts, strict=True)},
        "thresholds": {t: float(v) for t, v in zip(TOPICS, fitted.thresholds, strict=True)},
        "features": rows,
        "training": {
            "n": len(items),
            "sha256": data_hash(items),
            "labels": {t: int(data.y[:, i].sum()) for i, t in enumerate(TOPICS)},
            "date": dt.date.today().isoformat(),
            "candidates": len(data.features),
            "regularisation_C": dict(zip(TOPICS, fitted.c, strict=True)),
            "lexicon_share": fitted.shares,
            "settings": {k: v for k, v in asdict(settings).items() if k != "zones"},
        },
    }


def train(items: Sequence[dict[str, Any]], sources: Sequence[str], cv_k: int = 5,
          cv_repeats: int = 3, settings: Settings | None = None) -> dict[str, Any]:
    """The complete model file: fitted on all items, with its cross-validated scores."""
    settings = settings or Settings()
    lexicon = read_lexicon()
    model = fit_model(items, settings, lexicon)
    model["training"]["files"] = [Path(s).name for s in sources]
    if cv_k:
        model["cv"] = cross_validate(items, cv_k, cv_repeats, settings, lexicon).to_dict()
    model["version"] = model_version(model)
    return model


def write_model(model: dict[str, Any], path: Path) -> None:
    """One feature per line, so the file reads (and diffs) as a table."""
    lines = ["{"]
    keys = list(model)
    for n, key in enumerate(keys):
        comma = "," if n < len(keys) - 1 else ""
        if key == "features":
            rows = [json.dumps(r, ensure_ascii=False) for r in model[key]]
            body = ",\n    ".join(rows)
            lines.append(f'  "features": [\n    {body}\n  ]{comma}')
        else:
            value = json.dumps(model[key], ensure_ascii=False, indent=2).replace("\n", "\n  ")
            lines.append(f"  {json.dumps(key)}: {value}{comma}")
    lines.append("}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- what the CLI runs ------------------------------------------------------------------------
def load_gold(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Labelled items from one or more JSONL files; file problems become InputError."""
    from kratomlit.errors import InputError
    from kratomlit.evaluate import InputLineError, read_items

    items: list[dict[str, Any]] = []
    for path in paths:
        try:
            items += read_items(Path(path), require_labels=True)
        except InputLineError as exc:
            raise InputError(f"{path}, {exc}.") from None
        except OSError as exc:
            raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if len(items) < 10:
        raise InputError(f"{', '.join(map(str, paths))}: {len(items)} labelled abstracts; "
                         "training needs at least 10.")
    missing = [t for i, t in enumerate(TOPICS) if not 2 <= labels_matrix(items)[:, i].sum()
               <= len(items) - 2]
    if missing:
        raise InputError(f"Every topic needs at least 2 positive and 2 negative examples to "
                         f"learn from; not so for {', '.join(missing)}.")
    return items


def train_files(paths: Sequence[Path], output: Path, cv_k: int = 5,
                cv_repeats: int = 3) -> dict[str, Any]:
    """Fit on the gold files, write the model to ``output``; returns a summary."""
    from kratomlit.errors import ExportError

    if not Path(output).parent.is_dir():
        raise ExportError(f"Cannot write {output}: folder {Path(output).parent} does not exist.")
    items = load_gold(paths)
    model = train(items, [str(p) for p in paths], cv_k, cv_repeats)
    try:
        write_model(model, output)
    except OSError as exc:
        raise ExportError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    summary: dict[str, Any] = {"model": str(output), "version": model["version"],
                               "trained_on": len(items), "features": len(model["features"]),
                               "thresholds": model["thresholds"]}
    if "cv" in model:
        summary["cv_macro_f1"] = model["cv"]["macro_f1"]
    return summary


def cross_validate_files(paths: Sequence[Path], k: int = 5, repeats: int = 3) -> CVReport:
    """Cross-validate the training procedure on the gold files."""
    return cross_validate(load_gold(paths), k, repeats)
