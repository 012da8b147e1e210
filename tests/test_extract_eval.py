"""The extractor against the adjudicated dev set (skips without ../shared), and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from kratomlit.extract_eval import (
    evaluate,
    format_report,
    holdout_part,
    in_split,
    main,
    read_gold,
    split_of,
)


def _dev(shared: Path) -> list[dict[str, object]]:
    return read_gold(shared / "data" / "kratom_dev.jsonl")


def test_dev_set_floors(shared: Path) -> None:
    # Floors sit a little below what was measured (docs/extract.md) so a regression fails.
    report = evaluate(_dev(shared))
    assert report.records == 262
    assert report.design_accuracy >= 0.94  # measured 0.958 (1.1)
    assert report.macro_f1 >= 0.91  # 0.930
    assert report.n_exact >= 0.90  # 0.925
    assert report.n_spurious <= 0.02  # 0.006


@pytest.mark.parametrize(("split", "records", "accuracy", "macro_f1", "n_exact", "spurious"), [
    # read while writing rules: tune (1.0 and 1.1), holdout-a (1.1)
    ("tune", 174, 0.94, 0.91, 0.92, 0.02),  # measured 0.960, 0.936, 0.943, 0.000
    ("holdout-a", 37, 0.97, 0.97, 0.97, 0.02),  # 1.000, 1.000, 1.000, 0.000
    # never read: only its aggregate score was measured (docs/extract.md)
    ("holdout-b", 51, 0.90, 0.88, 0.80, 0.05),  # 0.922, 0.899, 0.818, 0.034
    ("holdout", 88, 0.93, 0.92, 0.86, 0.03),  # 0.955, 0.942, 0.889, 0.019
])
def test_split_floors(shared: Path, split: str, records: int, accuracy: float,
                      macro_f1: float, n_exact: float, spurious: float) -> None:
    report = evaluate([i for i in _dev(shared) if in_split(str(i["id"]), split)])
    assert report.records == records
    assert report.design_accuracy >= accuracy
    assert report.macro_f1 >= macro_f1
    assert report.n_exact >= n_exact
    assert report.n_spurious <= spurious


def test_cli_prints_the_split(shared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--gold", str(shared / "data" / "kratom_dev.jsonl"),
                 "--split", "holdout-a"]) == 0
    assert capsys.readouterr().out.startswith("records 37:")


def test_report_on_hand_made_gold() -> None:
    gold = [
        {"id": "a", "title": "Kratom hepatotoxicity: a case report",
         "abstract": "We report a 40-year-old man with jaundice.", "design": "case", "n": 1},
        {"id": "b", "title": "Mitragynine in rats",
         "abstract": "Rats received mitragynine 10 mg/kg.", "design": "animal", "n": None},
        {"id": "c", "title": "Kratom: a narrative review",
         "abstract": "This review summarizes kratom pharmacology.", "design": "rct", "n": 5},
    ]
    report = evaluate(gold)
    assert report.records == 3
    assert report.design_accuracy == round(2 / 3, 3)
    assert report.n_stated == 2 and report.n_exact == 0.5
    assert report.n_absent == 1 and report.n_spurious == 0.0
    by = {s.design: s for s in report.per_design}
    assert by["case"].f1 == 1.0 and by["rct"].recall == 0.0 and by["review"].precision == 0.0
    assert [e["id"] for e in report.errors] == ["c"]
    assert "design accuracy 0.667" in format_report(report)


def test_split_is_stable() -> None:
    assert [split_of(x) for x in ("kaba55817", "19902190", "1")] == ["holdout", "tune",
                                                                      "holdout"]
    assert {split_of(str(i)) for i in range(30)} == {"tune", "holdout"}
    holdout = [str(i) for i in range(300) if split_of(str(i)) == "holdout"]
    parts = [holdout_part(i) for i in holdout]
    assert set(parts) == {"holdout-a", "holdout-b"}
    assert [holdout_part(i) for i in holdout] == parts  # deterministic
    for i in holdout:  # the two parts make up the holdout, and nothing else is in them
        assert in_split(i, "holdout") and in_split(i, holdout_part(i))
        assert not in_split(i, "tune")
    assert not in_split("19902190", "holdout-a") and not in_split("19902190", "holdout-b")
    assert in_split("19902190", "all") and in_split("19902190", "tune")
