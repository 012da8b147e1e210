"""A small E-utilities server on 127.0.0.1 for the tests: esearch (history, paging, dates,
the 9,999 window, ``[uid]`` and ``[mdat]`` slices), efetch by PMID (GET or POST) and
scripted faults. Formats follow NCBI's recorded answers (see ../shared/ncbi-samples).

Faults are queued per endpoint in ``state.faults`` and used one per request, in order
(``None`` = answer normally): ``429`` (NCBI's JSON body, ``Retry-After``), ``500``/``502``/
``503`` (HTML pages), ``html200``, ``empty200``, ``error`` (an in-band ERROR), ``webenv``
(NCBI's answer for an unknown or expired WebEnv), ``badkey`` (HTTP 400, API key invalid),
``reset`` (TCP RST), ``disconnect`` (closed without an answer), ``truncate``,
``malformed``, ``stall`` (answers after ``state.stall_s``, past a short client timeout),
``grow`` (adds ``state.pending`` records before answering: the Count changes between
pages), ``body:NAME`` (serves ``state.bodies[NAME]`` with HTTP 200), ``gzip:NAME`` (the
same, sent as ``Content-Encoding: gzip``: a decompression bomb), ``trickle`` (the normal
answer's headers, then one byte every ``state.trickle_s``), ``slowheaders`` (the status
line and headers too) and ``301``/``302``/``303``/
``307``/``308`` (a redirect to ``state.redirect_to``, the same endpoint; a GET's query,
key included, is echoed in ``Location`` as servers do). ``state.redirect_all`` (a status)
redirects every request: a server that moved.
"""

from __future__ import annotations

import gzip
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).parent / "fixtures"
PROLOG = ('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle,'
          ' 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n')
ESEARCH_PROLOG = ('<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC '
                  '"-//NLM//DTD esearch 20060628//EN" '
                  '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n')
CAP_ERROR = ("Search Backend failed: Exception:\n'retstart' cannot be larger than 9998. For "
             "PubMed, ESearch can only retrieve the first 9,999 records matching the query.")
HTML_500 = ("<html><head><title>500 Internal Server Error</title></head><body>"
            "<h1>WWW Error 500 Diagnostic</h1></body></html>")
HTML_PAGES = {
    "500": HTML_500,
    "502": "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
           "Gateway</h1></center></body></html>",
    "503": "<html><head><title>503 Service Unavailable</title></head><body><h1>Service "
           "Unavailable</h1><p>The server is temporarily unable to service your request."
           "</p></body></html>",
}
# NCBI's answers for an unknown or expired WebEnv / query_key (REFERENCE.md; eutils_sim)
WEBENV_ESEARCH = "<eSearchResult><ERROR>Unable to obtain query #1</ERROR></eSearchResult>"
WEBENV_EFETCH = ('<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eEfetchResult PUBLIC '
                 '"-//NLM//DTD efetch 20131226//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/'
                 '20131226/efetch.dtd">\n<eFetchResult>\n\t<ERROR>Unable to obtain query #1'
                 "</ERROR>\n</eFetchResult>\n")
_UID = re.compile(r"^\((.*)\) AND (\d+):(\d+)\[uid\]$", re.S)
_MDAT = re.compile(r"^\((.*)\) AND (\d{4})/(\d\d)/(\d\d):3000\[mdat\]$", re.S)
_CHUNK = re.compile(r"<(PubmedArticle|PubmedBookArticle)>.*?</\1>", re.S)
_PMID = re.compile(r"<PMID[^>]*>(\d+)</PMID>")
REDIRECTS = ("301", "302", "303", "307", "308")


@dataclass
class Doc:
    pmid: int
    pdat: date
    mdat: date
    xml: str


@dataclass
class Logged:
    t: float
    endpoint: str
    method: str
    params: dict[str, str]
    status: int


