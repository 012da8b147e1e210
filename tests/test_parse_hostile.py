"""The streaming parser on hostile and damaged efetch answers: entity tricks are parsed inertly
(nothing expanded, read or fetched; the records kept), and characters XML 1.0 cannot carry
become U+FFFD in the record while the rest of the batch is stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import date
from pathlib import Path

import pytest

from kratomlit.parse import MalformedResponse, iter_pubmed_xml, parse_pubmed_xml
from tests.eutils_server import PROLOG, EUtilsServer, synthetic_doc
from tests.helpers import library_pmids

MARKER = "KRATOMLIT-XXE-MARKER-77c2"


def _article_set(*chunks: bytes, prolog: bytes = PROLOG.encode()) -> bytes:
    return prolog + b"<PubmedArticleSet>\n" + b"\n".join(chunks) + b"\n</PubmedArticleSet>\n"


def _record(pmid: int = 8_800_030, title: bytes | None = None) -> bytes:
    xml = synthetic_doc(pmid, date(2020, 1, 1)).xml.encode()
    if title is None:
        return xml
    return xml.replace(b"<ArticleTitle>Synthetic kratom record %d</ArticleTitle>" % pmid, title)


def _tricks(marker_file: Path, server: EUtilsServer) -> dict[str, bytes]:
    """Each way an XML body can try to expand, read or fetch, in one record's title."""
    lol = b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1)) * 10)
                   for i in range(1, 10))
    leak, uri = (server.url + "leak.dtd").encode(), marker_file.as_uri().encode()
    ncbi = PROLOG.encode().rstrip().rstrip(b">") + b" ["  # NCBI's own DTD plus a subset
    plain = b'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet ['

    def titled(entity: bytes, prolog: bytes) -> bytes:
        body = _record(title=b"<ArticleTitle>Kratom &" + entity + b"; end</ArticleTitle>")
        return _article_set(body, _record(8_800_031), prolog=prolog)

    return {
        "billion laughs": titled(b"lol9", plain + b'<!ENTITY lol0 "lol">' + lol + b"]>\n"),
        "expansion beside NCBI's DTD": titled(b"lol5", ncbi + b'<!ENTITY lol0 "lol">' + lol
                                              + b"]>\n"),
        "file entity": titled(b"xxe", plain + b'<!ENTITY xxe SYSTEM "' + uri + b'">]>\n'),
        "file entity beside NCBI's DTD": titled(b"xxe", ncbi + b'<!ENTITY xxe SYSTEM "' + uri
                                                + b'">]>\n'),
        "relative entity": titled(b"rel", ncbi + b'<!ENTITY rel SYSTEM "'
                                  + marker_file.name.encode() + b'">]>\n'),
        "URL entity": titled(b"url", plain + b'<!ENTITY url SYSTEM "' + leak + b'">]>\n'),
        "parameter entity": titled(b"amp", plain + b'<!ENTITY % p SYSTEM "' + leak
                                   + b'"> %p;]>\n'),
        "DTD from elsewhere": titled(b"amp", b'<?xml version="1.0"?>\n<!DOCTYPE Pubmed'
                                     b'ArticleSet SYSTEM "' + leak + b'">\n'),
        "XInclude": _article_set(_record(title=b'<ArticleTitle>Kratom <xi:include xmlns:xi='
                                         b'"http://www.w3.org/2001/XInclude" href="' + uri
                                         + b'" parse="text"/> end</ArticleTitle>'),
                                 _record(8_800_031)),
    }


TRICKS = ["billion laughs", "expansion beside NCBI's DTD", "file entity",
          "file entity beside NCBI's DTD", "relative entity", "URL entity", "parameter entity",
          "DTD from elsewhere", "XInclude"]


@pytest.fixture
def marker_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(MARKER)
    monkeypatch.chdir(tmp_path)  # where a relative SYSTEM id would be looked for
    return path


@pytest.mark.parametrize("kind", TRICKS)
def test_entity_tricks_are_parsed_inertly(kind, server, marker_file):
    body = _tricks(marker_file, server)[kind]
    started = time.monotonic()
    records = {r.pmid: r for r in parse_pubmed_xml(body).records}
    assert time.monotonic() - started < 0.5
    assert sorted(records) == [8_800_030, 8_800_031]  # the batch is kept, not refused
    title = records[8_800_030].title
    assert title.startswith("Kratom ") and title.endswith(" end") and len(title) < 20
    everything = repr([r.to_dict(raw=True) for r in records.values()])
    assert MARKER not in everything and "lollol" not in everything
    assert not server.state.log  # nothing was fetched from the server the body names


