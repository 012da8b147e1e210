"""Extractor 1.1: the n traps and design phrases added after reading errors (issue 13).

Every abstract here is invented for the test; none is copied from a real paper. Each one
states a trap that version 1.0 got wrong, so the test fails if the rule is removed.
"""

from __future__ import annotations

import pytest

from kratomlit.extract import CODE_VERSION, default_extractor, extract, extractor_version
from kratomlit.sample_size import sample_size

SURVEY_TITLE = "Kratom use: a cross-sectional survey"


@pytest.mark.parametrize(("abstract", "n"), [
    # a percentage after "a total of N cases" marks a share of the sample found before it
    ("We identified 48 cases during the study period. A total of 30 cases (62%) involved "
     "ingestion at home, and 12 (25%) were managed in hospital.", 48),
    # "N were excluded" right after the count: the rest were analysed
    ("A total of twenty cases were identified in this retrospective survey. Four were "
     "excluded because of missing data.", 16),
    # a fraction is not a count of people
    ("In this survey of students, nearly one third of the students had used kratom.", None),
    # "11 articles with 23 patients": the articles are not people
    ("A total of 64 articles were retrieved, and 9 articles with 31 unique patients were "
     "analysed in this survey.", 31),
    # instruments, not a sample ("two questionnaires"), versus a sample of surveys
    ("Respondents completed two questionnaires. A total of 412 evaluable surveys were "
     "collected.", 412),
    # a subgroup that "reported" something is not the whole sample
    ("We recruited at one clinic. A sample of 240 patients answered the survey. Nineteen "
     "participants reported kratom use.", 240),
])
def test_n_traps_fixed_in_1_1(abstract: str, n: int | None) -> None:
    result = extract(SURVEY_TITLE, abstract)
    assert result.design == "observational"
    assert result.n == n


def test_things_counted_with_n_equals_are_not_people() -> None:
    # "websites (n = 37)": websites, not people, so no n
    abstract = ("We evaluated vendor websites (n = 37) with a validated instrument; the mean "
                "quality score was 31.5 (SD 6.2).")
    assert extract("Kratom vendor websites: a content analysis", abstract).n is None
    text = " Title\n" + abstract + " "
    assert sample_size(text, 7, 7) is None


def test_case_reports_are_publications_not_patients() -> None:
    # only three case reports exist; this report describes one patient
    result = extract("Kratom-induced cholestasis: a case report",
                     "Only three case reports of this injury have been published. A "
                     "52-year-old woman presented with jaundice after daily kratom use.")
    assert result.design == "case" and result.n == 1


def test_case_series_of_two_patients() -> None:
    # "series of 2 patients" counts them ("mother of two children" still does not)
    result = extract("Seizures after kratom use",
                     "We present a case series. Methods: retrospective series of 2 patients "
                     "treated at one hospital. Patient 1 was a 30-year-old man.")
    assert result.design == "case" and result.n == 2


@pytest.mark.parametrize(("title", "abstract", "design"), [
    # pharmacovigilance reports are observational, not chemistry ("reaction")
    ("Adverse drug reactions to kratom in a national reporting system",
     "We analysed adverse drug reactions reported to the FDA Adverse Event Reporting System "
     "(FAERS). Based on 512 reports, most involved men; disproportionality signals for "
     "seizures were found.", "observational"),
    # decedents from mortality registers analysed together: observational, not qualitative
    ("Characteristics of kratom-related deaths",
     "Aims: this study describes such fatalities. Methods: cases were identified from "
     "mortality registers and analysed with descriptive statistics and thematic analysis. "
     "Results: case characteristics (n = 88) were mostly male.", "observational"),
    # a title counting its postmortem cases names a series
    ("Postmortem concentrations of mitragynine in 44 cases",
     "Our laboratory analyzed blood from 44 postmortem cases. Solvent stability of the "
     "analytes was also tested.", "observational"),
    # in vitro binding and an in vivo test in mice: animal (DESIGN.md)
    ("A mitragynine analogue relieves neuropathic pain in mice",
     "In this study the analogue showed high affinity in a binding assay (Ki 3.1 nM) and in "
     "an isolated guinea pig ileum assay. Systemic administration produced antiallodynic "
     "effects in a mouse pain model.", "animal"),
    # an isolation paper that mentions an in vitro permeability assay stays chemistry
    ("Isolation and cyclodextrin complexation of kratom alkaloids",
     "We optimised alkaloid extraction and isolated four alkaloids by HPLC and flash "
     "chromatography; an in vitro permeability assay guided the isolation. Complexation "
     "with cyclodextrin derivatives improved solubility and stability.", "chemistry"),
    # postharvest processing and alkaloid composition of leaves: chemistry, not botany
    ("Alkaloid biosynthesis in kratom varies with postharvest drying",
     "This study investigated withering and drying temperature on kratom alkaloid "
     "composition of leaves.", "chemistry"),
])
def test_design_phrases_added_in_1_1(title: str, abstract: str, design: str) -> None:
    assert extract(title, abstract).design == design


def test_version_is_1_3() -> None:
    assert CODE_VERSION == "1.3" and extractor_version().startswith("1.3+")


# -- review of the 1.2 n rules: each abstract is invented and failed at commit 2930c4a ------

