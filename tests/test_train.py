"""Training and cross-validation (kratomlit.train): reproducible, leak-free, consistent with
the runtime classifier. Uses the shared dev set (skips without it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kratomlit.classify import TOPICS, Classifier, default_classifier, labelling_content
from kratomlit.errors import InputError
from kratomlit.evaluate import read_items
from kratomlit.train import (
    Settings,
    _Data,
    _fit_all,
    _predict,
    best_threshold,
    cross_validate,
    fit_model,
    load_gold,
    read_lexicon,
    reliability_table,
    write_model,
)

QUICK = Settings(c_grid=(1.0,), inner_folds=3)


@pytest.fixture(scope="module")
def dev(shared: Path) -> list[dict]:
    return read_items(shared / "data" / "kratom_dev.jsonl", require_labels=True)


@pytest.fixture(scope="module")
def shared(request: pytest.FixtureRequest) -> Path:  # module-scoped twin of conftest's
    path = Path(__file__).resolve().parents[1].parent / "shared"
    if not (path / "data" / "kratom_dev.jsonl").is_file():
        pytest.skip("../shared is not here")
    return path


def test_training_on_the_dev_set_reproduces_the_shipped_model(dev, tmp_path: Path) -> None:
    model = fit_model(dev)
    shipped = json.loads(default_classifier().path.read_text(encoding="utf-8"))
    assert labelling_content(model) == labelling_content(shipped)
    assert model["training"]["sha256"] == shipped["training"]["sha256"]
    path = tmp_path / "m.json"
    write_model(model, path)
    assert Classifier.load(path).version == default_classifier().version


def test_a_fold_fit_sees_nothing_of_the_held_out_rows(dev) -> None:
    """Fitting inside CV (columns of the full matrix) equals training from scratch on the
    training rows only: vocabulary, weights, calibration and thresholds all agree."""
    lexicon = read_lexicon()
    data = _Data(dev, lexicon, QUICK)
    rng = np.random.default_rng(0)
    train = np.sort(rng.choice(len(dev), size=180, replace=False))
    test = np.setdiff1d(np.arange(len(dev)), train)
    fitted = _fit_all(data, train, QUICK)
    in_fold = _predict(data, test, fitted)
    alone = Classifier(fit_model([dev[i] for i in train], QUICK, lexicon), Path("fold.json"))
    assert [alone.thresholds[t] for t in TOPICS] == fitted.thresholds.tolist()
    for row, i in enumerate(test):  # (rounding of 4-decimal weights may differ by a hair)
        scores = alone.classify(dev[i]["title"], dev[i]["abstract"]).scores
        assert [scores[t] for t in TOPICS] == pytest.approx(list(in_fold[row]), abs=0.002)


def test_vocabulary_comes_from_training_rows_only(dev) -> None:
    data = _Data(dev, read_lexicon(), QUICK)
    train = np.arange(0, 200)
    columns = set(data.columns(train, QUICK.min_df, QUICK.max_df).tolist())
    only_held_out = set().union(*(data.grams[i] for i in range(200, len(dev))))
    only_held_out -= set().union(*(data.grams[i] for i in train))
    index = {f.name: i for i, f in enumerate(data.features) if f.kind == "phrase"}
    leaked = [g for g in only_held_out if index[g] >= data.n_lexicon and index[g] in columns]
    assert only_held_out and not leaked


def test_cross_validation_reports_mean_and_sd_with_calibration(dev) -> None:
    report = cross_validate(dev[:150], k=3, repeats=2, settings=QUICK)
    assert report.k == 3 and report.repeats == 2 and report.n == 150
    for topic in TOPICS:
        mean, sd = report.per_topic[topic]["f1"]
        assert 0.0 <= mean <= 1.0 and sd >= 0.0
        assert 0.0 <= report.brier[topic] <= 0.25
    assert sum(row["n"] for row in report.reliability) == 2 * 150 * len(TOPICS)
    assert 0.5 < report.macro_f1[0] <= 1.0


def test_a_learning_curve_share_fits_each_fold_on_a_stratified_part_of_it(
        dev, monkeypatch: pytest.MonkeyPatch) -> None:
    """``train_share`` cuts each training fold, never the held-out rows: the fit sees that
    share of the fold's rows, each label in proportion, and a smaller share's rows are
    among a larger one's."""
    import kratomlit.train as train_module

    fitted_on: list[np.ndarray] = []
    predicted: list[np.ndarray] = []
    fit, predict = train_module._fit_all, train_module._predict
    monkeypatch.setattr(train_module, "_fit_all", lambda data, rows, settings:
                        fitted_on.append(rows) or fit(data, rows, settings))
    monkeypatch.setattr(train_module, "_predict", lambda data, rows, fitted:
                        predicted.append(rows) or predict(data, rows, fitted))
    items = dev[:150]
    runs = {}
    for share in (1.0, 0.5, 0.25):
        cross_validate(items, k=3, repeats=2, settings=QUICK, train_share=share)
        runs[share] = (list(fitted_on), list(predicted))
        fitted_on.clear()
        predicted.clear()
    y = np.array([[t in item["labels"] for t in TOPICS] for item in items], dtype=int)
    whole, held_out = runs[1.0]
    for share in (0.5, 0.25):
        assert [list(rows) for rows in runs[share][1]] == [list(rows) for rows in held_out]
    for repeat in (0, 1):  # each repeat predicts every row once
        rows = np.concatenate(held_out[3 * repeat: 3 * repeat + 3])
        assert sorted(rows.tolist()) == list(range(150))
    for fold, part, small in zip(whole, runs[0.5][0], runs[0.25][0], strict=True):
        assert len(part) == round(0.5 * len(fold)) and set(part) <= set(fold)
        assert set(small) <= set(part)
        share = y[part].sum(axis=0) / y[fold].sum(axis=0)
        assert np.all(np.abs(share - 0.5) < 0.1), share
    for bad in (0.0, 1.5, 0.02):
        with pytest.raises(ValueError, match="train_share"):
            cross_validate(items, k=3, repeats=1, settings=QUICK, train_share=bad)


def test_best_threshold_maximises_f1_and_prefers_the_middle() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert 0.3 < best_threshold(y, p) <= 0.7
    assert best_threshold(y, p) == pytest.approx(0.5, abs=0.2)
    assert best_threshold(np.array([0, 1]), np.array([0.6, 0.65])) == pytest.approx(0.61)


def test_reliability_table_bins_predictions() -> None:
    rows = reliability_table(np.array([0, 1, 1, 1]), np.array([0.05, 0.95, 0.91, 0.5]))
    assert rows[0] == {"bin": "0.0-0.1", "n": 1, "mean_predicted": 0.05, "observed": 0.0}
    assert rows[-1]["bin"] == "0.9-1.0" and rows[-1]["n"] == 2 and rows[-1]["observed"] == 1.0


def test_load_gold_refuses_too_little_to_learn_from(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"pmid": 1, "title": "Kratom", "labels": ["safety"]}) + "\n")
    with pytest.raises(InputError, match="at least 10"):
        load_gold([path])
    path.write_text("".join(json.dumps({"pmid": n, "title": "Kratom", "labels": ["safety"]})
                            + "\n" for n in range(12)))
    with pytest.raises(InputError, match="mechanism, withdrawal, safety, dosing"):
        load_gold([path])