@pytest.mark.parametrize("kind", ["billion laughs", "file entity beside NCBI's DTD",
                                  "URL entity", "DTD from elsewhere"])
def test_entity_tricks_through_the_cli_store_the_batch_and_leak_nothing(
        kind, cli, server, env, marker_file):
    server.state.add_docs([synthetic_doc(p, date(2020, 1, 1)) for p in (8_800_030, 8_800_031)],
                          term="hostile")
    server.state.bodies["x"] = _tricks(marker_file, server)[kind]
    server.state.faults = {"efetch": ["body:x"]}
    result = cli("search", "hostile", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["retries"] == 0
    assert sorted(library_pmids(env)) == [8_800_030, 8_800_031]
    home = Path(env["KRATOMLIT_HOME"])
    stored = b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())
    assert MARKER.encode() not in stored and b"lollollol" not in stored
    assert [e.endpoint for e in server.state.log] == ["esearch", "efetch"]


@pytest.fixture
def watched_dtd(tmp_path: Path):
    """A DTD file and a check that nothing has read it since: its access time, set far in
    the past, moves on the first read (skipped where the file system keeps no atime)."""
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY e "LEAKED">')

    def arm() -> None:
        os.utime(dtd, (946_684_800, 1_700_000_000))  # accessed 2000, modified 2023

    def was_read() -> bool:
        return os.stat(dtd).st_atime != 946_684_800

    arm()
    dtd.read_bytes()
    if not was_read():
        pytest.skip("this file system does not record reads (noatime)")
    arm()
    return dtd, was_read


@pytest.mark.parametrize("bad", [b"", b"&#xFFFE;"])  # the fast path, and the repairing one
def test_no_dtd_file_is_ever_read(watched_dtd, bad):
    """lxml's feed parser (XMLPullParser) reads this DTD despite load_dtd=False when an
    entity is referenced; the parser must not."""
    dtd, was_read = watched_dtd
    title = b"<ArticleTitle>T &e; " + bad + b"</ArticleTitle>"
    for doctype in (b'<!DOCTYPE PubmedArticleSet SYSTEM "' + dtd.as_uri().encode() + b'">',
                    b'<!DOCTYPE PubmedArticleSet SYSTEM "' + str(dtd).encode() + b'">',
                    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//x//EN" "' + dtd.as_uri().encode()
                    + b'" [<!ENTITY f "x">]>'):
        body = _article_set(_record(), _record(8_800_031, title),
                            prolog=b'<?xml version="1.0"?>\n' + doctype + b"\n")
        records = parse_pubmed_xml(body).records
        assert [r.title for r in records][1] == ("T  \ufffd" if bad else "T")
    assert not was_read()


# ---- characters XML 1.0 cannot carry (issue 17) --------------------------------------

@pytest.mark.parametrize("bad", [
    b"&#xFFFE;", b"&#xFFFF;", b"&#xffff;", b"&#65534;", b"&#xD800;", b"&#xDFFF;", b"&#55296;",
    b"&#57343;", b"&#x110000;", b"&#1114112;", b"&#x0000D800;", b"&#0;", b"&#x1F;",
    "\ufffe".encode(), "\uffff".encode(), b"\xed\xa0\x80", b"\x00", b"\x1b",
])
def test_characters_xml_cannot_carry_become_replacement_characters(bad):
    body = _article_set(_record(title=b"<ArticleTitle>Kra" + bad + b"tom</ArticleTitle>"),
                        _record(8_800_031))
    records = parse_pubmed_xml(body).records
    assert [r.pmid for r in records] == [8_800_030, 8_800_031]
    assert records[0].title.startswith("Kra\ufffd") and records[0].title.endswith("tom")
    assert set(records[0].title[3:-3]) == {"\ufffd"}
    assert records[1].title == "Synthetic kratom record 8800031"