@dataclass
class State:
    docs: dict[int, Doc] = field(default_factory=dict)
    terms: dict[str, list[int]] = field(default_factory=dict)  # term -> matching PMIDs
    faults: dict[str, list[str]] = field(default_factory=dict)  # endpoint -> queue of faults
    log: list[Logged] = field(default_factory=list)
    window: int = 9999
    delays: dict[str, float] = field(default_factory=dict)  # endpoint -> seconds to stall
    lock: threading.Lock = field(default_factory=threading.Lock)
    page_cap: int | None = None  # at most this many Ids per ESearch page (forces paging)
    stall_s: float = 2.0  # how long a "stall" fault waits before answering
    retry_after: str = "0"  # Retry-After sent with a 429
    pending: list[tuple[str, Doc]] = field(default_factory=list)  # added by a "grow" fault
    bodies: dict[str, bytes] = field(default_factory=dict)  # served by "body:NAME" faults
    redirect_to: str = ""  # base URL (…/eutils/) that redirect faults point to
    redirect_all: str = ""  # a redirect status sent for every request ("" = none)
    trickle_s: float = 1.0  # seconds between the bytes of a "trickle" answer
    failing_pmids: set[int] = field(default_factory=set)  # an EFetch naming one: HTTP 500

    def add_docs(self, docs: Iterable[Doc], term: str | None = None) -> list[int]:
        pmids = []
        for d in docs:
            self.docs[d.pmid] = d
            pmids.append(d.pmid)
        if term is not None:
            self.terms.setdefault(term, []).extend(pmids)
        return pmids

    def grow(self) -> None:
        """Add the pending records now (as if PubMed indexed them while a client paged)."""
        for term, doc in self.pending:
            self.add_docs([doc], term=term)
        self.pending = []

    def truth(self, term: str) -> set[int]:
        """The PMIDs the server holds for ``term``: what a library must end up with."""
        return set(self.terms.get(term, []))

    def requests(self, endpoint: str | None = None) -> list[Logged]:
        return [e for e in self.log if endpoint is None or e.endpoint == endpoint]

    def max_in_window(self, seconds: float = 1.0) -> int:
        times = sorted(e.t for e in self.log)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best


def gzip_bomb(expanded_mb: int) -> bytes:
    """A gzip body that expands to ``expanded_mb`` MB of spaces: one 1 MB member, about
    1 KB compressed, repeated (gzip decoders read concatenated members as one stream)."""
    return gzip.compress(b" " * 2**20, compresslevel=9, mtime=0) * expanded_mb


def fixture_docs() -> list[Doc]:
    """The hand-written records in fixtures/efetch_kratom.xml."""
    text = (FIXTURES / "efetch_kratom.xml").read_text(encoding="utf-8")
    years = {90000001: 2024, 90000002: 2019, 90000003: 2021, 90000004: 2022}
    docs = []
    for m in _CHUNK.finditer(text):
        pmid = int(_PMID.search(m.group(0)).group(1))  # type: ignore[union-attr]
        y = years.get(pmid, 2020)
        docs.append(Doc(pmid, date(y, 6, 1), date(y, 6, 2), m.group(0)))
    return docs


def synthetic_doc(pmid: int, pdat: date, title: str = "", mdat: date | None = None) -> Doc:
    title = title or f"Synthetic kratom record {pmid}"
    xml = (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}'
        f"</PMID><DateRevised><Year>{(mdat or pdat).year}</Year><Month>{(mdat or pdat).month:02d}"
        f"</Month><Day>{(mdat or pdat).day:02d}</Day></DateRevised><Article PubModel=\"Print\">"
        "<Journal><JournalIssue CitedMedium=\"Print\"><Volume>1</Volume><PubDate>"
        f"<Year>{pdat.year}</Year><Month>{pdat.month:02d}</Month><Day>{pdat.day:02d}</Day>"
        "</PubDate></JournalIssue><Title>Synthetic Journal</Title><ISOAbbreviation>Synth J"
        f"</ISOAbbreviation></Journal><ArticleTitle>{title}</ArticleTitle><Abstract>"
        f"<AbstractText>Abstract of record {pmid} about mitragynine.</AbstractText></Abstract>"
        "<AuthorList><Author ValidYN=\"Y\"><LastName>Doe</LastName><ForeName>Jan</ForeName>"
        "<Initials>J</Initials></Author></AuthorList><Language>eng</Language>"
        "<PublicationTypeList><PublicationType UI=\"D016428\">Journal Article</PublicationType>"
        "</PublicationTypeList></Article><MedlineJournalInfo><MedlineTA>Synth J</MedlineTA>"
        "<NlmUniqueID>1</NlmUniqueID></MedlineJournalInfo></MedlineCitation><PubmedData>"
        "<PublicationStatus>ppublish</PublicationStatus><ArticleIdList>"
        f"<ArticleId IdType=\"pubmed\">{pmid}</ArticleId></ArticleIdList></PubmedData>"
        "</PubmedArticle>")
    return Doc(pmid, pdat, mdat or pdat, xml)


