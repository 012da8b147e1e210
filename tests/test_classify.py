"""Topic classifier (the shipped learned model): clear cases, the codebook's hard rules,
MeSH/keywords, evidence, calibrated scores, versioning and model-file errors.

All abstracts here are synthetic, written for these tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kratomlit import classify
from kratomlit.classify import (
    TOPICS,
    Classification,
    Classifier,
    Evidence,
    ModelError,
    default_classifier,
    default_model_path,
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


# -- the codebook's "Rules settled while adjudicating" ----------------------------------------
def test_rule_background_recital_does_not_make_mechanism(clf: Classifier) -> None:
    """Receptor pharmacology recited in a case report's introduction is background."""
    result = clf.classify(
        "Acute kidney injury in a kratom user: a case report",
        "Mitragynine, the main alkaloid of kratom, is a partial agonist at the mu-opioid "
        "receptor and binds adrenergic and serotonergic receptors. We describe a 34-year-old "
        "woman who presented with acute kidney injury and rhabdomyolysis after daily kratom "
        "use. She recovered with intravenous fluids.",
    )
    assert "mechanism" not in result.topics and "safety" in result.topics
    shown = [e.sentence for e in result.evidence["mechanism"]]
    assert not any("partial agonist" in s for s in shown)  # background is never evidence


def test_rule_the_same_pharmacology_as_a_finding_does_make_mechanism(clf: Classifier) -> None:
    result = clf.classify(
        "Mitragynine at adrenergic and opioid receptors",
        "We show that mitragynine is a partial agonist at the mu-opioid receptor with G "
        "protein bias and affinity for adrenergic and serotonergic receptors.",
    )
    assert "mechanism" in result.topics


def test_rule_a_speculative_clause_does_not_make_safety(clf: Classifier) -> None:
    hedged = clf.classify(
        "Isolation of a new minor alkaloid from Mitragyna speciosa leaves",
        "We isolated a new indole alkaloid from the leaves by column chromatography and "
        "determined its structure by NMR spectroscopy. The compound may be a potentially "
        "toxic metabolite. Its absolute configuration was assigned by X-ray crystallography.",
    )
    stated = clf.classify(
        "Isolation of a new minor alkaloid from Mitragyna speciosa leaves",
        "We isolated a new indole alkaloid from the leaves by column chromatography and "
        "determined its structure by NMR spectroscopy. The compound was toxic to human "
        "hepatocytes and caused liver injury in mice. Its absolute configuration was "
        "assigned by X-ray crystallography.",
    )
    assert "safety" not in hedged.topics
    assert "safety" in stated.topics  # an explicit finding about harm does count
    assert hedged.scores["safety"] < stated.scores["safety"]


def test_rule_choosing_test_doses_in_an_animal_study_is_not_dosing(clf: Classifier) -> None:
    result = clf.classify(
        "Mitragynine reduces anxiety-like behaviour in rats",
        "Anxiety is common. We tested mitragynine at 5, 10 and 20 mg/kg given "
        "intraperitoneally to male rats in the elevated plus maze and the open field test. "
        "Mitragynine at 10 mg/kg increased time spent in the open arms, an effect blocked by "
        "naloxone.",
    )
    assert "dosing" not in result.topics
    assert "mechanism" in result.topics


def test_rule_epidemiology_gets_no_topic_from_misuse_framing(clf: Classifier) -> None:
    result = clf.classify(
        "Prevalence and demographics of kratom use in the United States",
        "Kratom misuse and abuse have raised public health concerns. We analysed a nationally "
        "representative survey of 30,000 adults. Past-year kratom use was reported by 0.7% "
        "of adults and was more common among men, younger adults and people who used "
        "cannabis or tobacco.",
    )
    assert result.topics == []


def test_rule_epidemiology_gets_topics_through_findings(clf: Classifier) -> None:
    result = clf.classify(
        "Kratom use among adults with opioid use disorder: a national survey",
        "We analysed a national survey of 2,000 adults who used kratom. Most used kratom to "
        "self-treat opioid withdrawal symptoms and to reduce opioid use; 20% reported "
        "symptoms of kratom dependence, and 8% had been treated in an emergency department "
        "for adverse effects such as seizures.",
    )
    assert {"withdrawal", "safety"} <= set(result.topics)