@pytest.mark.parametrize(("abstract", "n"), [
    # thresholds, not counts: an age, a duration and a BMI cut-off "were excluded"
    ("A total of 140 respondents were recruited through an online panel. Respondents aged "
     "under 21 were excluded from the dosing questions.", 140),
    ("In this survey, 96 adults were included. Adults who had used kratom for less than 3 "
     "months were excluded.", 96),
    ("We surveyed 310 kratom users at two festivals. Users with a BMI above 35 were excluded "
     "from the weight analysis.", 310),
    # the count is already net: "included in the analysis after 40 were excluded"
    ("In this cross-sectional survey, a total of 180 participants were included in the "
     "analysis after 40 were excluded for incomplete answers.", 180),
    # the intended subtraction stays: a bare count or a count of people after the sample
    ("A total of eighteen cases were identified in this survey. Two were excluded because "
     "kratom use was not confirmed.", 16),
    ("A total of 75 patients were enrolled in this survey. Five patients were excluded "
     "after withdrawing consent.", 70),
])
def test_excluded_subtracts_only_counts_of_people(abstract: str, n: int | None) -> None:
    result = extract(SURVEY_TITLE, abstract)
    assert result.design == "observational"
    assert result.n == n


@pytest.mark.parametrize(("abstract", "n"), [
    # a share that completed the survey is the analysed sample ("of the 600" is not a count)
    ("In this cross-sectional survey, of the 600 members invited, 510 respondents (85%) "
     "completed the online questionnaire.", 510),
    # a share that is a subgroup still loses to the sample
    ("A total of 210 participants completed this survey. Of these, 150 participants (71%) "
     "were women and 60 (29%) were men.", 210),
])
def test_a_share_that_completed_is_the_sample(abstract: str, n: int | None) -> None:
    result = extract(SURVEY_TITLE, abstract)
    assert result.design == "observational"
    assert result.n == n


@pytest.mark.parametrize(("abstract", "n"), [
    # people drawn from sites or via posts are counted by "n ="
    ("This cross-sectional survey enrolled clients from four methadone clinic sites "
     "(n = 275) and asked about kratom use.", 275),
    ("In this survey, members recruited through social media posts (n = 164) answered "
     "questions about kratom.", 164),
    # things counted by "n =" are still not people
    ("In this survey of online content, we coded YouTube videos (n = 58) about kratom.", None),
])
def test_n_equals_after_things_that_people_came_from(abstract: str, n: int | None) -> None:
    result = extract(SURVEY_TITLE, abstract)
    assert result.design == "observational"
    assert result.n == n


def test_own_case_reports_are_cases() -> None:
    # the record presents its own three case reports: three patients, not publications
    result = extract("Kratom-associated hypothyroidism",
                     "We present three case reports of hypothyroidism in men who used kratom "
                     "daily for over a year.")
    assert result.design == "case" and result.n == 3


# every invented abstract above, and the 1.1 ones, for the path agreement test
_AGREEMENT_ABSTRACTS = [
    "A total of 44 kratom users were interviewed. Of these, 35 participants (80%) were men.",
    "A total of 140 respondents were recruited through an online panel. Respondents aged "
    "under 21 were excluded from the dosing questions.",
    "In this cross-sectional survey, of the 600 members invited, 510 respondents (85%) "
    "completed the online questionnaire.",
    "This cross-sectional survey enrolled clients from four methadone clinic sites (n = 275) "
    "and asked about kratom use.",
    "A total of eighteen cases were identified in this survey. Two were excluded because "
    "kratom use was not confirmed.",
    "We identified 48 cases during the study period. A total of 30 cases (62%) involved "
    "ingestion at home, and 12 (25%) were managed in hospital.",
    "Respondents completed two questionnaires. A total of 412 evaluable surveys were "
    "collected.",
    "We recruited at one clinic. A sample of 240 patients answered the survey. Nineteen "
    "participants reported kratom use.",
]


@pytest.mark.parametrize("abstract", _AGREEMENT_ABSTRACTS)
def test_anchor_path_agrees_with_full_scan(abstract: str) -> None:
    # the extractor scans only near its anchors; it must find what the full scan finds,
    # including a count in a short abstract's first sentence (its "background")
    extractor = default_extractor()
    text = f" {SURVEY_TITLE}\n{abstract} "
    body = len(SURVEY_TITLE) + 2
    bg_end = extractor._hits(text, body)[1]
    full = sample_size(text, body, bg_end)
    assert full is not None
    assert extract(SURVEY_TITLE, abstract).n == full.value


def test_short_abstract_counts_its_first_sentence() -> None:
    # the only sample count stands in the first sentence of a heading-less abstract
    abstract = ("A total of 44 kratom users were interviewed. Of these, 35 participants (80%) "
                "were men.")
    assert extract(SURVEY_TITLE, abstract).n == 44


def test_a_count_larger_than_humanity_is_no_n():
    """Digits run together by OCR are not a sample (and would not survive storage exactly)."""
    text = "A total of 123456789012345678901 participants completed the kratom survey."
    assert extract("Kratom use survey", text).n is None
    assert extract("Kratom use survey", text.replace("123456789012345678901", "2,798")).n == 2798
