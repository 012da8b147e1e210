"""Design and n extraction on abstracts written for these tests (one per design, plus traps).

Every abstract here is invented; none is copied from a real paper.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kratomlit.extract import DESIGNS, DesignLexiconError, Extractor, extract, extractor_version
from kratomlit.models import Extraction

ABSTRACTS: dict[str, tuple[str, str, int | None]] = {
    "rct": (
        "Kratom leaf powder versus placebo for chronic pain: a randomized controlled trial",
        "We randomly assigned 120 adults with chronic low back pain to dried kratom leaf "
        "powder or a matching placebo in a double-blind design. Participants took 2 g three "
        "times a day for four weeks. Pain scores fell more with kratom (p = 0.03).",
        120,
    ),
    "clinical": (
        "Single-dose pharmacokinetics of mitragynine in healthy volunteers",
        "In this open-label study, twelve healthy volunteers received a single oral dose of "
        "kratom tea containing 20 mg mitragynine. Plasma concentrations peaked at 1 h "
        "(Cmax 18.5 ng/mL). The dose was well tolerated.",
        12,
    ),
    "observational": (
        "Patterns of kratom use among adults in the United States: a cross-sectional survey",
        "Kratom use is rising. We conducted an online cross-sectional survey of adults who use "
        "kratom. A total of 2,798 respondents completed the questionnaire; mean age was 39.8 "
        "years and 61% were women. Most used 3 g per day. Daily use was associated with "
        "dependence (odds ratio 2.1, p < 0.001).",
        2798,
    ),
    "case": (
        "Kratom-associated cholestatic liver injury: a case report",
        "We report a 34-year-old man who presented with jaundice after drinking 3 bottles "
        "of kratom tea daily for six weeks. Liver enzymes were elevated and he recovered after "
        "stopping kratom.",
        1,
    ),
    "qualitative": (
        "Why people use kratom: a thematic analysis of Reddit posts",
        "We collected 1,204 posts from two online forums and coded them using thematic "
        "analysis. Three themes emerged: self-treatment of pain, opioid withdrawal, and "
        "concerns about regulation.",
        None,
    ),
    "systematic_review": (
        "Kratom and liver injury: a systematic review and meta-analysis",
        "We searched PubMed, Embase and Scopus following PRISMA. Of 412 records, 23 studies "
        "met the inclusion criteria. Pooled estimates suggested a low incidence of liver "
        "injury.",
        None,
    ),
    "review": (
        "Kratom: pharmacology, risks and regulation. A narrative review",
        "This review summarizes current knowledge of kratom pharmacology, its adverse effects "
        "and its legal status across jurisdictions, and discusses what clinicians should "
        "know.",
        None,
    ),
    "animal": (
        "Mitragynine reduces morphine withdrawal in mice",
        "Male C57BL/6 mice received mitragynine (5, 10 and 30 mg/kg, i.p.) before "
        "naloxone-precipitated withdrawal. Mitragynine at 30 mg/kg reduced jumping and "
        "weight loss. Conditioned place preference was not produced.",
        None,
    ),
    "in_vitro": (
        "Mitragynine inhibits CYP2D6 and CYP3A4 in human liver microsomes",
        "Inhibition of cytochrome P450 enzymes was measured in human liver microsomes and "
        "recombinant enzymes. Mitragynine inhibited CYP2D6 with an IC50 of 0.45 µM and Ki of "
        "1.2 µM, and CYP3A4 with an IC50 of 41 µM.",
        None,
    ),
    "chemistry": (
        "A validated UPLC-MS/MS method for mitragynine in commercial kratom products",
        "A method for the quantification of mitragynine and 7-hydroxymitragynine was "
        "developed and validated. Linearity was 1-500 ng/mL with a limit of detection of "
        "0.5 ng/mL. In 16 commercial products, mitragynine content ranged from 0.8% to 1.9% "
        "w/w.",
        None,
    ),
    "other": (
        "Effects of nitrogen fertilizer and light intensity on growth of kratom seedlings",
        "Kratom seedlings were grown in a greenhouse under three light intensities and four "
        "fertilizer rates. Plant growth and leaf number increased with nitrogen supply in the "
        "soil.",
        None,
    ),
}


@pytest.mark.parametrize("design", sorted(ABSTRACTS))
def test_each_design_from_title_and_abstract(design: str) -> None:
    title, abstract, n = ABSTRACTS[design]
    result = extract(title, abstract)
    assert result.design == design
    assert result.n == n
    assert 0.0 < result.design_confidence <= 1.0
    assert result.design_evidence, "a decision comes with its evidence"
    for ev in result.design_evidence:
        assert ev.source in ("title", "abstract")
        assert ev.phrase.lower() in ev.sentence.lower()


def test_every_design_value_is_covered() -> None:
    assert set(ABSTRACTS) == set(DESIGNS)


def test_publication_type_decides_when_text_is_silent() -> None:
    title = "Kratom and the clinician"
    abstract = "Kratom is widely sold. Its effects are discussed."
    assert extract(title, abstract).design == "review"
    result = extract(title, abstract, publication_types=["Case Reports"])
    assert result.design == "case"
    assert ("Case Reports", "publication_types") in {(e.phrase, e.source)
                                                     for e in result.design_evidence}


@pytest.mark.parametrize(("headings", "kind", "design"), [
    (["Randomized Controlled Trial"], "publication_types", "rct"),
    (["Systematic Review"], "publication_types", "systematic_review"),
    (["Meta-Analysis"], "publication_types", "systematic_review"),
    (["Review"], "publication_types", "review"),
    (["Animals", "Rats"], "mesh", "animal"),
    (["In Vitro Techniques", "Microsomes, Liver/metabolism"], "mesh", "in_vitro"),
    (["Journal Article", "Randomized Controlled Trial, Veterinary"], "publication_types",
     "animal"),
])
def test_pubmed_headings_steer_the_design(headings: list[str], kind: str, design: str) -> None:
    title, abstract = "Mitragynine", "Mitragynine was studied and effects were observed."
    result = extract(title, abstract, **{kind: headings})  # type: ignore[arg-type]
    assert result.design == design


def test_human_part_and_animal_part_take_chemistry_away() -> None:
    # DESIGN.md: a paper with in vitro and in vivo experiments is animal; chemistry only when
    # nothing is tested in cells, animals or people.
    title = "Isolation of a minor alkaloid and its antinociceptive effect"
    abstract = ("The alkaloid was isolated by HPLC and its structure elucidated by NMR. In "
                "rats, the compound (10 mg/kg, i.p.) increased tail-flick latency; in mice it "
                "was active on the hot plate.")
    assert extract(title, abstract).design == "animal"


def test_human_dosing_beats_its_analytical_methods() -> None:
    # a pharmacokinetic study in people that describes its LC-MS/MS method at length
    title = "Pharmacokinetics of mitragynine in healthy volunteers"
    abstract = ("Ten healthy volunteers received a single oral dose of kratom. Plasma "
                "mitragynine was determined by a validated LC-MS/MS method (linearity "
                "1-500 ng/mL, limit of detection 0.5 ng/mL, recovery 95%, precision < 8%). "
                "Chromatography used a C18 column and mass spectrometry in MRM mode.")
    result = extract(title, abstract)
    assert result.design == "clinical" and result.n == 10


# -- n traps ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("abstract", "n"), [
    # ages, years, percentages and p-values are not people
    ("We surveyed users in 2019. A total of 157 participants completed the survey; mean age "
     "was 34 years, 45% were men (p = 0.02).", 157),
    ("Regular kratom users (N = 1,024) aged 18-65 were recruited in 2020.", 1024),
    # the whole sample beats a subgroup with a percentage
    ("Of 3,200 respondents, 544 (17%) reported daily use.", 3200),
    # number words
    ("One hundred and six patients were enrolled in this cross-sectional survey.", 106),
    # doses and concentrations are not people
    ("In this survey, users took 4 g per day and blood levels were 20 ng/mL.", None),
    # two groups named together are one sample
    ("The samples comprised 196 and 330 kratom users from two provinces.", 526),
    # "five of the 40 participants" is a part; the 40 is the sample
    ("Five of the 40 participants reported withdrawal in this survey.", 40),
])
def test_n_traps(abstract: str, n: int | None) -> None:
    result = extract("Kratom use: a cross-sectional survey", abstract)
    assert result.design == "observational"
    assert result.n == n


def test_no_n_for_designs_without_people() -> None:
    # 40 rats are animals, not people: DESIGN.md gives n only for human designs
    result = extract("Mitragynine in rats", "A total of 40 rats received mitragynine 10 mg/kg.")
    assert result.design == "animal" and result.n is None


def test_case_report_counts_patients_not_relatives() -> None:
    result = extract("Kratom-induced liver failure: a case report",
                     "We report a 38-year-old mother of two children who presented with "
                     "jaundice after daily kratom use.")
    assert result.design == "case" and result.n == 1


def test_case_series_counts_its_cases() -> None:
    result = extract("Kratom poisoning: findings from three cases",
                     "We describe three patients admitted after kratom ingestion.")
    assert result.design == "case" and result.n == 3


# -- output form --------------------------------------------------------------------------------
def test_to_dict_is_json_and_round_trips() -> None:
    result = extract(*ABSTRACTS["case"][:2])
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {"design", "design_confidence", "design_evidence", "n", "doses",
                         "kratom_g_per_day"}
    assert data["kratom_g_per_day"] is None
    assert data["doses"][0]["unit"] == "bottle" and data["doses"][0]["per"] == "day"
    assert Extraction.from_dict(data) == result


def test_doses_text_for_flat_tables() -> None:
    result = extract("Mitragynine in rats", "Rats received 5, 10 and 20 mg/kg, then 3 g/day.")
    # one list written once, even though it gives three doses
    assert result.doses_text == "5, 10 and 20 mg/kg; 3 g/day"
    assert extract("x", "no amounts here").doses_text == ""


def test_keywords_are_accepted_and_do_not_change_the_design() -> None:
    # keywords are part of the call for symmetry with classify(); they are not scored
    title, abstract = ABSTRACTS["animal"][:2]
    assert extract(title, abstract, keywords=["systematic review"]).design == "animal"


def test_empty_record() -> None:
    result = extract(None, None)
    assert result.design in DESIGNS and result.n is None and result.doses == []


def test_version_embeds_lexicon_hash(tmp_path: Path) -> None:
    import kratomlit.extract as ex
    source = ex.default_lexicon_path().read_text(encoding="utf-8")
    copy = tmp_path / "design.toml"
    copy.write_text(source + "\n# edited\n", encoding="utf-8")
    assert Extractor.load(copy).version != extractor_version()
    assert extractor_version().startswith(ex.CODE_VERSION + "+")


def test_malformed_lexicon_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "design.toml"
    bad.write_text("[scoring]\ntitle = 'x'\n", encoding="utf-8")
    with pytest.raises(DesignLexiconError, match="design.toml"):
        Extractor.load(bad)
    with pytest.raises(DesignLexiconError, match="cannot read"):
        Extractor.load(tmp_path / "missing.toml")