# -- MeSH, keywords, publication types --------------------------------------------------------
def test_mesh_headings_are_read_like_text(clf: Classifier) -> None:
    title, abstract = "Kratom users in two cities", "We interviewed kratom users in two cities."
    assert "withdrawal" not in clf.classify(title, abstract).topics
    result = clf.classify(title, abstract, mesh=["Substance Withdrawal Syndrome/etiology"])
    assert "withdrawal" in result.topics
    first = result.evidence["withdrawal"][0]
    assert first.source == "mesh" and first.sentence == "Substance Withdrawal Syndrome/etiology"
    assert first.phrase.lower() in "substance withdrawal syndrome"


def test_mesh_qualifier_and_keywords_add_evidence(clf: Classifier) -> None:
    result = clf.classify("Kratom", None, mesh=["Mitragyna/*poisoning"], keywords=["overdose"])
    assert "safety" in result.topics
    assert {e.source for e in result.evidence["safety"]} == {"mesh", "keywords"}
    assert Evidence("poisoning", "Mitragyna/*poisoning", "mesh") in result.evidence["safety"]


def test_an_item_seen_before_is_shown_under_its_own_heading(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Item hits are kept between records: a qualifier met again under another heading is
    shown with that heading, results equal a fresh classifier's, and the store is bounded."""
    warm = Classifier.load()
    warm.classify("Kratom", None, mesh=["Mitragyna/*poisoning"], keywords=["overdose"])
    again = warm.classify("Kratom", None, mesh=["Opioids/*poisoning"], keywords=["overdose"])
    fresh = Classifier.load().classify("Kratom", None, mesh=["Opioids/*poisoning"],
                                       keywords=["overdose"])
    assert again.to_dict() == fresh.to_dict()
    assert Evidence("poisoning", "Opioids/*poisoning", "mesh") in again.evidence["safety"]
    monkeypatch.setattr(classify, "ITEM_CACHE", 3)
    warm.classify("Kratom", None, mesh=["A", "B", "C", "D/E"], keywords=["F"])
    assert len(warm.extractor._item_hits) <= 3


# -- evidence and scores ----------------------------------------------------------------------
def test_evidence_holds_phrase_and_its_sentence(clf: Classifier) -> None:
    result = clf.classify(*SAFETY)
    assert result.evidence["safety"], result.evidence
    by_phrase = {e.phrase.lower(): e for e in result.evidence["safety"]}
    for phrase, evidence in by_phrase.items():
        assert phrase in evidence.sentence.lower()
        whole = SAFETY[0] if evidence.source == "title" else SAFETY[1]
        assert evidence.sentence in whole
    sentences = {e.sentence for e in result.evidence["safety"] if e.source == "abstract"}
    assert all(s.endswith(".") and s[0].isupper() for s in sentences)


def test_evidence_is_the_largest_positive_contributions(clf: Classifier) -> None:
    result = clf.classify(*DOSING)
    full = clf.contributions(*DOSING)["dosing"]
    top = [label for label, value in full if value >= classify.MIN_EVIDENCE]
    shown = [e.phrase.lower() for e in result.evidence["dosing"]]
    assert 0 < len(shown) <= classify.EVIDENCE_PER_TOPIC
    assert len(shown) == min(len(top), classify.EVIDENCE_PER_TOPIC)
    assert full[0][1] >= full[-1][1]


def test_amounts_show_their_number(clf: Classifier) -> None:
    acc = clf.extractor.hits(*DOSING)
    phrases = {classify._phrase(item) for item in acc.values()}
    assert {"2 g", "30 ng/mL"} <= phrases


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
    assert empty.topics == [] and all(v == [] for v in empty.evidence.values())
    # with no features a score is the topic's base rate: the intercept's probability
    assert all(0.0 < s < 0.5 for s in empty.scores.values())


def test_to_dict_is_plain_json(clf: Classifier) -> None:
    data = clf.classify(*SAFETY).to_dict()
    assert set(data) == {"topics", "scores", "evidence"}
    assert set(data["evidence"]["safety"][0]) == {"phrase", "sentence", "source"}
    assert json.loads(json.dumps(data)) == data
    assert isinstance(Classification([], {}, {}).to_dict()["evidence"], dict)


# -- the model file ---------------------------------------------------------------------------
def _model_text() -> str:
    return default_model_path().read_text(encoding="utf-8")


def test_model_file_is_readable_data() -> None:
    model = json.loads(_model_text())
    assert model["format"] == classify.MODEL_FORMAT
    assert set(model["thresholds"]) == set(TOPICS) == set(model["intercepts"])
    row = model["features"][0]
    assert set(row) == {"kind", "feature", "weights"} and set(row["weights"]) <= set(TOPICS)
    training = model["training"]
    assert training["n"] > 0 and len(training["sha256"]) == 64 and training["date"]
    assert model["cv"]["macro_f1"][0] > 0 and model["version"] == default_classifier().version


def test_version_embeds_a_hash_of_what_decides_labels(tmp_path: Path) -> None:
    model = json.loads(_model_text())
    same, retrained, edited = (tmp_path / n for n in ("same.json", "dated.json", "edit.json"))
    same.write_text(_model_text(), encoding="utf-8")
    model["training"]["date"] = "1999-01-01"  # a retrain on another day: same labels
    retrained.write_text(json.dumps(model), encoding="utf-8")
    model["features"][0]["weights"] = {t: 0.5 for t in model["features"][0]["weights"]}
    edited.write_text(json.dumps(model), encoding="utf-8")
    default = default_classifier().version
    assert re.fullmatch(r"\d+\.\d+\+[0-9a-f]{8}", default)
    assert Classifier.load(same).version == default
    assert Classifier.load(retrained).version == default
    assert Classifier.load(edited).version != default


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "\n}", "not valid JSON"),
        (lambda t: t.replace('"thresholds"', '"thresholdz"'), "'thresholds'"),
        (lambda t: t.replace('"format": "kratomlit-topic-model"', '"format": "x"'),
         "not a kratomlit-topic-model"),
        (lambda t: re.sub(r'"safety": 0\.\d+', '"safety": 1.5', t, count=1), "between 0 and 1"),
        (lambda t: re.sub(r'"weights": \{"(\w+)": [-\d.]+', r'"weights": {"\1": "high"', t,
                          count=1), "must be a number"),
    ],
)
def test_malformed_model_raises_model_error(tmp_path: Path, edit, message) -> None:
    path = tmp_path / "model.json"
    path.write_text(edit(_model_text()), encoding="utf-8")
    with pytest.raises(ModelError) as info:
        Classifier.load(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_model_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model"):
        Classifier.load(tmp_path / "nope.json")


def test_classifying_imports_no_scientific_stack() -> None:
    code = ("import sys; from kratomlit.classify import default_classifier; "
            "default_classifier().classify('Kratom overdose', 'Fatal overdose.'); "
            "bad = {'sklearn', 'numpy', 'scipy'} & set(sys.modules); print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_evidence_built_on_first_read_is_the_same_and_pickles_without_the_classifier(clf):
    """``classify`` defers cutting evidence out until it is read; read or pickled, it is
    the evidence an eager build gives, and a pickled result carries no classifier."""
    import copy
    import pickle

    title = "Kratom withdrawal treated with buprenorphine"
    abstract = ("A 34-year-old man took 15 g of kratom powder daily. On stopping he had "
                "opioid withdrawal symptoms (COWS 14) and was inducted on buprenorphine.")
    read, pickled, copied = (clf.classify(title, abstract) for _ in range(3))
    assert read.evidence and "withdrawal" in read.topics
    restored = pickle.loads(pickle.dumps(pickled))
    assert "_build" not in restored.__dict__ and "_build" not in pickled.__dict__
    assert restored.evidence == read.evidence == copy.deepcopy(copied).evidence
    assert restored == read and restored.to_dict() == read.to_dict()
