"""The Bio.Entrez-based efetch parser kratomlit used before its streaming lxml parser.

Kept verbatim (minus the ESearch helpers) as the reference the parity tests
(tests/test_parse_parity.py) compare ``kratomlit.parse.parse_pubmed_xml`` against: the new
parser must produce the same records from the same answers, field by field.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from Bio import Entrez
from Bio.Entrez import Parser as EntrezParser

from kratomlit.models import ParsedBatch, Record
from kratomlit.parse import InBandError, MalformedResponse

MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
# Bio.Entrez keeps inline markup as literal tags in decoded text, where "p < 0.05" is a
# literal "<" too: remove only the inline elements PubMed uses, never "<...>" in general.
# MathML elements; Bio.Entrez hands them back without their mml: prefix
_MATHML = ("math|mi|mn|mo|ms|mtext|mspace|mrow|mfrac|msqrt|mroot|mstyle|merror|mpadded|"
           "mphantom|mfenced|menclose|msub|msup|msubsup|munder|mover|munderover|"
           "mmultiscripts|mprescripts|none|mtable|mtr|mtd|mlabeledtr|semantics|annotation|"
           "annotation-xml|maligngroup|malignmark")
_TAG = re.compile(r"</?(?:i|b|u|sup|sub|em|strong|mml:[A-Za-z][\w.-]*|(?:" + _MATHML +
                  r"))(?:\s[^<>]*)?/?>")
_SPACE = re.compile(r"\s+")
_LAYOUT = re.compile(r">\s*\n\s*<")  # line breaks that only lay out markup (MathML)
_YEAR = re.compile(r"\b(1[6-9]\d\d|2\d\d\d)\b")
_DOCTYPE_DTD = re.compile(rb"(pubmed_\d{6}\.dtd)")
_CHUNK = re.compile(rb"<(PubmedArticle|PubmedBookArticle)>.*?</\1>", re.S)
_CHUNK_PMID = re.compile(rb"<PMID[^>]*>\s*(\d+)\s*</PMID>")
_ROOT = re.compile(rb"<([A-Za-z][\w.-]*)[\s>/]")
_ERROR = re.compile(rb"<ERROR>(.*?)</ERROR>", re.S)
_TITLE = re.compile(rb"<title>(.*?)</title>", re.S | re.I)
_DOCTYPE = re.compile(rb"<!DOCTYPE([^>]*)>", re.S)
_LITERAL = re.compile(rb'"([^"]*)"|\'([^\']*)\'')
# C0 controls XML 1.0 forbids, raw or as character references
_ILLEGAL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|&#(?:0*(?:[0-8]|1[124-9]|2\d|3[01])|"
                      rb"[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]));")
REPLACEMENT = "\ufffd".encode()
RETRACTION_TYPES = ("RetractionIn", "RetractionOf", "ErratumIn", "ErratumFor",
                    "ExpressionOfConcernIn", "RetractionAndRepublicationIn")


def reference_parse(body: bytes) -> ParsedBatch:
    """Parse one efetch answer (a ``PubmedArticleSet``) into records and deleted PMIDs."""
    _check_document(body)
    body = safe_xml(_local_dtd(body))
    try:
        parsed = Entrez.read(io.BytesIO(body), validate=False)
    except (EntrezParser.CorruptedXMLError, EntrezParser.NotXMLError, RuntimeError,
            ValueError) as exc:
        raise MalformedResponse(f"unreadable PubMed XML ({exc})") from exc
    raw = _raw_chunks(body)
    records = [_article(a, raw) for a in parsed.get("PubmedArticle", [])]
    records += [_book(b, raw) for b in parsed.get("PubmedBookArticle", [])]
    deleted = [int(p) for d in _as_list(parsed.get("DeleteCitation")) for p in _pmids(d)]
    return ParsedBatch(records, deleted)


def _check_document(body: bytes) -> None:
    head = body[:2048].lstrip()
    root = next((m.group(1) for m in _ROOT.finditer(head) if not m.group(0).startswith(b"<!")),
                None)
    if root is None or root.lower() == b"html" or head[:14].lower() == b"<!doctype html":
        title = _TITLE.search(body[:4096])
        what = title.group(1).decode("utf-8", "replace").strip() if title else "not XML"
        raise MalformedResponse(f"an HTML or non-XML page instead of PubMed XML ({what})")
    if root in (b"eFetchResult", b"eSearchResult", b"ERROR"):
        err = _ERROR.search(body)
        message = err.group(1).decode("utf-8", "replace").strip() if err else root.decode()
        raise InBandError(message)
    if root != b"PubmedArticleSet":
        raise MalformedResponse(f"unexpected XML root <{root.decode()}>")


def safe_xml(body: bytes) -> bytes:
    """``body`` with its DTD checked (see the module docstring) and bad characters replaced."""
    root = _ROOT.search(body[:4096])
    prolog = body[:root.start()] if root else body[:4096]
    doctype = _DOCTYPE.search(prolog)
    if b"<!ENTITY" in prolog or b"[" in prolog:
        raise MalformedResponse("the answer declares its own DTD or entities; refused unparsed")
    if doctype:
        literals = [a or b for a, b in _LITERAL.findall(doctype.group(1))]
        dtd = literals[-1].rsplit(b"/", 1)[-1].decode("ascii", "replace") if literals else ""
        if dtd not in _bundled_dtds():
            raise MalformedResponse(f"the answer names a DTD kratomlit does not have ({dtd!r}); "
                                    "refused unparsed")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        body = body.decode("utf-8", "replace").encode("utf-8")
    return _ILLEGAL.sub(REPLACEMENT, body)


@cache
def _bundled_dtds() -> frozenset[str]:
    """Every DTD (and module) file Biopython ships: the only ones a body may name."""
    return frozenset(p.name for p in (Path(EntrezParser.__file__).parent / "DTDs").iterdir())


@cache
def _bundled_pubmed_dtds() -> tuple[str, ...]:
    folder = Path(EntrezParser.__file__).parent / "DTDs"
    return tuple(sorted(p.name for p in folder.glob("pubmed_*.dtd")))


def _local_dtd(body: bytes) -> bytes:
    """Point the DOCTYPE at a bundled pubmed DTD so Biopython never goes to the network
    (and add one when a body has none, which Bio.Entrez cannot parse)."""
    head = body[:1024]
    bundled = _bundled_pubmed_dtds()
    if not bundled:
        return body
    if b"<!DOCTYPE" not in head:
        at = head.index(b"?>") + 2 if head.lstrip().startswith(b"<?xml") else 0
        doctype = (b'\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle//EN" '
                   b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/' + bundled[-1].encode() + b'">\n')
        return body[:at] + doctype + body[at:]
    match = _DOCTYPE_DTD.search(head)
    if not match or match.group(1).decode() in bundled:
        return body
    return head.replace(match.group(1), bundled[-1].encode(), 1) + body[1024:]


def _raw_chunks(body: bytes) -> dict[int, str]:
    chunks: dict[int, str] = {}
    for m in _CHUNK.finditer(body):
        pmid = _CHUNK_PMID.search(m.group(0))
        if pmid:
            chunks[int(pmid.group(1))] = m.group(0).decode("utf-8", "replace")
    return chunks


def clean_text(value: Any) -> str:
    """Inline markup (``<i>``, ``<sup>``, MathML) reduced to text; Bio.Entrez has already
    decoded entities, so they are not decoded again."""
    if value is None:
        return ""
    return _SPACE.sub(" ", _TAG.sub("", str(value))).strip()


def clean_prose(value: Any) -> str:
    """Title and abstract text: markup reduced to text like ``clean_text``, but the text's
    own line breaks, tabs and double spaces kept, so an export carries the text exactly as
    PubMed sent it. Only line breaks laying out markup (MathML) and the ends go."""
    if value is None:
        return ""
    return _TAG.sub("", _LAYOUT.sub("><", str(value))).strip()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _attr(value: Any, name: str, default: str = "") -> str:
    return str(getattr(value, "attributes", {}).get(name, default))


def _pmids(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        value = value.get("PMID", [])
    return [str(p) for p in _as_list(value)]


def _article(entry: Mapping[str, Any], raw: Mapping[int, str]) -> Record:
    citation = entry["MedlineCitation"]
    article = citation.get("Article", {})
    journal = article.get("Journal", {})
    issue = journal.get("JournalIssue", {})
    ids = _article_ids(entry.get("PubmedData", {}).get("ArticleIdList", []))
    pmid = int(str(citation["PMID"]))
    year, date = _pub_date(issue.get("PubDate", {}))
    sections = _abstract_sections(article.get("Abstract"))
    return Record(
        pmid=pmid,
        title=clean_prose(article.get("ArticleTitle"))
        or clean_prose(article.get("VernacularTitle")),
        abstract=_join_sections(sections),
        abstract_sections=sections,
        authors=_authors(article.get("AuthorList", [])),
        journal=clean_text(journal.get("Title")),
        journal_iso=clean_text(journal.get("ISOAbbreviation")),
        volume=clean_text(issue.get("Volume")),
        issue=clean_text(issue.get("Issue")),
        pages=_pages(article.get("Pagination")),
        pub_year=year,
        pub_date=date,
        doi=ids.get("doi") or _elocation_doi(article.get("ELocationID", [])),
        pmcid=ids.get("pmc", ""),
        mesh=_mesh(citation.get("MeshHeadingList", [])),
        keywords=_keywords(citation.get("KeywordList", [])),
        publication_types=[clean_text(p) for p in article.get("PublicationTypeList", [])],
        languages=[str(x) for x in article.get("Language", [])],
        corrections=_corrections(citation.get("CommentsCorrectionsList", [])),
        date_revised=_ymd(citation.get("DateRevised")),
        raw_xml=raw.get(pmid, ""),
    )


def _book(entry: Mapping[str, Any], raw: Mapping[int, str]) -> Record:
    doc = entry["BookDocument"]
    book = doc.get("Book", {})
    ids = _article_ids(entry.get("PubmedBookData", {}).get("ArticleIdList", []))
    ids = {**_article_ids(doc.get("ArticleIdList", [])), **ids}
    pmid = int(str(doc["PMID"]))
    year, date = _pub_date(book.get("PubDate", {}))
    sections = _abstract_sections(doc.get("Abstract"))
    author_lists = _as_list(doc.get("AuthorList")) or _as_list(book.get("AuthorList"))
    authors = [a for lst in author_lists for a in _authors(lst if isinstance(lst, list) else [])]
    return Record(
        pmid=pmid,
        kind="book",
        title=clean_prose(doc.get("ArticleTitle")) or clean_prose(book.get("BookTitle")),
        abstract=_join_sections(sections),
        abstract_sections=sections,
        authors=authors,
        journal=clean_text(book.get("BookTitle")),
        pub_year=year,
        pub_date=date,
        doi=ids.get("doi", ""),
        pmcid=ids.get("pmc", ""),
        keywords=_keywords(doc.get("KeywordList", [])),
        publication_types=[clean_text(p) for p in _as_list(doc.get("PublicationType"))],
        languages=[str(x) for x in _as_list(doc.get("Language"))],
        raw_xml=raw.get(pmid, ""),
    )


def _abstract_sections(abstract: Mapping[str, Any] | None) -> list[dict[str, str]]:
    if not abstract:
        return []
    sections = []
    for part in _as_list(abstract.get("AbstractText")):
        text = clean_prose(part)
        if text:
            label = clean_text(_attr(part, "Label"))
            sections.append({"label": label, "category": _attr(part, "NlmCategory"),
                             "text": text})
    return sections


def _join_sections(sections: Iterable[Mapping[str, str]]) -> str:
    """Structured abstracts keep their sections as ``LABEL: text`` paragraphs."""
    return "\n\n".join(
        f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections)


def _authors(author_list: Iterable[Any]) -> list[dict[str, Any]]:
    authors = []
    for a in author_list:
        if not isinstance(a, Mapping):
            continue
        affiliations = [clean_text(i.get("Affiliation")) for i in a.get("AffiliationInfo", [])]
        collective = clean_text(a.get("CollectiveName"))
        authors.append({
            "last": clean_text(a.get("LastName")),
            "fore": clean_text(a.get("ForeName")),
            "initials": clean_text(a.get("Initials")),
            "suffix": clean_text(a.get("Suffix")),
            "collective": collective,
            "affiliations": [x for x in affiliations if x],
            "valid": _attr(a, "ValidYN", "Y") != "N",
        })
    return authors


def _pub_date(pub: Mapping[str, Any]) -> tuple[int | None, str]:
    """Year and a display date; MedlineDate strings such as ``2019 Jan-Feb`` are kept."""
    if pub.get("MedlineDate"):
        text = clean_text(pub["MedlineDate"])
        found = _YEAR.search(text)
        return (int(found.group(1)) if found else None), text
    year = clean_text(pub.get("Year"))
    if not year.isdigit():
        return None, ""
    if pub.get("Season"):
        return int(year), f"{year} {clean_text(pub['Season'])}"
    return int(year), _ymd(pub)


def _ymd(date: Mapping[str, Any] | None) -> str:
    if not date or not str(date.get("Year", "")).isdigit():
        return ""
    parts = [str(date["Year"])]
    month = str(date.get("Month", "")).strip()
    month_num = int(month) if month.isdigit() else MONTHS.get(month[:3].lower())
    if month_num:
        parts.append(f"{month_num:02d}")
        day = str(date.get("Day", "")).strip()
        if day.isdigit():
            parts.append(f"{int(day):02d}")
    return "-".join(parts)


def _pages(pagination: Any) -> str:
    if not isinstance(pagination, Mapping):
        return ""
    if pagination.get("MedlinePgn"):
        return clean_text(pagination["MedlinePgn"])
    start, end = clean_text(pagination.get("StartPage")), clean_text(pagination.get("EndPage"))
    return f"{start}-{end}" if start and end else start


def _article_ids(id_list: Iterable[Any]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for item in id_list:
        kind = _attr(item, "IdType")
        if kind and kind not in ids:
            ids[kind] = str(item).strip()
    return ids


def _elocation_doi(elocations: Iterable[Any]) -> str:
    for loc in _as_list(elocations):
        if _attr(loc, "EIdType") == "doi" and _attr(loc, "ValidYN", "Y") == "Y":
            return str(loc).strip()
    return ""


def _mesh(headings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for h in headings:
        desc = h.get("DescriptorName")
        quals = [{"name": clean_text(q), "ui": _attr(q, "UI"),
                  "major": _attr(q, "MajorTopicYN") == "Y"}
                 for q in _as_list(h.get("QualifierName"))]
        out.append({"descriptor": clean_text(desc), "ui": _attr(desc, "UI"),
                    "major": _attr(desc, "MajorTopicYN") == "Y" or any(q["major"] for q in quals),
                    "qualifiers": quals})
    return out


def _keywords(keyword_lists: Iterable[Any]) -> list[str]:
    words: list[str] = []
    for kw_list in _as_list(keyword_lists):
        for kw in _as_list(kw_list):
            text = clean_text(kw)
            if text and text not in words:
                words.append(text)
    return words


def _corrections(items: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for item in items:
        kind = _attr(item, "RefType")
        if kind in RETRACTION_TYPES:
            pmid = item.get("PMID")
            out.append({"type": kind, "source": clean_text(item.get("RefSource")),
                        "pmid": str(pmid).strip() if pmid else ""})
    return out
