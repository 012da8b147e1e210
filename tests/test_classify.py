"""Topic classifier: one clear case per topic, zones, negation, MeSH, evidence, versioning.

All abstracts here are synthetic, written for these tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kratomlit.classify import (
    TOPICS,
    Classification,
    Classifier,
    Evidence,
    LexiconError,
    default_classifier,
    default_lexicon_path,
)

MECHANISM = (
    "Binding affinity of synthetic mitragynine analogues at opioid receptors",
    "Kratom alkaloids are consumed by many people. We measured binding affinities (Ki) of five "
    "mitragynine analogues at human mu-, kappa- and delta-opioid receptors with radioligand "
    "binding assays, and G protein activation. Two analogues were partial agonists without "
    "beta-arrestin-2 recruitment. In mice both produced antinociception in the hot-plate test, "
    "which naltrexone blocked.",
)
WITHDRAWAL = (
    "Kratom to manage opioid withdrawal: an online survey of adults in recovery",
    "Kratom is sold online in many countries. We surveyed 500 adults about their kratom use. "
    "Most used kratom to relieve opioid withdrawal symptoms and craving, and to stop using "
    "heroin; 30% met criteria for kratom use disorder and 12% were receiving buprenorphine.",
)
SAFETY = (
    "Cholestatic liver injury after kratom use: a case report",
    "Herbal supplements are popular. We describe a 41-year-old man who presented to the "
    "emergency department with jaundice after six weeks of kratom use. Liver biopsy showed "
    "cholestatic hepatitis consistent with drug-induced liver injury, and he recovered after "
    "stopping the product.",
)
DOSING = (
    "Pharmacokinetics of oral mitragynine in healthy volunteers",
    "Little is known about the disposition of kratom alkaloids in humans. Twelve volunteers "
    "received single oral doses of 2 g dried leaf powder. Plasma concentrations were measured "
    "for 48 hours: Cmax was 30 ng/mL at a Tmax of 1 h, and the terminal half-life was 24 h.",
)
BOTANY = (
    "Leaf morphology and DNA barcoding of Mitragyna species in Borneo",
    "Mitragyna speciosa is a tree of the coffee family. We collected leaves from 40 trees in "
    "three provinces and compared leaf shape, stomata and ITS2 sequences. Two genetic groups "
    "were separated by altitude.",
)


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return default_classifier()


@pytest.mark.parametrize(
    ("record", "topic"),
    [(MECHANISM, "mechanism"), (WITHDRAWAL, "withdrawal"), (SAFETY, "safety"), (DOSING, "dosing")],
)
def test_each_topic_fires_on_its_clear_example(clf: Classifier, record, topic) -> None:
    assert topic in clf.classify(*record).topics


@pytest.mark.parametrize(
    ("record", "absent"),
    [(MECHANISM, "dosing"), (WITHDRAWAL, "mechanism"), (SAFETY, "dosing"),
     (DOSING, "withdrawal"), (SAFETY, "mechanism")],
)
def test_topics_do_not_fire_on_unrelated_examples(clf: Classifier, record, absent) -> None:
    assert absent not in clf.classify(*record).topics


def test_botany_abstract_gets_no_topic(clf: Classifier) -> None:
    assert clf.classify(*BOTANY).topics == []


def test_negated_withdrawal_is_still_about_withdrawal(clf: Classifier) -> None:
    result = clf.classify(
        "Reaction time after a kratom decoction in regular users",
        "Kratom decoctions are drunk daily in some villages. We tested reaction time in 20 "
        "regular users before and after a decoction. No withdrawal signs were observed during "
        "12 hours of abstinence.",
    )
    assert "withdrawal" in result.topics
    assert any(e.phrase.lower() == "withdrawal signs" for e in result.evidence["withdrawal"])


def test_background_pharmacology_alone_does_not_make_mechanism(clf: Classifier) -> None:
    result = clf.classify(
        "Validation of an HPLC-UV method for mitragynine in dried kratom leaves",
        "Mitragynine is a mu-opioid receptor agonist with G protein bias and affinity for "
        "adrenergic receptors. We validated an HPLC-UV method for mitragynine in leaf powder: "
        "linearity, limit of detection and recovery were acceptable in spiked samples.",
    )
    assert "mechanism" not in result.topics
    assert result.evidence["mechanism"] == []  # background is discounted and not shown


def test_the_same_pharmacology_as_a_finding_does_make_mechanism(clf: Classifier) -> None:
    result = clf.classify(
        "Mitragynine at adrenergic and opioid receptors",
        "We show that mitragynine is a mu-opioid receptor agonist with G protein bias and "
        "affinity for adrenergic receptors.",
    )
    assert "mechanism" in result.topics


def test_mesh_alone_can_decide(clf: Classifier) -> None:
    title, abstract = "Kratom users in two cities", "We interviewed kratom users in two cities."
    assert "withdrawal" not in clf.classify(title, abstract).topics
    result = clf.classify(title, abstract, mesh=["Substance Withdrawal Syndrome/etiology"])
    assert "withdrawal" in result.topics
    assert result.evidence["withdrawal"][0] == Evidence(
        "Substance Withdrawal Syndrome", "Substance Withdrawal Syndrome/etiology", "mesh")


def test_mesh_qualifier_and_keywords_add_evidence(clf: Classifier) -> None:
    result = clf.classify("Kratom", None, mesh=["Mitragyna/*poisoning"], keywords=["overdose"])
    sources = {e.source for e in result.evidence["safety"]}
    assert sources == {"mesh", "keywords"}
    assert "safety" in result.topics


def test_evidence_holds_phrase_and_its_sentence(clf: Classifier) -> None:
    result = clf.classify(*SAFETY)
    by_phrase = {e.phrase: e for e in result.evidence["safety"]}
    hit = by_phrase["drug-induced liver injury"]
    assert hit.source == "abstract"
    assert hit.sentence.startswith("Liver biopsy showed cholestatic hepatitis")
    assert hit.sentence.endswith("stopping the product.")
    assert by_phrase["liver injury"].source == "title"
    assert by_phrase["liver injury"].sentence == SAFETY[0]


def test_amounts_show_the_number(clf: Classifier) -> None:
    result = clf.classify(*DOSING)
    phrases = {e.phrase for e in result.evidence["dosing"]}
    assert {"2 g", "30 ng/mL", "Cmax", "half-life"} <= phrases


def test_hedged_mention_counts_less(clf: Classifier) -> None:
    plain = clf.classify("Kratom", "We report that kratom extract was hepatotoxic in rats.")
    hedged = clf.classify("Kratom", "We report that kratom extract may be hepatotoxic in rats.")
    assert hedged.scores["safety"] < plain.scores["safety"]


@pytest.mark.parametrize("record", [MECHANISM, WITHDRAWAL, SAFETY, DOSING, BOTANY])
def test_scores_are_rounded_probabilities_for_every_topic(clf: Classifier, record) -> None:
    result = clf.classify(*record)
    assert list(result.scores) == list(TOPICS) and list(result.evidence) == list(TOPICS)
    for score in result.scores.values():
        assert 0.0 <= score <= 1.0 and round(score, 3) == score
    assert result.topics == [t for t in TOPICS if result.scores[t] >= clf.thresholds[t]]


def test_title_alone_and_empty_input_work(clf: Classifier) -> None:
    assert "safety" in clf.classify("Fatal kratom overdose with seizures", None).topics
    empty = clf.classify(None, None)
    assert empty.topics == [] and set(empty.scores.values()) == {0.0}


def test_to_dict_is_plain_json(clf: Classifier) -> None:
    data = clf.classify(*SAFETY).to_dict()
    assert set(data) == {"topics", "scores", "evidence"}
    assert set(data["evidence"]["safety"][0]) == {"phrase", "sentence", "source"}
    assert isinstance(Classification([], {}, {}).to_dict()["evidence"], dict)


def test_version_embeds_a_hash_of_the_lexicon(tmp_path: Path) -> None:
    text = default_lexicon_path().read_text(encoding="utf-8")
    same, edited = tmp_path / "same.toml", tmp_path / "edited.toml"
    same.write_text(text, encoding="utf-8")
    edited.write_text(text.replace('"overdose" = 1.0', '"overdose" = 0.9'), encoding="utf-8")
    default = default_classifier().version
    assert re.fullmatch(r"\d+\.\d+\+[0-9a-f]{8}", default)
    assert Classifier.load(same).version == default
    assert Classifier.load(edited).version != default


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "\n[broken\n", "not valid TOML"),
        (lambda t: t.replace("[thresholds]", "[thresholdz]"), "[thresholds]"),
        (lambda t: t.replace('"overdose" = 1.0', '"overdose" = "high"'), "must be a number"),
        (lambda t: t.replace("safety = 0.60", "safety = 1.5"), "between 0 and 1"),
    ],
)
def test_malformed_lexicon_raises_lexicon_error(tmp_path: Path, edit, message) -> None:
    path = tmp_path / "topics.toml"
    path.write_text(edit(default_lexicon_path().read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(LexiconError) as info:
        Classifier.load(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_lexicon_raises_lexicon_error(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="cannot read lexicon"):
        Classifier.load(tmp_path / "nope.toml")
