"""JSONL input/output for ``classify``/``eval`` and the metrics that judge the classifier.

Input lines are JSON objects: ``pmid`` (required), ``title`` and/or ``abstract`` (at least
one key; values may be null or empty), optional ``mesh``, ``keywords``,
``publication_types`` (lists of strings) and ``labels`` (list of topic names). Every line is
validated before anything is written, and output is written to a temporary file in the
target folder and moved into place, so a bad line never leaves a partial file behind.

Metrics: per-topic precision, recall and F1 over records. A topic with no gold and no
predicted positives scores P = R = F1 = 1.0 (nothing to find, nothing wrongly found); a
topic with no predicted positives but some gold has P = 0 (and vice versa R = 0). Macro-F1
is the mean over the four topics; micro-F1 pools their counts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kratomlit.cells import json_line
from kratomlit.classify import Classification
from kratomlit.files import atomic_path
from kratomlit.models import TOPICS

if TYPE_CHECKING:
    from kratomlit.extract import Extractor
    from kratomlit.extract_eval import ExtractionReport

_LIST_FIELDS = ("mesh", "keywords", "publication_types")


class _Classifies(Protocol):
    def classify(self, title: str | None, abstract: str | None, mesh: Any = (),
                 keywords: Any = (), publication_types: Any = ()) -> Classification: ...


class InputLineError(ValueError):
    """A bad line in a JSONL input file; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def _check_item(item: object, require_labels: bool) -> str | None:
    """Problem with one parsed line, or None when it is usable."""
    if not isinstance(item, dict):
        return "not a JSON object"
    if "pmid" not in item or item["pmid"] in (None, ""):
        return "missing field 'pmid'"
    if not isinstance(item["pmid"], str | int) or isinstance(item["pmid"], bool):
        return "field 'pmid' must be a string or integer"
    if "title" not in item and "abstract" not in item:
        return "missing field 'title' or 'abstract'"
    for name in ("title", "abstract"):
        if item.get(name) is not None and not isinstance(item[name], str):
            return f"field '{name}' must be a string or null"
    for name in _LIST_FIELDS:
        value = item.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            return f"field '{name}' must be a list of strings"
    return _check_labels(item, require_labels)


def _check_labels(item: dict[str, Any], require_labels: bool) -> str | None:
    if "labels" not in item:
        return "missing field 'labels'" if require_labels else None
    labels = item["labels"]
    if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
        return "field 'labels' must be a list of topic names"
    unknown = sorted(set(labels) - set(TOPICS))
    if unknown:
        return f"unknown topic {unknown[0]!r} in 'labels' (known: {', '.join(TOPICS)})"
    return None


def read_items(path: Path, require_labels: bool = False) -> list[dict[str, Any]]:
    """Read and validate a JSONL file; raise InputLineError naming the first bad line."""
    items: list[dict[str, Any]] = []
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a BOM from Windows editors
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputLineError(number, "not valid UTF-8") from exc
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputLineError(number, f"not valid JSON ({exc.msg})") from exc
            problem = _check_item(item, require_labels)
            if problem:
                raise InputLineError(number, problem)
            items.append(item)
    return items


def classify_item(classifier: _Classifies, item: dict[str, Any]) -> Classification:
    """Classify one validated input item."""
    return classifier.classify(
        item.get("title"), item.get("abstract"),
        mesh=item.get("mesh") or (), keywords=item.get("keywords") or (),
        publication_types=item.get("publication_types") or (),
    )


def classify_file(classifier: _Classifies, in_path: Path, out_path: Path,
                  extractor: Extractor | None = None) -> int:
    """Classify every line of ``in_path`` into ``out_path`` (JSONL, same order), with
    the study design, n and doses when an ``extractor`` is given.

    All input is validated first; the output appears atomically or not at all.
    Returns the number of records written.
    """
    items = read_items(in_path)
    with atomic_path(Path(out_path)) as tmp, tmp.open("w", encoding="utf-8") as out:
        for item in items:
            line = {"pmid": item["pmid"], **classify_item(classifier, item).to_dict()}
            if extractor is not None:
                line.update(extractor.extract(
                    item.get("title"), item.get("abstract"), item.get("mesh") or (),
                    item.get("publication_types") or (), item.get("keywords") or ()).to_dict())
            out.write(json_line(line))
    return len(items)


@dataclass
class TopicMetrics:
    """Counts and scores for one topic."""

    topic: str
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    support: int  # gold positives


