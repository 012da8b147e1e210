"""The E-utilities client against the real local server (no mocks): slicing, retries, cache."""

from __future__ import annotations

import io
import sqlite3
from datetime import date

import pytest
import requests
from Bio import Entrez

from kratomlit.config import load_settings
from kratomlit.errors import NCBIError
from kratomlit.eutils import EUtilsClient
from kratomlit.session import make_session
from tests.eutils_server import synthetic_doc


@pytest.fixture
def client(server, env):
    settings = load_settings()
    with make_session(settings) as session:
        yield EUtilsClient(session, server.url, email="t@example.org", api_key="secret-key",
                           sleep=lambda s: None)


def test_one_day_over_the_window_is_split_by_pmid_range(server, client):
    server.state.window = client.window = 50  # a small window exercises the same logic
    docs = [synthetic_doc(2_000_000 + i, date(2020, 5, 5)) for i in range(120)]
    docs += [synthetic_doc(2_100_000 + i, date(2020, 5, 6)) for i in range(30)]
    server.state.add_docs(docs, term="oneday")
    found = client.search("oneday")
    assert found.count == 150 and sorted(found.ids) == sorted(d.pmid for d in docs)
    assert any("[uid]" in r.params["term"] for r in server.state.requests("esearch"))
    assert all(int(r.params.get("retstart", 0)) < 50 for r in server.state.requests("esearch"))


def test_paging_with_retstart(server, client):
    client.page_size = 7
    server.state.add_docs([synthetic_doc(3_000_000 + i, date(2021, 1, 1)) for i in range(20)],
                          term="paged")
    found = client.search("paged")
    assert len(found.ids) == 20 and len(set(found.ids)) == 20
    assert [r.params["retstart"] for r in server.state.requests("esearch")] == ["0", "7", "14"]


def test_cache_keys_ignore_and_never_store_the_api_key(server, client, env):
    server.state.add_docs([synthetic_doc(4_000_001, date(2021, 1, 1))], term="cached")
    client.search("cached")
    client.efetch([4_000_001])
    client.identity["api_key"] = "another-key"
    client.search("cached")
    client.efetch([4_000_001])
    assert client.stats.network == 3 and client.stats.from_cache == 1  # EFetch: never cached
    raw = (client.session.cache.responses.db_path if hasattr(  # type: ignore[attr-defined]
        client.session.cache.responses, "db_path") else None)
    data = b"".join(row[0] for row in sqlite3.connect(raw).execute("SELECT value FROM responses"))
    assert b"secret-key" not in data and b"another-key" not in data


def test_in_band_error_after_retries_is_ncbi_error(server, client):
    server.state.faults = {"efetch": ["error"] * 5}
    with pytest.raises(NCBIError, match="Search Backend failed"):
        client.efetch([1])
    assert len(server.state.requests("efetch")) == 3


def test_truncated_body_is_not_cached(server, client):
    server.state.add_docs([synthetic_doc(5_000_001, date(2021, 1, 1))], term="cut")
    server.state.faults = {"esearch": ["truncate"]}
    assert client.search("cut").ids == [5_000_001]
    assert client.search("cut").ids == [5_000_001]
    assert client.stats.network == 2 and client.stats.from_cache == 1


def test_efetch_answers_are_never_cached_esearch_answers_are(server, client):
    server.state.add_docs([synthetic_doc(5_100_001, date(2021, 1, 1))], term="once")
    for _ in range(2):
        assert client.search("once").ids == [5_100_001]
        assert [r.pmid for r in client.efetch([5_100_001]).records] == [5_100_001]
    assert [e.endpoint for e in server.state.log] == ["esearch", "efetch", "efetch"]
    urls = [r.url for r in client.session.cache.responses.values()]  # type: ignore[attr-defined]
    assert len(urls) == 1 and "esearch.fcgi" in urls[0]


def test_searches_do_not_ask_for_a_history_they_never_use(server, client):
    server.state.add_docs([synthetic_doc(5_200_001 + i, date(2021, 1, 1)) for i in range(9)],
                          term="nohistory")
    client.page_size = 4
    assert len(client.search("nohistory").ids) == 9
    sent = server.state.requests("esearch")
    assert len(sent) == 3 and not [r for r in sent if "usehistory" in r.params]


def test_session_is_a_requests_session(client):
    assert isinstance(client.session, requests.Session)


def test_records_outside_every_date_slice_are_found_by_pmid_range(server, client):
    server.state.window = client.window = 40
    docs = [synthetic_doc(9_000_000 + i, date(2010 + i % 10, 1, 1)) for i in range(90)]
    docs += [synthetic_doc(9_100_000 + i, date(1200, 1, 1)) for i in range(5)]  # before 1700
    server.state.add_docs(docs, term="undated")
    found = client.search("undated")
    assert found.count == 95 and sorted(found.ids) == sorted(d.pmid for d in docs)
    assert any("PMID ranges" in w for w in found.warnings)


