"""The streaming lxml parser against the Bio.Entrez parser it replaced (tests/reference_parse.py):
the same records, field by field, in the same order, with the same raw XML and deleted PMIDs.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from pathlib import Path

import pytest

from kratomlit.models import ParsedBatch
from kratomlit.parse import parse_pubmed_xml
from tests.reference_parse import reference_parse

FIXTURE = Path(__file__).parent / "fixtures" / "efetch_kratom.xml"
SHARED_EFETCH = ["real-records/real_metapub.xml", "real-records/real_fatcat.xml",
                 *(f"biopython/pubmed{n}.xml" for n in (1, 2, 4, 5, 6, 7)),
                 "biopython/title_with_html_tags.xml", "medline/pubmed-29768149.xml",
                 "medline/test_current_medline.xml.gz"]


def _differences(body: bytes) -> list[str]:
    """Every field on which the two parsers disagree, named by PMID."""
    new, ref = parse_pubmed_xml(body), reference_parse(body)
    assert isinstance(new, ParsedBatch)
    out = [] if new.deleted == ref.deleted else [f"deleted {new.deleted} != {ref.deleted}"]
    if [r.pmid for r in new.records] != [r.pmid for r in ref.records]:
        return [*out, "different records or order"]
    for a, b in zip(new.records, ref.records, strict=True):
        out += [f"{a.pmid} {f.name}: {getattr(a, f.name)!r:.200} != {getattr(b, f.name)!r:.200}"
                for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
    return out


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def test_fixture_records_are_identical():
    assert _differences(FIXTURE.read_bytes()) == []
    assert len(parse_pubmed_xml(FIXTURE.read_bytes()).records) == 4


_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.S)


@pytest.mark.parametrize("change", [
    "no DOCTYPE", "MathML without its namespace declared", "DeleteCitation",
    "named character entity", "inline markup and MathML layout", "book before articles",
    "reference lists", "nested reference lists", "reference list tag in a comment",
])
def test_fixture_variants_are_identical(change):
    body = FIXTURE.read_bytes()
    title = b"<ArticleTitle>"
    refs = (b"<ReferenceList><Reference><Citation>A <i>B</i> 2020;1:2.</Citation><ArticleIdList>"
            b'<ArticleId IdType="pubmed">1</ArticleId></ArticleIdList></Reference>'
            b"</ReferenceList></PubmedData>")
    nested = b"<ReferenceList><Title>R</Title>" + refs.replace(b"</PubmedData>", b"") + \
        b"</ReferenceList></PubmedData>"
    body = {
        "reference lists": body.replace(b"</PubmedData>", refs),
        "nested reference lists": body.replace(b"</PubmedData>", nested),
        "reference list tag in a comment": body.replace(b"</PubmedData>", b"<!-- <ReferenceList>"
                                                        b" -->" + refs, 1),
        "no DOCTYPE": re.sub(rb"<!DOCTYPE[^>]*>", b"", body),
        "MathML without its namespace declared": body.replace(
            title, title + b"<mml:math><mml:mrow>\n  <mml:mi>&#x3bc;</mml:mi>\n</mml:mrow>"
            b"</mml:math>-opioid ", 1),
        "DeleteCitation": body.replace(b"</PubmedArticleSet>", b"<DeleteCitation><PMID Vers"
                                       b'ion="1">17</PMID><PMID>18</PMID></DeleteCitation>'
                                       b"</PubmedArticleSet>"),
        "named character entity": body.replace(title, title + b"&alpha; and &beta; ", 1),
        "inline markup and MathML layout": body.replace(
            title, title + b"<b><i>D</i>\n<sub>3</sub></b> \n<sup>x</sup>  ", 1),
        "book before articles": body.replace(b"<PubmedArticleSet>", b"<PubmedArticleSet>"
                                             + body[body.index(b"<PubmedBookArticle>"):
                                                    body.index(b"</PubmedBookArticle>") + 20]
                                             ).replace(b"<PMID Version=\"1\">90000004</PMID>",
                                                       b"<PMID Version=\"1\">90000005</PMID>", 1),
    }[change]
    assert _differences(body) == []


@pytest.mark.parametrize("name", SHARED_EFETCH)
def test_real_ncbi_answers_are_identical(shared, name):
    body = _read(shared / "ncbi-samples" / name)
    assert parse_pubmed_xml(body).records
    assert _differences(body) == []


def test_real_records_cloned_into_one_big_batch_are_identical(shared):
    """The bench's batch: the 343 real records twice over, the copies under new PMIDs."""
    folder = shared / "ncbi-samples" / "real-records"
    articles = [m.group(0) for f in ("real_metapub.xml", "real_fatcat.xml")
                for m in _ARTICLE.finditer((folder / f).read_bytes())]
    copies = [re.sub(rb"(<MedlineCitation[^>]*>\s*<PMID[^>]*>)\d+", rb"\g<1>%d" % (10**8 + i),
                     a, count=1) for i, a in enumerate(articles)]
    prolog = FIXTURE.read_bytes().split(b"<PubmedArticleSet>")[0]
    body = prolog + b"<PubmedArticleSet>\n" + b"\n".join(articles + copies) + \
        b"\n</PubmedArticleSet>\n"
    assert len(parse_pubmed_xml(body).records) == 2 * len(articles) == 686
    assert _differences(body) == []


@pytest.mark.parametrize("title, abstract, new, old", [
    # text that looks like markup is text: Bio.Entrez's string cannot tell it from a tag
    ("Use &lt;i&gt; for italics", "", ("Use <i> for italics", ""), ("Use  for italics", "")),
    # DispFormula (allowed in AbstractText by NCBI's DTD) is markup, not text
    ("T", 'A <DispFormula><mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:mi>x'
     "</mml:mi></mml:math></DispFormula> B", ("T", "A x B"),
     ("T", "A <DispFormula>x</DispFormula> B")),
    # a line break between literal ">" and "<" is the author's, not layout between tags
    ("T", "n &gt;\n&lt; 5", ("T", "n >\n< 5"), ("T", "n >< 5")),
])
def test_where_the_reference_was_wrong(title, abstract, new, old):
    """The only known disagreements on valid NCBI XML: the reference worked on a string
    with the markup spelled back in, the new parser reads the tree."""
    body = FIXTURE.read_bytes().replace(
        b"<ArticleTitle>Fatal intoxication after \"kratom shots\": post-mortem blood "
        b"concentrations</ArticleTitle>", f"<ArticleTitle>{title}</ArticleTitle>".encode()
    ).replace(b"<AbstractText>A fatal case", f"<AbstractText>{abstract}</AbstractText>"
              "<AbstractText>A fatal case".encode())
    pick = {r.pmid: r for r in parse_pubmed_xml(body).records}[90000003]
    ref = {r.pmid: r for r in reference_parse(body).records}[90000003]
    first = pick.abstract_sections[0]["text"] if abstract else ""
    ref_first = ref.abstract_sections[0]["text"] if abstract else ""
    assert (pick.title, first) == new and (ref.title, ref_first) == old
