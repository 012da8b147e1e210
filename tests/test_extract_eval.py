"""The extractor against the adjudicated dev set (skips without ../shared), and the report."""

from __future__ import annotations

from pathlib import Path

from kratomlit.extract_eval import evaluate, format_report, read_gold, split_of


def _dev(shared: Path) -> list[dict[str, object]]:
    return read_gold(shared / "data" / "kratom_dev.jsonl")


def test_dev_set_floors(shared: Path) -> None:
    # Floors sit a little below what was measured (docs/extract.md) so a regression fails.
    report = evaluate(_dev(shared))
    assert report.records == 262
    assert report.design_accuracy >= 0.90
    assert report.macro_f1 >= 0.85
    assert report.n_exact >= 0.82
    assert report.n_spurious <= 0.05


def test_holdout_split_floors(shared: Path) -> None:
    # The third of the dev set whose errors were never read while writing the lexicon.
    items = [i for i in _dev(shared) if split_of(str(i["id"])) == "holdout"]
    report = evaluate(items)
    assert report.records == 88
    assert report.design_accuracy >= 0.86
    assert report.n_exact >= 0.72  # measured 0.75


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
