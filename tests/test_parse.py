"""Parsing efetch XML: hand-written fixtures, then NCBI's own recorded answers."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kratomlit.parse import InBandError, MalformedResponse, parse_pubmed_xml

FIXTURE = Path(__file__).parent / "fixtures" / "efetch_kratom.xml"


@pytest.fixture(scope="module")
def records():
    return {r.pmid: r for r in parse_pubmed_xml(FIXTURE.read_bytes()).records}


def test_title_markup_is_reduced_to_text(records):
    assert records[90000001].title == ("Partial agonism of Mitragyna speciosa alkaloids at the "
                                       "μ-opioid receptor: a Gi signalling study.")


def test_less_than_and_greater_than_in_text_are_kept(records):
    assert "(reference <0.1 mg/L; n > 3 series)" in records[90000003].abstract


def test_structured_abstract_keeps_labelled_sections(records):
    rec = records[90000001]
    assert rec.abstract.split("\n\n")[1].startswith("METHODS: We measured binding affinity (Ki)")
    assert [s["label"] for s in rec.abstract_sections] == ["BACKGROUND", "METHODS", "RESULTS"]


def test_authors_including_collective_and_affiliations(records):
    authors = records[90000001].authors
    assert authors[0]["affiliations"][0].startswith("Department of Pharmacology")
    assert authors[1]["suffix"] == "Jr"
    assert authors[2]["collective"] == "Kratom Fixture Consortium"


def test_ids_journal_and_dates(records):
    rec = records[90000001]
    assert (rec.doi, rec.pmcid, rec.journal_iso) == ("10.5555/fixture.0001", "PMC9000001",
                                                     "J Fixture Pharmacol")
    assert (rec.volume, rec.issue, rec.pages, rec.pub_date) == ("12", "3", "101-110",
                                                                "2024-03-15")
    assert (records[90000002].pub_year, records[90000002].pub_date) == (2019, "2019 Jan-Feb")
    assert records[90000003].pub_date == "2021 Winter"


def test_mesh_keywords_and_types(records):
    rec = records[90000001]
    assert rec.mesh[0]["qualifiers"][0] == {"name": "chemistry", "ui": "Q000737", "major": True}
    assert rec.mesh[1]["major"] and rec.keywords == ["kratom", "partial agonist"]
    assert records[90000003].publication_types == ["Case Reports"]


def test_retraction_links(records):
    rec = records[90000002]
    assert rec.retracted
    assert rec.corrections == [{"type": "RetractionIn", "source": "Fixture Addict Rep. 2020;8:e1",
                                "pmid": "90000099"}]
    assert not records[90000001].retracted


def test_book_article_and_raw_xml(records):
    book = records[90000004]
    assert book.kind == "book" and book.journal == "Kratom: A Clinical Fixture Handbook"
    assert book.raw_xml.startswith("<PubmedBookArticle>")
    assert records[90000001].raw_xml.startswith("<PubmedArticle>")


def test_delete_citation_is_reported():
    body = (b'<?xml version="1.0" ?><PubmedArticleSet><DeleteCitation><PMID Version="1">123'
            b"</PMID><PMID Version=\"1\">456</PMID></DeleteCitation></PubmedArticleSet>")
    assert parse_pubmed_xml(body).deleted == [123, 456]


@pytest.mark.parametrize("body", [
    b"<html><head><title>502 Bad Gateway</title></head></html>",
    b"not xml at all",
    FIXTURE.read_bytes()[:1500],  # truncated
])
def test_non_pubmed_bodies_are_errors(body):
    with pytest.raises(MalformedResponse):
        parse_pubmed_xml(body)


def test_efetch_error_document_is_in_band_error():
    with pytest.raises(InBandError, match="Unable to obtain query #1"):
        parse_pubmed_xml(b"<eFetchResult>\n\t<ERROR>Unable to obtain query #1</ERROR>\n"
                         b"</eFetchResult>")


def test_unknown_newer_dtd_is_not_needed():
    """NCBI dates a new DTD each year; the parser reads none, so an unknown one changes
    nothing (tests/test_parse_hostile.py shows a DTD URL is never fetched)."""
    body = FIXTURE.read_bytes()
    newer = body.replace(b"pubmed_250101.dtd", b"pubmed_260101.dtd")
    assert newer != body
    assert parse_pubmed_xml(newer) == parse_pubmed_xml(body)


# ---- conformance with real NCBI answers (../shared/ncbi-samples; skipped when absent) ----

def test_real_efetch_answers_parse(shared):
    folder = shared / "ncbi-samples"
    for path in sorted((folder / "biopython").glob("pubmed[0-9].xml")):
        batch = parse_pubmed_xml(path.read_bytes())
        assert batch.records and all(r.title and r.raw_xml for r in batch.records), path


def test_real_records_hard_cases(shared):
    folder = shared / "ncbi-samples" / "real-records"
    records = [r for f in ("real_metapub.xml", "real_fatcat.xml")
               for r in parse_pubmed_xml((folder / f).read_bytes()).records]
    assert len(records) == 343 and len({r.pmid for r in records}) == 343
    assert all(r.raw_xml for r in records)
    assert sum(bool(r.pmcid) for r in records) == 119
    assert sum(1 for r in records if any(a["collective"] for a in r.authors)) == 12
    assert sum(1 for r in records if r.corrections and any(
        c["type"] == "RetractionIn" for c in r.corrections)) >= 1
    medline_dates = [r.pub_date for r in records if "-" in r.pub_date and " " in r.pub_date]
    assert medline_dates and all(r.pub_year for r in records if r.pub_date)
    assert not any("<i>" in r.title or "<sub>" in r.title for r in records)
    by_pmid = {r.pmid: r for r in records}
    assert "<75%" in by_pmid[38801034].abstract  # a literal '<' is text, not markup


def test_real_html_tags_and_html_error_page(shared):
    folder = shared / "ncbi-samples" / "biopython"
    rec = parse_pubmed_xml((folder / "title_with_html_tags.xml").read_bytes()).records[0]
    assert "<i>" not in rec.title and "TERT" in rec.title
    with pytest.raises(MalformedResponse):
        parse_pubmed_xml((folder / "pubmed3.html").read_bytes())


def test_real_current_medline_file(shared):
    path = shared / "ncbi-samples" / "medline" / "test_current_medline.xml.gz"
    batch = parse_pubmed_xml(gzip.decompress(path.read_bytes()))
    assert batch.records and all(r.pmid and r.title for r in batch.records)


def test_title_and_abstract_keep_their_own_whitespace():
    from tests.eutils_server import PROLOG, synthetic_doc

    title = "Kratom:\nline  two\u00a0and\tμ-opioid"
    doc = synthetic_doc(5, __import__("datetime").date(2020, 1, 1), title=title)
    math = ("<AbstractText>Ratio <mml:math><mml:mrow>\n      <mml:mi>x</mml:mi>\n    "
            "</mml:mrow></mml:math> rose.\nSecond line.</AbstractText>")
    xml = doc.xml.replace("<AbstractText>Abstract of record 5 about mitragynine."
                          "</AbstractText>", math)
    rec = parse_pubmed_xml(f"{PROLOG}<PubmedArticleSet>{xml}</PubmedArticleSet>".encode())
    assert rec.records[0].title == title  # exactly as PubMed sent it
    assert rec.records[0].abstract == "Ratio x rose.\nSecond line."  # MathML layout dropped