class Handler(BaseHTTPRequestHandler):
    server: EUtilsServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client hung up mid-answer (a deadline, a size cap, a kill)
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._handle(parse_qs(urlparse(self.path).query))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        params = parse_qs(urlparse(self.path).query)
        params.update(parse_qs(body))
        self._handle(params)

    def _handle(self, raw: dict[str, list[str]]) -> None:
        state = self.server.state
        arrived = time.time()  # NCBI counts requests as they arrive
        params = {k: v[-1] for k, v in raw.items()}
        endpoint = urlparse(self.path).path.rsplit("/", 1)[-1].replace(".fcgi", "")
        with state.lock:
            fault = state.faults.get(endpoint, [None]).pop(0) if state.faults.get(endpoint) \
                else None
        if fault is None and endpoint == "efetch" and state.failing_pmids and \
                state.failing_pmids & {int(i) for i in params.get("id", "").split(",") if i}:
            fault = "500"  # one batch fails on every try, the others do not
        entry = Logged(arrived, endpoint, self.command, params, 0)  # status once answered
        state.log.append(entry)
        redirect = fault if fault in REDIRECTS else state.redirect_all
        if redirect:
            entry.status = int(redirect)
            self._redirect(int(redirect), endpoint)
            return
        if fault == "grow":
            with state.lock:
                state.grow()
        status, ctype, body = self._answer(endpoint, params, fault)
        if state.delays.get(endpoint):  # a slow NCBI: lets tests kill a run mid-fetch
            time.sleep(state.delays[endpoint])
        if fault == "stall":
            time.sleep(state.stall_s)
        entry.status = status
        try:
            self._send(fault, status, ctype, body)
        except OSError:  # the client gave up (timeout) before a stalled answer came
            self.close_connection = True

    def _redirect(self, status: int, endpoint: str) -> None:
        query = urlparse(self.path).query
        location = f"{self.server.state.redirect_to}{endpoint}.fcgi" + (
            f"?{query}" if query else "")
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _trickle(self, data: bytes) -> None:
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        for i in range(len(data)):
            time.sleep(self.server.state.trickle_s)
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()

    def _send(self, fault: str | None, status: int, ctype: str, body: str | bytes) -> None:
        if fault in ("reset", "disconnect"):
            if fault == "reset":  # RST instead of FIN: "connection reset by peer"
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            self.close_connection = True
            return
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if status == 429:
            self.send_header("Retry-After", self.server.state.retry_after)
        if fault == "trickle":
            self._trickle(data)
            return
        if fault == "slowheaders":  # even the status line and headers come a byte at a time
            head = (f"HTTP/1.1 {status} OK\r\nContent-Type: {ctype}\r\nContent-Length: "
                    f"{len(data)}\r\n\r\n").encode()
            self._headers_buffer = []
            self.wfile.flush()
            for i in range(len(head)):
                time.sleep(self.server.state.trickle_s)
                self.wfile.write(head[i:i + 1])
                self.wfile.flush()
            self.wfile.write(data)
            return
        if fault and fault.startswith("gzip:"):
            self.send_header("Content-Encoding", "gzip")
        if fault == "truncate":
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, endpoint: str, p: dict[str, str],
                fault: str | None) -> tuple[int, str, str | bytes]:
        if fault and (scripted := self._fault_answer(endpoint, p, fault)):
            return scripted
        if endpoint == "esearch":
            return self._esearch(p)
        if endpoint == "efetch":
            status, ctype, body = self._efetch(p)
            if fault == "malformed":  # whole, but not well-formed XML
                body = body.replace("</ArticleTitle>", "</ArticleTitel>", 1)
            return status, ctype, body
        return 404, "text/plain", "unknown endpoint"

    def _fault_answer(self, endpoint: str, p: dict[str, str],
                      fault: str) -> tuple[int, str, str | bytes] | None:
        """The whole answer of a fault that replaces NCBI's, or None for the others."""
        if fault == "429":  # NCBI's body names the key (or the caller's address)
            who = p.get("api_key", "127.0.0.1")
            return 429, "application/json", ('{"error":"API rate limit exceeded","api-key":"'
                                             f'{who}","count":"4","limit":"3"}}')
        if fault == "badkey":  # NCBI's answer to an unknown key names it too
            return 400, "application/json", ('{"error":"API key invalid","api-key":"'
                                             f'{p.get("api_key", "")}","type":"invalid",\n'
                                             '"status":"unknown"}')
        if fault.startswith(("body:", "gzip:")):
            return 200, "text/xml", self.server.state.bodies[fault[5:]]
        if fault == "webenv":
            return 200, "text/xml", (ESEARCH_PROLOG + WEBENV_ESEARCH if endpoint == "esearch"
                                     else WEBENV_EFETCH)
        if fault == "error" and endpoint == "esearch":
            return 200, "text/xml", (ESEARCH_PROLOG + "<eSearchResult><ERROR>Search Backend "
                                     "failed: Exception:\nbackend timeout</ERROR></eSearchResult>")
        fixed = {**{k: (int(k), "text/html", v) for k, v in HTML_PAGES.items()},
                 "html200": (200, "text/html", HTML_500), "empty200": (200, "text/xml", ""),
                 "error": (200, "text/xml", "<eFetchResult><ERROR>Search Backend failed"
                           "</ERROR></eFetchResult>")}
        return fixed.get(fault)

    def _match(self, term: str) -> list[int] | None:
        state = self.server.state
        if m := _UID.match(term):
            base = self._match(m.group(1))
            lo, hi = int(m.group(2)), int(m.group(3))
            return None if base is None else [p for p in base if lo <= p <= hi]
        if m := _MDAT.match(term):
            base = self._match(m.group(1))
            since = date(int(m.group(2)), int(m.group(3)), int(m.group(4)))
            return None if base is None else [p for p in base if state.docs[p].mdat >= since]
        if term.startswith("(") and term.endswith(")") and ") OR (" in term:
            parts = [self._match(t) for t in term[1:-1].split(") OR (")]  # refresh's [mdat]
            return sorted({p for part in parts if part for p in part}) if any(parts) else None
        return state.terms.get(" ".join(term.split()))

    def _esearch(self, p: dict[str, str]) -> tuple[int, str, str]:
        term = p.get("term", "")
        if term.count("(") != term.count(")"):
            return 200, "text/xml", (ESEARCH_PROLOG + "<eSearchResult><ERROR>Search Backend "
                                     "failed: query syntax error</ERROR></eSearchResult>")
        ids = self._match(term)
        if ids is None:
            return 200, "text/xml", (
                ESEARCH_PROLOG + "<eSearchResult><Count>0</Count><RetMax>0</RetMax><RetStart>0"
                "</RetStart><IdList/><TranslationSet/><QueryTranslation/><ErrorList>"
                f"<PhraseNotFound>{term}</PhraseNotFound></ErrorList><WarningList>"
                "<OutputMessage>No items found.</OutputMessage></WarningList></eSearchResult>")
        docs = self.server.state.docs
        if p.get("mindate") and p.get("maxdate"):
            lo, hi = (date(*map(int, p[k].split("/"))) for k in ("mindate", "maxdate"))
            ids = [i for i in ids if lo <= docs[i].pdat <= hi]
        ids = sorted(set(ids), key=lambda i: (docs[i].pdat, i), reverse=True)  # newest first
        start, size = int(p.get("retstart", 0)), int(p.get("retmax", 20))
        size = min(size, self.server.state.page_cap or size)
        window = self.server.state.window
        if start > window - 1:
            return 200, "text/xml", (ESEARCH_PROLOG + f"<eSearchResult><ERROR>{CAP_ERROR}"
                                     "</ERROR></eSearchResult>")
        page = ids[start: min(start + size, window)]
        history = "<QueryKey>1</QueryKey><WebEnv>MCID_000000000000000000000001</WebEnv>" \
            if p.get("usehistory") == "y" else ""
        id_xml = "".join(f"<Id>{i}</Id>\n" for i in page)
        return 200, "text/xml", (
            ESEARCH_PROLOG + f"<eSearchResult><Count>{len(ids)}</Count><RetMax>{len(page)}"
            f"</RetMax><RetStart>{start}</RetStart>{history}<IdList>\n{id_xml}</IdList>"
            f"<TranslationSet/><QueryTranslation>{term}</QueryTranslation></eSearchResult>")

    def _efetch(self, p: dict[str, str]) -> tuple[int, str, str]:
        docs = self.server.state.docs
        wanted = [int(x) for x in p.get("id", "").split(",") if x.strip()]
        body = "\n".join(docs[i].xml for i in wanted if i in docs)
        return 200, "text/xml", f"{PROLOG}<PubmedArticleSet>\n{body}\n</PubmedArticleSet>\n"


class EUtilsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = State()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/entrez/eutils/"

    @contextmanager
    def running(self) -> Iterator[EUtilsServer]:
        """Serve in a background thread until the block ends, then close the socket."""
        # a short poll interval: shutdown() waits up to one interval, after every test
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.shutdown()
            self.server_close()