@dataclass
class EvalReport:
    """Per-topic metrics, pooled scores and the records the classifier got wrong."""

    per_topic: dict[str, TopicMetrics]
    micro_f1: float
    macro_f1: float
    n: int
    misses: list[dict[str, Any]] = field(default_factory=list)
    false_alarms: list[dict[str, Any]] = field(default_factory=list)
    extraction: ExtractionReport | None = None  # when the gold lines carry design and n

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``eval --json``)."""
        return {
            "n": self.n,
            "micro_f1": self.micro_f1,
            "macro_f1": self.macro_f1,
            "per_topic": {t: asdict(m) for t, m in self.per_topic.items()},
            "misses": self.misses,
            "false_alarms": self.false_alarms,
            **({"extraction": self.extraction.to_dict()} if self.extraction else {}),
        }


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1; an empty topic (no gold, no predictions) is perfect."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn)
    return precision, recall, f1


def _error(item: dict[str, Any], topic: str, result: Classification) -> dict[str, Any]:
    evidence = [asdict(e) for e in result.evidence[topic]]
    return {"pmid": item["pmid"], "topic": topic, "score": result.scores[topic],
            "evidence": evidence}


def metrics(gold: list[set[str]], predicted: list[set[str]]) -> dict[str, TopicMetrics]:
    """Per-topic counts and P/R/F1 from parallel lists of gold and predicted topic sets."""
    out: dict[str, TopicMetrics] = {}
    for topic in TOPICS:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if topic in g and topic in p)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if topic not in g and topic in p)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if topic in g and topic not in p)
        precision, recall, f1 = _prf(tp, fp, fn)
        out[topic] = TopicMetrics(topic, tp, fp, fn, round(precision, 4), round(recall, 4),
                                  round(f1, 4), tp + fn)
    return out


def evaluate(classifier: _Classifies, gold_items: list[dict[str, Any]]) -> EvalReport:
    """Compare the classifier with gold ``labels``; ValueError names an item without labels."""
    gold: list[set[str]] = []
    predicted: list[set[str]] = []
    misses: list[dict[str, Any]] = []
    false_alarms: list[dict[str, Any]] = []
    for item in gold_items:
        problem = _check_labels(item, require_labels=True)
        if problem:
            raise ValueError(f"pmid {item.get('pmid')!r}: {problem}")
        result = classify_item(classifier, item)
        g, p = set(item["labels"]), set(result.topics)
        gold.append(g)
        predicted.append(p)
        misses += [_error(item, t, result) for t in TOPICS if t in g - p]
        false_alarms += [_error(item, t, result) for t in TOPICS if t in p - g]
    per_topic = metrics(gold, predicted)
    tp = sum(m.tp for m in per_topic.values())
    fp = sum(m.fp for m in per_topic.values())
    fn = sum(m.fn for m in per_topic.values())
    micro = _prf(tp, fp, fn)[2]
    macro = sum(_prf(m.tp, m.fp, m.fn)[2] for m in per_topic.values()) / len(TOPICS)
    return EvalReport(per_topic, round(micro, 4), round(macro, 4), len(gold_items),
                      misses, false_alarms)


def cv_text(report: dict[str, Any]) -> str:
    """A cross-validation report (``train.CVReport.to_dict()``) as a plain-text table."""
    k, repeats, n = report["k"], report["repeats"], report["n"]
    lines = [f"{repeats} x stratified {k}-fold cross-validation on {n} abstracts "
             "(everything learned is refitted inside each training fold); mean ± sd over "
             "repeats", "",
             f"{'topic':<11} {'precision':>15} {'recall':>15} {'F1':>15} {'threshold':>15}"]
    for topic in TOPICS:
        m = report["per_topic"][topic]
        cells = [_pm(m[name]) for name in ("precision", "recall", "f1")]
        cells.append(_pm(report["thresholds"][topic]))
        lines.append(f"{topic:<11} " + " ".join(f"{c:>15}" for c in cells))
    lines += ["", f"macro-F1 {_pm(report['macro_f1'])}   micro-F1 {_pm(report['micro_f1'])}",
              "Brier score " + ", ".join(f"{t} {report['brier'][t]:.3f}" for t in TOPICS), "",
              "reliability (all topics, out-of-fold): bin, n, mean predicted, observed"]
    lines += [f"  {r['bin']}  {r['n']:>5}  {r['mean_predicted']:.3f}  {r['observed']:.3f}"
              for r in report["reliability"]]
    return "\n".join(lines) + "\n"


def _pm(pair: Any) -> str:
    mean, sd = pair
    return f"{mean:.3f} ± {sd:.3f}"