def test_max_of_a_huge_search_needs_no_slicing(server, client):
    server.state.window = client.window = 40
    server.state.add_docs([synthetic_doc(9_200_000 + i, date(2015, 1, 1)) for i in range(90)],
                          term="huge")
    found = client.search("huge", limit=25)
    assert found.count == 90 and len(found.ids) == 25
    assert len(server.state.requests("esearch")) == 1


def test_more_than_the_window_with_max_returns_the_newest(server, client):
    server.state.window = client.window = 40
    docs = [synthetic_doc(9_300_000 + i, date(1990 + i % 30, 6, 1)) for i in range(90)]
    server.state.add_docs(docs, term="aged")
    found = client.search("aged", limit=60)
    newest = sorted(docs, key=lambda d: d.pdat, reverse=True)[:60]
    assert len(found.ids) == 60
    assert min(d.pdat for d in docs if d.pmid in set(found.ids)) >= newest[-1].pdat


def test_in_band_error_is_ncbi_error_even_with_few_tries(server, client):
    client.max_tries = 2
    with pytest.raises(NCBIError, match="query syntax error"):
        client.search("((kratom")


def test_esearch_with_an_unknown_dtd_is_parsed_offline(monkeypatch, shared):
    import Bio.Entrez.Parser as P

    from kratomlit.eutils import _read_esearch

    monkeypatch.setattr(P, "urlopen", lambda *a, **k: pytest.fail("DTD fetched from network"))
    body = (shared / "ncbi-samples" / "biopython" / "esearch2.xml").read_bytes()
    body = body.replace(b"20060628/esearch.dtd", b"20250101/esearch_2025.dtd")
    page = _read_esearch(body)
    assert page.count == 42249 and len(page.ids) == 100 and page.webenv.startswith("MCID_")


@pytest.mark.parametrize("name", ["esearch1.xml", "esearch2.xml", "esearch3.xml",
                                  "esearch8.xml"])
def test_esearch_ids_read_without_biopython_equal_its_own(shared, name):
    """Plain Id lists are read by a regex (Bio.Entrez's objects per Id were garbage that
    outlived the search); the page is what Bio.Entrez alone gives."""
    from kratomlit.eutils import _read_esearch, _split_id_list
    from kratomlit.parse import local_esearch_dtd, safe_xml

    body = (shared / "ncbi-samples" / "biopython" / name).read_bytes()
    alone = Entrez.read(io.BytesIO(safe_xml(local_esearch_dtd(body))), validate=False)
    page = _read_esearch(body)
    assert page.ids == [int(i) for i in alone.get("IdList", [])]
    assert page.count == int(alone["Count"])
    rest, ids = _split_id_list(body)
    assert ids == page.ids and b"<Id>" not in rest if ids is not None else rest == body


def test_an_odd_id_list_is_left_to_biopython():
    from kratomlit.eutils import _read_esearch, _split_id_list

    plain = (b'<?xml version="1.0" ?>\n<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch '
             b'20060628//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">'
             b"\n<eSearchResult><Count>2</Count><RetMax>2</RetMax>"
             b"<RetStart>0</RetStart><IdList>\n<Id>7</Id>\n<Id>11</Id>\n</IdList>"
             b"</eSearchResult>")
    assert _split_id_list(plain)[1] == [7, 11] and _read_esearch(plain).ids == [7, 11]
    odd = plain.replace(b"<Id>11</Id>", b"<Id> 11 </Id>")
    assert _split_id_list(odd) == (odd, None) and _read_esearch(odd).ids == [7, 11]


def test_retry_after_accepts_seconds_and_http_dates():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from kratomlit.eutils import _retry_after

    def resp(value):
        r = requests.Response()
        r.headers["Retry-After"] = value
        return r

    assert _retry_after(resp("2")) == 2.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < _retry_after(resp(later)) <= 30
    assert _retry_after(resp("soon")) == 0.0


def test_cache_hits_whether_or_not_email_and_key_are_sent(server, client):
    server.state.add_docs([synthetic_doc(4_100_001, date(2021, 1, 1))], term="identity")
    client.identity = {"tool": "kratomlit"}
    client.search("identity")
    client.efetch([4_100_001])
    client.identity = {"tool": "kratomlit", "email": "x@y.org", "api_key": "k2"}
    client.search("identity")
    client.efetch([4_100_001])
    assert client.stats.network == 3 and client.stats.from_cache == 1  # the ESearch

