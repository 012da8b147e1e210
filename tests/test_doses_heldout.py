"""Dose extraction on hand-written passages the rules were not written from (issue 13 item 3).

``doses_heldout.jsonl`` was written from the issue's spec before reading ``kratomlit/doses.py``;
``doses_heldout2.jsonl`` after fixing the rules for it, ``doses_heldout3.jsonl`` and
``doses_heldout4.jsonl`` after fixing them for sets 2 and 3, each measured once before its own
fixes (docs/extract.md). The issue's bar is
0.80; since all three sets have now been read, they also hold a higher regression floor. The
scorer is checked on a hand-made case so that it can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kratomlit.doses import find_doses
from kratomlit.extract import extract
from kratomlit.extract_eval import dose_key, evaluate_doses, read_gold

FIXTURES = Path(__file__).parent / "fixtures"
# The issue's bar on unseen passages is 0.80; these sets' misses were read and fixed, so they
# hold a higher floor that catches regressions.
READ_FLOOR = 0.95
SETS = ["doses_heldout.jsonl", "doses_heldout2.jsonl", "doses_heldout3.jsonl",
        "doses_heldout4.jsonl"]


def test_dose_key_compares_only_numbers_unit_and_daily() -> None:
    a = {"low": 1, "high": 5.0, "unit": "g", "per": "day", "text": "1–5 g/day"}
    assert dose_key(a) == (1.0, 5.0, "g", True)
    assert dose_key({**a, "per": "week"}) == (1.0, 5.0, "g", False)
    assert dose_key({**a, "per": None}) == dose_key({**a, "per": "infusion"})


def test_scorer_counts_misses_and_spurious() -> None:
    items = [{"id": "x", "text": "He took 2 g of kratom.", "doses": [
        {"low": 3, "high": 3, "unit": "g", "per": None}]}]
    report = evaluate_doses(items)
    assert (report.gold, report.correct) == (1, 0)
    assert report.recall == 0.0
    assert report.errors and report.errors[0]["missed"] == [(3.0, 3.0, "g", False)]


@pytest.mark.parametrize("name", SETS)
def test_heldout_precision_and_recall(name: str) -> None:
    report = evaluate_doses(read_gold(FIXTURES / name))
    assert report.gold >= 20 and report.passages >= 20
    assert report.precision >= READ_FLOOR, report.errors
    assert report.recall >= READ_FLOOR, report.errors


@pytest.mark.parametrize("name", SETS)
def test_extractor_path_agrees_with_full_scan(name: str) -> None:
    # The scorer goes through Extractor.extract (automaton anchors); find_doses alone scans
    # the whole text: on these passages both must give the same doses.
    for item in read_gold(FIXTURES / name):
        full = [(d.low, d.high, d.unit, d.per, d.text) for d in find_doses(item["text"])]
        seen = [(d.low, d.high, d.unit, d.per, d.text)
                for d in extract(None, item["text"]).doses]
        assert seen == full, item["id"]


# Rules added while fixing the held-out misses and checking real dev abstracts, each with
# the phrasing it generalises to.
RULES: list[tuple[str, list[tuple[float, float, str, bool]]]] = [
    ("He took 2 g 3-4 times daily and 1 g three to four times a day.",
     [(2, 2, "g", False), (1, 1, "g", False)]),
    ("She used 3 g 3x/day, then 10 g every morning and 5 g once daily.",
     [(3, 3, "g", False), (10, 10, "g", True), (5, 5, "g", True)]),
    ("He drank about 1.5 L of kratom tea per day on 2 L/min oxygen.",
     [(1500, 1500, "mL", True)]),
    ("Volume of distribution was 38.0 L/kg; flow rate 0.8 mL/min.", []),
    ("Each glass contains 48-50 mg of mitragynine; phenolics were 6.1 mg GAE/g extract.", []),
    ("The LD50 of the extract (591 mg/kg) exceeded the ED50.", []),
    ("Mitragynine was absent from the two pill samples.", []),
    ("Leaves (500 g) were extracted; capsules (0.5 g each) were taken 2 g at a time.",
     [(2, 2, "g", False)]),
    ("He took kratom 5 g each morning and loperamide tablets (2 mg each).",
     [(5, 5, "g", True)]),
    ("Use was 7.3 (4.1) g/day; daily intake of kratom leaf powder ranged from 1 g to 25 g.",
     [(7.3, 7.3, "g", True), (1, 25, "g", True)]),
    ("He drank five 16-oz bottles a day; mitragynine (10 mg) was dissolved in 1 mL DMSO.",
     [(5, 5, "bottle", True)]),
    ("Rats (200-250 g) and mice weighing 25 g got 10 mg kg−1 day−1 dissolved in 1 mL saline.",
     [(10, 10, "mg/kg", True)]),
]


@pytest.mark.parametrize(("text", "gold"), RULES)
def test_rules_found_by_the_heldout_check(text: str, gold: list[tuple[float, float, str, bool]]
                                          ) -> None:
    assert sorted(dose_key(d.to_dict()) for d in find_doses(text)) == sorted(gold)
    assert [d.to_dict() for d in extract(None, text).doses] == \
        [d.to_dict() for d in find_doses(text)]
