"""Extractor 1.1: the n traps and design phrases added after reading errors (issue 13).

Every abstract here is invented for the test; none is copied from a real paper. Each one
states a trap that version 1.0 got wrong, so the test fails if the rule is removed.
"""

from __future__ import annotations

import pytest

from kratomlit.extract import CODE_VERSION, extract, extractor_version
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


def test_version_is_1_2() -> None:
    assert CODE_VERSION == "1.2" and extractor_version().startswith("1.2+")