@pytest.mark.parametrize("good", [b"&#x9;", b"&#xD7FF;", b"&#xE000;", b"&#xFFFD;", b"&#xFDD0;",
                                  b"&#x10000;", b"&#x10FFFF;", b"&#1114111;", b"&#x3bc;"])
def test_characters_xml_allows_are_kept(good):
    body = _article_set(_record(title=b"<ArticleTitle>Kra" + good + b"tom</ArticleTitle>"))
    title = parse_pubmed_xml(body).records[0].title
    assert "\ufffd" not in title.replace("\ufffd", "", good == b"&#xFFFD;") and len(title) == 7


def test_a_batch_with_a_noncharacter_in_one_title_is_stored_whole(cli, server, env):
    docs = [synthetic_doc(8_800_040 + i, date(2020, 1, 1)) for i in range(5)]
    server.state.add_docs(docs, term="nonchar")
    raw = [d.xml.encode() for d in docs]
    raw[1] = raw[1].replace(b"Synthetic kratom", b"Synthetic&#xFFFE; kratom&#xD800;")
    raw[3] = raw[3].replace(b"Abstract of", b"Abstract\xef\xbf\xbf of&#xFFFF;")
    server.state.bodies["nonchar"] = _article_set(*raw)
    server.state.faults = {"efetch": ["body:nonchar"]}
    result = cli("search", "nonchar", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["new"] == 5 and summary["retries"] == 0
    with sqlite3.connect(Path(env["KRATOMLIT_HOME"]) / "library.db") as db:
        title = db.execute("SELECT title FROM records WHERE pmid = 8800041").fetchone()[0]
        abstract = db.execute("SELECT abstract FROM records WHERE pmid = 8800043").fetchone()[0]
    assert title == "Synthetic\ufffd kratom\ufffd record 8800041"
    assert abstract.startswith("Abstract\ufffd of\ufffd record")


def test_a_bad_character_in_a_reference_list_does_not_sink_the_batch():
    refs = (b"<ReferenceList><Reference><Citation>Bad\x01 &#xFFFE; citation</Citation>"
            b"</Reference></ReferenceList></PubmedData>")
    body = _article_set(_record().replace(b"</PubmedData>", refs), _record(8_800_031))
    records = parse_pubmed_xml(body).records
    assert [r.title for r in records] == ["Synthetic kratom record 8800030",
                                          "Synthetic kratom record 8800031"]
    assert "<ReferenceList>" in records[0].raw_xml  # the record's XML is kept whole


# ---- damaged answers and streaming ---------------------------------------------------

def test_a_truncated_answer_yields_the_whole_records_then_fails():
    body = _article_set(_record(), _record(8_800_031), _record(8_800_032))
    cut = body[:body.rindex(b"<PubmedArticle>") + 200]
    stream = iter_pubmed_xml(cut)
    assert [next(stream).pmid, next(stream).pmid] == [8_800_030, 8_800_031]  # type: ignore
    with pytest.raises(MalformedResponse):
        next(stream)
    with pytest.raises(MalformedResponse):
        parse_pubmed_xml(cut)  # and the batch as a whole is refused, to be fetched again


def test_records_stream_in_document_order_with_their_own_raw_xml():
    chunks = [_record(8_800_050 + i) for i in range(3)]
    items = list(iter_pubmed_xml(_article_set(
        *chunks, b'<DeleteCitation><PMID Version="1">5</PMID></DeleteCitation>')))
    assert [getattr(i, "pmid", i) for i in items] == [8_800_050, 8_800_051, 8_800_052, 5]
    assert [i.raw_xml.encode() for i in items[:3]] == chunks  # type: ignore[union-attr]


def test_a_record_with_a_duplicated_pmid_keeps_its_own_raw_xml():
    first = _record(8_800_060, b"<ArticleTitle>First</ArticleTitle>")
    second = _record(8_800_060, b"<ArticleTitle>Second</ArticleTitle>")
    records = parse_pubmed_xml(_article_set(first, second)).records
    assert [r.raw_xml.encode() for r in records] == [first, second]


def test_a_record_tag_with_attributes_still_gets_its_raw_xml():
    body = _article_set(_record().replace(b"<PubmedArticle>", b'<PubmedArticle x="1">'))
    rec = parse_pubmed_xml(body).records[0]
    assert rec.raw_xml.startswith('<PubmedArticle x="1">') and "8800030" in rec.raw_xml
