"""JSONL reading/writing for classify/eval, the metrics and the cross-validation table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kratomlit.classify import TOPICS, Classification, default_classifier
from kratomlit.evaluate import (
    InputLineError,
    classify_file,
    cv_text,
    evaluate,
    read_items,
)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _line(**fields: object) -> str:
    return json.dumps({"pmid": "1", "title": "Kratom", "abstract": "Text.", **fields})


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"pmid": "2", "title": "x",', "line 3: not valid JSON"),
        ('["not", "an", "object"]', "line 3: not a JSON object"),
        ('{"title": "no id", "abstract": "x"}', "line 3: missing field 'pmid'"),
        ('{"pmid": "2"}', "line 3: missing field 'title' or 'abstract'"),
        (_line(mesh="Mitragyna"), "line 3: field 'mesh' must be a list of strings"),
        (_line(labels=["safety", "harms"]), "line 3: unknown topic 'harms'"),
    ],
)
def test_read_items_names_the_bad_line(tmp_path: Path, bad: str, message: str) -> None:
    path = _write(tmp_path / "in.jsonl", [_line(), "", bad, _line()])
    with pytest.raises(InputLineError) as info:
        read_items(path)
    assert str(info.value).startswith(message)
    assert info.value.line == 3


def test_read_items_skips_blank_lines_and_allows_null_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", ["", _line(abstract=None), "  ", _line(pmid=7)])
    items = read_items(path)
    assert [i["pmid"] for i in items] == ["1", 7]


def test_classify_file_keeps_order_and_shape(tmp_path: Path) -> None:
    lines = [
        _line(pmid="b", title="Fatal kratom overdose", abstract="Post-mortem blood was tested."),
        _line(pmid="a", title="Kratom tea", abstract=None, mesh=["Mitragyna/pharmacokinetics"]),
        _line(pmid="c", title="Leaf shape of Mitragyna trees", abstract=""),
    ]
    out = tmp_path / "out.jsonl"
    assert classify_file(default_classifier(), _write(tmp_path / "in.jsonl", lines), out) == 3
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["pmid"] for r in rows] == ["b", "a", "c"]
    assert set(rows[0]) == {"pmid", "topics", "scores", "evidence"}
    assert "safety" in rows[0]["topics"] and rows[2]["topics"] == []
    assert {"phrase", "sentence"} <= set(rows[0]["evidence"]["safety"][0])


def test_classify_file_leaves_nothing_behind_on_a_bad_line(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.jsonl", [_line(), "{oops"])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputLineError, match="line 2"):
        classify_file(default_classifier(), source, out_dir / "out.jsonl")
    assert list(out_dir.iterdir()) == []


class _Fixed:
    """A stand-in classifier that returns the topics written in the title."""

    def classify(self, title, abstract, mesh=(), keywords=(), publication_types=()):
        topics = [t for t in TOPICS if t in (title or "").split()]
        scores = {t: 1.0 if t in topics else 0.0 for t in TOPICS}
        return Classification(topics, scores, {t: [] for t in TOPICS})


def test_evaluate_counts_precision_recall_f1_exactly() -> None:
    gold = [  # title = prediction, labels = gold
        {"pmid": "1", "title": "safety dosing", "abstract": "", "labels": ["safety"]},
        {"pmid": "2", "title": "safety", "abstract": "", "labels": ["safety", "withdrawal"]},
        {"pmid": "3", "title": "", "abstract": "", "labels": ["safety"]},
        {"pmid": "4", "title": "withdrawal", "abstract": "", "labels": ["withdrawal"]},
    ]
    report = evaluate(_Fixed(), gold)
    safety, withdrawal = report.per_topic["safety"], report.per_topic["withdrawal"]
    dosing, mechanism = report.per_topic["dosing"], report.per_topic["mechanism"]
    assert (safety.tp, safety.fp, safety.fn, safety.support) == (2, 0, 1, 3)
    assert (safety.precision, safety.recall, safety.f1) == (1.0, 0.6667, 0.8)
    assert (withdrawal.precision, withdrawal.recall, withdrawal.f1) == (1.0, 0.5, 0.6667)
    assert (dosing.tp, dosing.fp, dosing.precision, dosing.recall, dosing.f1) == (0, 1, 0, 0, 0)
    assert (mechanism.precision, mechanism.recall, mechanism.f1) == (1.0, 1.0, 1.0)  # empty
    assert report.micro_f1 == 0.6667  # tp 3, fp 1, fn 2: 2*3 / (2*3 + 1 + 2)
    assert report.macro_f1 == 0.6167  # (1 + 0.6667 + 0.8 + 0) / 4
    assert report.n == 4
    assert sorted((m["pmid"], m["topic"]) for m in report.misses) == [
        ("2", "withdrawal"), ("3", "safety")]
    assert [(f["pmid"], f["topic"]) for f in report.false_alarms] == [("1", "dosing")]
    json.dumps(report.to_dict())


def test_evaluate_needs_labels() -> None:
    with pytest.raises(ValueError, match="pmid '9'"):
        evaluate(_Fixed(), [{"pmid": "9", "title": "x", "abstract": "y"}])


def test_cv_text_shows_mean_and_sd_per_topic_and_the_reliability_table() -> None:
    pair = (0.8, 0.02)
    report = {"k": 5, "repeats": 3, "n": 40,
              "per_topic": {t: {"precision": pair, "recall": pair, "f1": pair} for t in TOPICS},
              "thresholds": {t: (0.4, 0.1) for t in TOPICS}, "macro_f1": (0.79, 0.004),
              "micro_f1": (0.81, 0.004), "brier": {t: 0.07 for t in TOPICS},
              "reliability": [{"bin": "0.9-1.0", "n": 12, "mean_predicted": 0.95,
                               "observed": 0.9}]}
    text = cv_text(report)
    assert "3 x stratified 5-fold" in text and "macro-F1 0.790 ± 0.004" in text
    assert re.search(r"\ndosing +0\.800 ± 0\.020 +0\.800 ± 0\.020", text)
    assert "0.9-1.0     12  0.950  0.900" in text
