"""PubMed efetch XML -> normalised records, streamed with lxml.

One ``PubmedArticle`` / ``PubmedBookArticle`` is parsed at a time (``lxml.etree.iterparse``)
and freed once its record is built, so the tree never grows with the batch; ``raw_xml`` is
a slice of the answer's own bytes, never a re-serialisation. ``ReferenceList`` elements,
most of a modern record's bytes and never read, are cut out before parsing.

Safe by construction: the parser loads no DTD, resolves no entity, touches no network and
refuses huge text nodes. A body that declares its own DTD or entities (even an entity bomb or
a ``SYSTEM`` entity naming a file or URL) is parsed inertly: the internal subset is dropped
before parsing, references stay unexpanded and add nothing to the text (standard named
characters such as ``&alpha;`` excepted), nothing is read or fetched, and the records are
kept. Anything that is not a PubMed article set (an HTML error page, a truncated body, an
``eFetchResult`` error document) raises instead of parsing to nothing. Characters XML 1.0
cannot carry (C0 controls, U+FFFE/U+FFFF, surrogates, invalid UTF-8), raw or as character
references, become U+FFFD, so one bad character in one record does not make a whole batch
unfetchable.

The records equal those of the Bio.Entrez-based parser this replaced, field for field
(tests/test_parse_parity.py against tests/reference_parse.py). Biopython keeps the
ESearch/EInfo answers: ``safe_xml`` and ``local_esearch_dtd`` prepare those for
``Bio.Entrez.read`` (and refuse a DTD or entities there, which Biopython would otherwise
fetch or expand).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kratomlit.errors import ContentError
from kratomlit.models import (
    RETRACTION_TYPES,
    AbstractSection,
    Author,
    Correction,
    MeshHeading,
    ParsedBatch,
    Qualifier,
    Record,
)

if TYPE_CHECKING:
    from lxml.etree import _Element

MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
# ``clean_text``/``clean_prose`` take text where inline markup was kept as literal tags and
# "p < 0.05" is a literal "<" too: remove only the inline elements PubMed uses.
_MATHML = ("math|mi|mn|mo|ms|mtext|mspace|mrow|mfrac|msqrt|mroot|mstyle|merror|mpadded|"
           "mphantom|mfenced|menclose|msub|msup|msubsup|munder|mover|munderover|"
           "mmultiscripts|mprescripts|none|mtable|mtr|mtd|mlabeledtr|semantics|annotation|"
           "annotation-xml|maligngroup|malignmark")
_TAG = re.compile(r"</?(?:i|b|u|sup|sub|em|strong|mml:[A-Za-z][\w.-]*|(?:" + _MATHML +
                  r"))(?:\s[^<>]*)?/?>")
_SPACE = re.compile(r"\s+")
_LAYOUT = re.compile(r">\s*\n\s*<")  # line breaks that only lay out markup (MathML)
_YEAR = re.compile(r"\b(1[6-9]\d\d|2\d\d\d)\b")
_CHUNK_START = re.compile(rb"<(PubmedArticle|PubmedBookArticle)>")
_CHUNK_PMID = re.compile(rb"<PMID[^>]*>\s*(\d+)\s*</PMID>")
_ROOT = re.compile(rb"<([A-Za-z][\w.-]*)[\s>/]")
_ERROR = re.compile(rb"<ERROR>(.*?)</ERROR>", re.S)
_TITLE = re.compile(rb"<title>(.*?)</title>", re.S | re.I)
_DOCTYPE = re.compile(rb"<!DOCTYPE([^>]*)>", re.S)
_LITERAL = re.compile(rb'"([^"]*)"|\'([^\']*)\'')
# Characters XML 1.0 forbids: raw C0 controls and U+FFFE/U+FFFF (raw surrogates are invalid
# UTF-8, replaced before), and character references to C0 controls, surrogates, U+FFFE/FFFF
# or beyond U+10FFFF. Spelled out rather than checked in a callback: real answers carry
# thousands of legal references, which must cost nothing.
_ILLEGAL = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]|&#(?:"
    rb"[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF]"
    rb"|1[1-9a-fA-F][0-9a-fA-F]{4}|[2-9a-fA-F][0-9a-fA-F]{5}|[1-9a-fA-F][0-9a-fA-F]{6,})"
    rb"|0*(?:[0-8]|1[124-9]|2\d|3[01]|5529[6-9]|55[3-9]\d\d|56\d{3}|57[0-2]\d\d|573[0-3]\d"
    rb"|5734[0-3]|6553[45]|111411[2-9]|11141[2-9]\d|1114[2-9]\d\d|111[5-9]\d{3}|11[2-9]\d{4}"
    rb"|1[2-9]\d{5}|[2-9]\d{6}|[1-9]\d{7,}));")
REPLACEMENT = "\ufffd".encode()
_NAMESPACES = ((b"mml", b"http://www.w3.org/1998/Math/MathML"),
               (b"xlink", b"http://www.w3.org/1999/xlink"))
# a DOCTYPE whole: quoted literals and comments may hold "]" or ">"
_DOCTYPE_FULL = re.compile(
    rb"""<!DOCTYPE(?:[^\[>"']|"[^"]*"|'[^']*')*"""
    rb"""(?:\[(?:<!--.*?-->|"[^"]*"|'[^']*'|[^\]"'<]|<(?!!--))*\])?\s*>""", re.S)
_PUBMED_DOCTYPE = b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle//EN" "pubmed.dtd">'
_AUTHOR_FIELDS = {"LastName": "last", "ForeName": "fore", "Initials": "initials",
                  "Suffix": "suffix", "CollectiveName": "collective"}
_RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation")


class MalformedResponse(ValueError):
    """The body is not a usable PubMed XML document (often transient: retry)."""


class InBandError(ValueError):
    """NCBI answered HTTP 200 with an ERROR element instead of records."""


def parse_pubmed_xml(body: bytes) -> ParsedBatch:
    """Parse one efetch answer (a ``PubmedArticleSet``) into records and deleted PMIDs.

    Articles come before books, as ``Bio.Entrez.read`` grouped them."""
    records: list[Record] = []
    deleted: list[int] = []
    for item in iter_pubmed_xml(body):
        if isinstance(item, Record):
            records.append(item)
        else:
            deleted.append(item)
    records.sort(key=lambda r: r.kind == "book")  # stable
    return ParsedBatch(records, deleted)


def screen_pubmed_xml(body: bytes) -> bytes:
    """``body`` when it looks like a whole PubMed article set, checked in microseconds
    without parsing it: an HTML page or an ``eFetchResult`` error raises as
    ``parse_pubmed_xml`` would, and a body cut short (no closing ``</PubmedArticleSet>``)
    raises ``MalformedResponse``, so the client retries it at once while the parse itself
    runs elsewhere (a worker process, see ``search.prefetched``). A body that does not end
    as NCBI's do is parsed here, so only what the parser refuses is refused."""
    _check_document(_inert_doctype(body))
    if not body[-64:].rstrip().endswith(b"</PubmedArticleSet>"):
        parse_pubmed_xml(body)
    return body


def iter_pubmed_xml(body: bytes) -> Iterator[Record | int]:
    """Each record of an efetch answer as it is parsed, in document order, and each PMID of
    its ``DeleteCitation`` as an ``int``. Raises ``MalformedResponse``/``InBandError`` (after
    the records before the damage, for a truncated body).

    The fast path parses the answer without its ``ReferenceList`` elements (see
    ``_kept_spans``). Characters XML cannot carry, an undeclared ``mml`` prefix or an
    entity without a DOCTYPE are rare and make libxml2 fail; only then is the whole body
    repaired (``clean_xml_chars``, ``_declare``) and parsed, resuming after the records
    already yielded, so a clean answer pays nothing for the repairs."""
    body = _inert_doctype(body)
    _check_document(body)
    done = 0
    try:
        for item in _stream(body, _kept_spans(body)):
            yield item
            done += 1
    except MalformedResponse:
        whole = clean_xml_chars(_declare(body))
        if whole == body and b"<ReferenceList>" not in body:
            raise
        yield from itertools.islice(_stream(whole, [(0, len(whole))]), done, None)


def _kept_spans(body: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of the parts of ``body`` outside its ``<ReferenceList>`` elements, which
    kratomlit never reads and which are most of a modern record's bytes (73 % of the real
    test records): skipping them by byte search costs 1/30 of parsing them, and copies
    nothing. ``raw_xml`` still comes from the whole body. A cut that is not exactly one
    element (nested lists, the tag inside a comment or CDATA) leaves an unmatched tag, so
    the parse fails and the whole body is parsed."""
    pos = 0
    while (start := body.find(b"<ReferenceList>", pos)) >= 0:
        end = body.find(b"</ReferenceList>", start)
        if end < 0:
            break
        yield pos, start
        pos = end + len(b"</ReferenceList>")
    yield pos, len(body)


class _SpanReader:
    """The spans of ``body`` as one file for ``iterparse`` (which calls ``read(n)``).

    Not lxml's feed interface (``XMLPullParser``, ``XMLParser.feed``): with libxml2 2.14 it
    opens a DOCTYPE's external DTD file even with ``load_dtd=False``; ``iterparse`` does
    not (tests/test_parse_hostile.py watches for it)."""

    def __init__(self, body: bytes, spans: Iterable[tuple[int, int]]):
        self.body, self.spans = body, iter(spans)
        self.pos = self.end = 0

    def read(self, size: int = -1) -> bytes:
        while self.pos >= self.end:
            span = next(self.spans, None)
            if span is None:
                return b""
            self.pos, self.end = span
        stop = self.end if size < 0 else min(self.end, self.pos + size)
        piece, self.pos = self.body[self.pos:stop], stop
        return piece


def _stream(body: bytes, spans: Iterable[tuple[int, int]]) -> Iterator[Record | int]:
    """Records parsed from ``spans`` of ``body``, each with its ``raw_xml`` sliced from the
    whole ``body``; the tree holds one record at a time."""
    from lxml import etree

    events = etree.iterparse(
        _SpanReader(body, spans), events=("end",), tag=_RECORD_TAGS, resolve_entities=False,
        no_network=True, load_dtd=False, dtd_validation=False, attribute_defaults=False,
        huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False)
    try:
        yield from _records(events, body)
    except etree.XMLSyntaxError as exc:
        raise MalformedResponse(f"unreadable PubMed XML ({exc})") from exc


def _records(events: Iterable[tuple[str, Any]], raw: bytes) -> Iterator[Record | int]:
    """The records (and deleted PMIDs) of parser events, each record with its own bytes of
    ``raw``; ``pending`` holds a chunk the byte scan found but no record has claimed yet."""
    from lxml import etree

    chunks = _raw_chunks(raw)
    pending: tuple[int, int, int] | None = None
    for _, elem in events:
        if elem.tag == "DeleteCitation":
            yield from (_int(p.text, "DeleteCitation PMID") for p in elem.iterfind("PMID"))
        else:
            record = _article(elem) if elem.tag == "PubmedArticle" else _book(elem)
            chunk = pending or next(chunks, None)
            if chunk and chunk[0] == record.pmid:
                record.raw_xml = raw[chunk[1]:chunk[2]].decode("utf-8", "replace")
                pending = None
            else:  # markup the byte scan did not see (attributes on the tag, say)
                record.raw_xml = etree.tostring(elem, encoding="unicode", with_tail=False)
                pending = chunk
            yield record
        _free(elem)


def _inert_doctype(body: bytes) -> bytes:
    """The body with its DOCTYPE's internal subset (entity, attribute and parameter-entity
    declarations) dropped before any parser sees it: libxml2 would still expand entities to
    check them, and fail the batch on an entity bomb. References to them stay inert."""
    start = body.find(b"<!DOCTYPE", 0, 4096)
    if start < 0:
        return body
    found = _DOCTYPE_FULL.match(body, start)
    if found is None or b"[" not in found.group(0):
        return body
    return body[:start] + _PUBMED_DOCTYPE + body[found.end():]


def _declare(body: bytes) -> bytes:
    """What NCBI's DTD would have supplied, without reading it: the ``mml`` (and ``xlink``)
    namespace MathML uses, fixed by the DTD and so often undeclared in the body, and a
    DOCTYPE when the body has none, so that an entity reference the parser cannot know is
    kept inert (``_pieces`` names it) instead of failing the batch."""
    root = next((m for m in _ROOT.finditer(body, 0, 4096)), None)
    if root is None:
        return body
    tag_end = body.find(b">", root.end() - 1)
    start_tag = body[root.start():tag_end]
    extra = b"".join(b' xmlns:%s="%s"' % (prefix, uri) for prefix, uri in _NAMESPACES
                     if b"<" + prefix + b":" in body and b"xmlns:" + prefix not in start_tag)
    doctype = b"" if b"<!DOCTYPE" in body[:root.start()] else _PUBMED_DOCTYPE + b"\n"
    if not extra and not doctype:
        return body
    return body[:root.start()] + doctype + body[root.start():root.end() - 1] + extra + \
        body[root.end() - 1:]


def _free(elem: _Element) -> None:
    """Drop a finished record and every sibling before it: the tree stays one record big."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def _raw_chunks(body: bytes) -> Iterator[tuple[int, int, int]]:
    """(PMID, start, end) of each ``<PubmedArticle>``/``<PubmedBookArticle>`` in the bytes."""
    for m in _CHUNK_START.finditer(body):
        end = body.find(b"</" + m.group(1) + b">", m.end())
        if end < 0:
            return
        end += len(m.group(1)) + 3
        pmid = _CHUNK_PMID.search(body, m.end(), end)
        if pmid:
            yield int(pmid.group(1)), m.start(), end


def _int(text: str | None, what: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise MalformedResponse(f"a {what} that is not a number ({text!r})") from None


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


def _article(entry: _Element) -> Record:
    parts = _kids(entry)
    citation = _kids(parts.get("MedlineCitation"))
    if "PMID" not in citation:
        raise MalformedResponse("a PubmedArticle without a MedlineCitation/PMID")
    article = _kids(citation.get("Article"))
    journal = _kids(article.get("Journal"))
    issue = _kids(journal.get("JournalIssue"))
    ids = _article_ids(_kids(parts.get("PubmedData")).get("ArticleIdList"))
    year, date = _pub_date(issue.get("PubDate"))
    sections = _abstract_sections(article.get("Abstract"))
    article_elem = citation.get("Article")
    return Record(
        pmid=_int(_raw(citation["PMID"]), "PMID"),
        title=_prose(article.get("ArticleTitle")) or _prose(article.get("VernacularTitle")),
        abstract=_join_sections(sections),
        abstract_sections=sections,
        authors=_authors(_tagged(article.get("AuthorList"), "Author")),
        journal=_text(journal.get("Title")),
        journal_iso=_text(journal.get("ISOAbbreviation")),
        volume=_text(issue.get("Volume")),
        issue=_text(issue.get("Issue")),
        pages=_pages(article.get("Pagination")),
        pub_year=year,
        pub_date=date,
        doi=ids.get("doi") or _elocation_doi(_tagged(article_elem, "ELocationID")),
        pmcid=ids.get("pmc", ""),
        mesh=_mesh(_tagged(citation.get("MeshHeadingList"), "MeshHeading")),
        keywords=_keywords(_tagged(parts.get("MedlineCitation"), "KeywordList")),
        publication_types=[_text(p) for p in _tagged(article.get("PublicationTypeList"),
                                                     "PublicationType")],
        languages=[_raw(x) for x in _tagged(article_elem, "Language")],
        corrections=_corrections(_tagged(citation.get("CommentsCorrectionsList"),
                                         "CommentsCorrections")),
        date_revised=_ymd(citation.get("DateRevised")),
    )


def _kids(elem: _Element | None) -> dict[Any, _Element]:
    """An element's children by tag, in one pass (lxml's ``find`` costs several µs a call;
    this is most of a record). A repeated tag maps to its last, as Bio.Entrez kept it."""
    return {} if elem is None else {child.tag: child for child in elem}


def _tagged(elem: _Element | None, tag: str) -> Iterable[_Element]:
    """The children of ``elem`` named ``tag`` (none when ``elem`` is missing)."""
    return () if elem is None else elem.iterchildren(tag)


def _book(entry: _Element) -> Record:
    parts = _kids(entry)
    doc_elem = parts.get("BookDocument")
    doc = _kids(doc_elem)
    if "PMID" not in doc:
        raise MalformedResponse("a PubmedBookArticle without a BookDocument/PMID")
    book = _kids(doc.get("Book"))
    ids = {**_article_ids(doc.get("ArticleIdList")),
           **_article_ids(_kids(parts.get("PubmedBookData")).get("ArticleIdList"))}
    year, date = _pub_date(book.get("PubDate"))
    sections = _abstract_sections(doc.get("Abstract"))
    # the chapter's authors, else the book's (every list of either: editors too)
    lists = list(_tagged(doc_elem, "AuthorList")) or list(_tagged(doc.get("Book"), "AuthorList"))
    return Record(
        pmid=_int(_raw(doc["PMID"]), "PMID"),
        kind="book",
        title=_prose(doc.get("ArticleTitle")) or _prose(book.get("BookTitle")),
        abstract=_join_sections(sections),
        abstract_sections=sections,
        authors=[a for lst in lists for a in _authors(lst.iterchildren("Author"))],
        journal=_text(book.get("BookTitle")),
        pub_year=year,
        pub_date=date,
        doi=ids.get("doi", ""),
        pmcid=ids.get("pmc", ""),
        keywords=_keywords(_tagged(doc_elem, "KeywordList")),
        publication_types=[_text(p) for p in _tagged(doc_elem, "PublicationType")],
        languages=[_raw(x) for x in _tagged(doc_elem, "Language")],
    )


def _abstract_sections(abstract: _Element | None) -> list[AbstractSection]:
    if abstract is None:
        return []
    sections: list[AbstractSection] = []
    for part in abstract.iterchildren("AbstractText"):
        text = _prose(part)
        if text:
            label = part.get("Label")
            sections.append({"label": clean_text(label) if label else "",
                             "category": part.get("NlmCategory", ""), "text": text})
    return sections


def _join_sections(sections: Iterable[AbstractSection]) -> str:
    """Structured abstracts keep their sections as ``LABEL: text`` paragraphs."""
    return "\n\n".join(
        f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections)


def _authors(authors: Iterable[_Element]) -> list[Author]:
    """One pass over each author's children, text read inline: a 600-author consortium
    list is common enough that a ``find`` or a call per field would dominate the record."""
    out: list[Author] = []
    for a in authors:
        author: Author = {"last": "", "fore": "", "initials": "", "suffix": "",
                          "collective": "", "affiliations": [],
                          "valid": a.get("ValidYN", "Y") != "N"}
        for child in a:
            key = _AUTHOR_FIELDS.get(child.tag)
            if key:
                text = child.text if not len(child) else "".join(_pieces(child, False))
                author[key] = " ".join(text.split()) if text else ""  # type: ignore[literal-required]
            elif child.tag == "AffiliationInfo":
                author["affiliations"] += [
                    t for t in map(_text, child.iterchildren("Affiliation")) if t]
        out.append(author)
    return out


def _pub_date(pub: _Element | None) -> tuple[int | None, str]:
    """Year and a display date; MedlineDate strings such as ``2019 Jan-Feb`` are kept."""
    if pub is None:
        return None, ""
    date = _kids(pub)
    medline = date.get("MedlineDate")
    if _raw(medline):
        text = _text(medline)
        found = _YEAR.search(text)
        return (int(found.group(1)) if found else None), text
    year = _text(date.get("Year"))
    if not year.isdigit():
        return None, ""
    season = date.get("Season")
    if _raw(season):
        return int(year), f"{year} {_text(season)}"
    return int(year), _ymd(pub)


def _ymd(elem: _Element | None) -> str:
    date = _kids(elem)
    year = _raw(date.get("Year"))
    if not year.isdigit():
        return ""
    parts = [year]
    month = _raw(date.get("Month")).strip()
    month_num = int(month) if month.isdigit() else MONTHS.get(month[:3].lower())
    if month_num:
        parts.append(f"{month_num:02d}")
        day = _raw(date.get("Day")).strip()
        if day.isdigit():
            parts.append(f"{int(day):02d}")
    return "-".join(parts)


def _pages(pagination: _Element | None) -> str:
    pages = _kids(pagination)
    medline = pages.get("MedlinePgn")
    if _raw(medline):
        return _text(medline)
    start, end = _text(pages.get("StartPage")), _text(pages.get("EndPage"))
    return f"{start}-{end}" if start and end else start


def _article_ids(id_list: _Element | None) -> dict[str, str]:
    ids: dict[str, str] = {}
    for item in _tagged(id_list, "ArticleId"):
        kind = item.get("IdType", "pubmed")  # the DTD's default
        if kind not in ids:
            ids[kind] = _raw(item).strip()
    return ids


def _elocation_doi(elocations: Iterable[_Element]) -> str:
    for loc in elocations:
        if loc.get("EIdType") == "doi" and loc.get("ValidYN", "Y") == "Y":
            return _raw(loc).strip()
    return ""


def _mesh(headings: Iterable[_Element]) -> list[MeshHeading]:
    out: list[MeshHeading] = []
    for h in headings:
        descriptor, ui, major = "", "", False
        quals: list[Qualifier] = []
        for child in h:
            if child.tag == "QualifierName":
                quals.append({"name": _text(child), "ui": child.get("UI", ""),
                              "major": child.get("MajorTopicYN") == "Y"})
            elif child.tag == "DescriptorName":
                descriptor, ui = _text(child), child.get("UI", "")
                major = child.get("MajorTopicYN") == "Y"
        out.append({"descriptor": descriptor, "ui": ui,
                    "major": major or any(q["major"] for q in quals), "qualifiers": quals})
    return out


def _keywords(keyword_lists: Iterable[_Element]) -> list[str]:
    words: list[str] = []
    for kw_list in keyword_lists:
        for kw in kw_list.iterchildren("Keyword"):
            text = _text(kw)
            if text and text not in words:
                words.append(text)
    return words


def _corrections(items: Iterable[_Element]) -> list[Correction]:
    out: list[Correction] = []
    for item in items:
        kind = item.get("RefType", "")
        if kind in RETRACTION_TYPES:
            fields = _kids(item)
            out.append({"type": kind, "source": _text(fields.get("RefSource")),
                        "pmid": _raw(fields.get("PMID")).strip()})
    return out


# ---- text of an element ------------------------------------------------------------------
# PubMed puts inline markup (<i>, <sup>, MathML) inside titles, abstracts and affiliations.
# Text is taken from the tree, so a literal "<" in the text is never mistaken for markup and
# an unexpanded entity reference (inert input) contributes nothing.

def _raw(elem: _Element | None) -> str:
    """The element's text as sent (inline markup dropped, whitespace untouched)."""
    if elem is None:
        return ""
    if not len(elem):
        return elem.text or ""
    return "".join(_pieces(elem, False))


def _text(elem: _Element | None) -> str:
    """Text with every run of whitespace made one space (names, journals, MeSH ...)."""
    if elem is None:
        return ""
    text = elem.text if not len(elem) else "".join(_pieces(elem, False))
    return " ".join(text.split()) if text else ""


def _prose(elem: _Element | None) -> str:
    """Title and abstract text: the text's own line breaks, tabs and double spaces kept, so
    an export carries it exactly as PubMed sent it; only whitespace that lays out markup
    (a line break between two tags, as in MathML) and the ends go."""
    if elem is None:
        return ""
    text = elem.text if not len(elem) else "".join(_pieces(elem, True))
    return text.strip() if text else ""


def _pieces(elem: _Element, layout: bool) -> list[str]:
    """The text under ``elem`` in document order; with ``layout``, a whitespace-only piece
    holding a line break between two tags is left out."""
    out: list[str] = []
    if elem.text:
        out.append(elem.text)
    for child in elem:
        if isinstance(child.tag, str):
            out.extend(_inner(child, layout))
        else:  # an entity reference the parser left unexpanded
            out.append(_entity(child.text))
        if child.tail:
            last = child is elem[-1]
            out.append(child.tail if last or not layout else _unlaid(child.tail))
    return out


def _inner(elem: _Element, layout: bool) -> list[str]:
    """Like ``_pieces`` for an element inside the text: its own text sits between tags."""
    out: list[str] = []
    text = elem.text
    if text:
        out.append(_unlaid(text) if layout else text)
    for child in elem:
        if isinstance(child.tag, str):
            out.extend(_inner(child, layout))
        else:
            out.append(_entity(child.text))
        if child.tail:
            out.append(_unlaid(child.tail) if layout else child.tail)
    return out


def _entity(reference: str) -> str:
    """The character a standard named entity (``&alpha;``: NCBI's DTD includes the ISO and
    MathML sets, which HTML5 adopted) stands for; any other reference stands for nothing.
    Never the body's own declaration: that is how entity bombs and file reads work."""
    return _named_entities().get(reference, "")


@cache
def _named_entities() -> dict[str, str]:
    from html.entities import html5

    return {f"&{name}": char for name, char in html5.items() if name.endswith(";")}


def _unlaid(text: str) -> str:
    """A piece between two tags: empty when it is only whitespace around a line break."""
    return "" if "\n" in text and text.isspace() else text



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


def safe_xml(body: bytes) -> bytes:
    """An ESearch/EInfo ``body`` ready for ``Bio.Entrez.read``: refused when it declares its
    own DTD or entities or names a DTD Biopython does not bundle (Biopython would fetch or
    expand them), and with bad characters replaced (see ``clean_xml_chars``)."""
    root = _ROOT.search(body[:4096])
    prolog = body[:root.start()] if root else body[:4096]
    doctype = _DOCTYPE.search(prolog)
    if b"<!ENTITY" in prolog or b"[" in prolog:
        raise ContentError("the answer declares its own DTD or entities; refused unparsed")
    if doctype:
        literals = [a or b for a, b in _LITERAL.findall(doctype.group(1))]
        dtd = literals[-1].rsplit(b"/", 1)[-1].decode("ascii", "replace") if literals else ""
        if dtd not in _bundled_dtds():
            raise ContentError(f"the answer names a DTD kratomlit does not have ({dtd!r}); "
                               "refused unparsed")
    return clean_xml_chars(body)


def clean_xml_chars(body: bytes) -> bytes:
    """``body`` with every character XML 1.0 cannot carry, raw or as a character reference,
    and every invalid UTF-8 sequence replaced by U+FFFD: one bad character in one record
    must not make a whole batch unparseable (and so unfetchable)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        body = body.decode("utf-8", "replace").encode("utf-8")
    return _ILLEGAL.sub(REPLACEMENT, body)


@cache
def _bundled_dtds() -> frozenset[str]:
    """Every DTD (and module) file Biopython ships: the only ones a body may name."""
    from Bio.Entrez import Parser as EntrezParser

    return frozenset(p.name for p in (Path(EntrezParser.__file__).parent / "DTDs").iterdir())


_ESEARCH_DTD = re.compile(rb'(<!DOCTYPE eSearchResult[^>]*?")([^"]*?)(esearch[^"/]*\.dtd)"')


def local_esearch_dtd(body: bytes) -> bytes:
    """Point an eSearchResult DOCTYPE at Biopython's bundled esearch.dtd (no download)."""
    head = body[:1024]
    m = _ESEARCH_DTD.search(head)
    if not m or m.group(3) == b"esearch.dtd" and not m.group(2):
        return body
    fixed = head[:m.start()] + m.group(1) + b'esearch.dtd"' + head[m.end():]
    return fixed + body[1024:]
