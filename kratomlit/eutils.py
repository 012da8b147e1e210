"""The NCBI E-utilities client: the only module that knows URLs, parameters and NCBI's rules.

It is given its HTTP session (see ``session.py``) so tests and benchmarks point it at a
local server through the base URL, never through mocks. What it does for NCBI:

* identifies itself (``tool``, ``email``, ``api_key``) on every request, and sends that
  identity to no other host: a redirect is followed only on the same host (http may become
  https, never the reverse), by the client itself, so no redirect history is cached;
* retries 429, 5xx, dropped connections, timeouts, over-large and unreadable bodies with
  exponential backoff, full jitter and ``Retry-After``, removing any bad body from the cache;
  never retries what asking again cannot change: an unusable URL (``UsageError``), an
  answer refused unparsed (``ContentError``), a redirect to another host (``NCBIError``);
* searches without the history server, pages with ``retstart``, and splits searches of more
  than 9,999 hits (PubMed's ESearch window) by date, then by PMID range, until each fits;
* fetches records by PMID with POST in batches of ``BATCH_SIZE``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from Bio import Entrez
from Bio.Entrez import Parser as EntrezParser

from kratomlit.config import Settings
from kratomlit.errors import ContentError, NCBIError, NetworkError, UsageError
from kratomlit.parse import (
    InBandError,
    MalformedResponse,
    ParsedBatch,
    local_esearch_dtd,
    parse_pubmed_xml,
    safe_xml,
    screen_pubmed_xml,
)
from kratomlit.transport import (
    DeadlineExceeded,
    NotSent,
    ResponseTooLarge,
    checked_before_sending,
)

T = TypeVar("T")
_API_KEY_FIELD = re.compile(r'("api[-_]key"\s*:\s*)"[^"]*"')
_ESEARCH_ERROR = re.compile(rb"<ERROR>(.*?)</ERROR>", re.S)
# An ESearch IdList of plain <Id>digits</Id> elements and nothing else (what NCBI sends)
_ID_LIST = re.compile(rb"<IdList>((?:\s*<Id>\d+</Id>)*\s*)</IdList>")
_ID = re.compile(rb"<Id>(\d+)</Id>")
log = logging.getLogger(__name__)

# NCBI asks for "several hundred" records per EFetch. 500 keeps a POST answer near 5 MB,
# a lost batch cheap to redo, and the request count at ceil(new/500).
BATCH_SIZE = 500
ESEARCH_WINDOW = 9999  # PubMed: ESearch can only reach the first 9,999 hits of a search
EARLIEST = date(1700, 1, 1)
LATEST = date(3000, 12, 31)
MAX_PMID = 99_999_999
LISTING_TRIES = 3  # a Count that moves while we page: list again from the start, this often
IN_BAND_TRIES = 3  # an in-band ERROR is usually permanent (bad query); retry it a little
CONNECT_TRIES = 3  # an unreachable host will not come back within a minute
BACKOFF_BASE_S = 1.0
LONG_TERM = 1000  # NCBI: send a long term by POST (refresh ORs every saved search)
BACKOFF_CAP_S = 60.0
MAX_REDIRECTS = 5
# requests' errors that no retry can fix: the URL itself is unusable
_BAD_URL = (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema, requests.exceptions.URLRequired)


@dataclass
class RequestStats:
    """What the client did on the wire; cache hits are not network requests."""

    network: int = 0
    from_cache: int = 0
    retries: int = 0
    esearch: int = 0
    efetch: int = 0


@dataclass(frozen=True)
class SearchPage:
    count: int
    ids: list[int]
    webenv: str = ""
    query_key: str = ""
    warnings: tuple[str, ...] = ()


@dataclass
class SearchResult:
    """All PMIDs a search found, however many ESearch calls that took."""

    term: str
    count: int
    ids: list[int]
    slices: int = 1
    warnings: list[str] = field(default_factory=list)


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` comes from the server when it said so."""

    def __init__(self, message: str, retry_after: float = 0.0, limit: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


class RetryTurns:
    """Turns among requests sent together from several threads (a search's EFetch batches
    in flight). While one is failing, it alone is retried and no other is sent, so a
    persistent fault gets ``max_tries`` requests as if requests went one at a time (plus
    any other request already on the wire when the fault began); once it gives up,
    nothing more is sent and every request still waiting raises its error.

    Requests given a ticket (``ticket``, then ``in_order`` in the sending thread) also
    take the rate limiter's slots in ticket order: each waits to enter the limiter until
    the one before it has its slot. Threads left to the limiter alone woke in any order,
    so a later batch often went out first and the caller, storing in order, sat idle
    waiting for the earlier one (2 of 10 requests in a cold 5,000-record search)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._failing: int | None = None  # the thread whose request is being retried
        self.error: BaseException | None = None
        self._issued = 0  # tickets handed out
        self._serving = 0  # the ticket whose request may enter the limiter now
        self._tickets: dict[int, int] = {}  # thread -> its ticket, until its slot is taken

    def _other_failing(self, ident: int) -> bool:
        return self._failing not in (None, ident)

    def _my_turn(self) -> bool:
        ident = threading.get_ident()
        if self._other_failing(ident):
            return False
        ticket = self._tickets.get(ident)
        return ticket is None or ticket <= self._serving

    def ticket(self) -> int:
        """A place in the order slots are taken: given out as requests are queued."""
        with self._cond:
            self._issued += 1
            return self._issued - 1

    @contextlib.contextmanager
    def in_order(self, ticket: int) -> Iterator[None]:
        """Send this thread's request in ``ticket``'s turn; the turn passes on when its slot
        is taken (``check``) or, failing that, when the request ends (sent or not)."""
        ident = threading.get_ident()
        with self._cond:
            self._tickets[ident] = ticket
        try:
            yield
        finally:
            with self._cond:
                self._served(ident)

    def _served(self, ident: int) -> None:
        """The ticket of ``ident`` has had its turn (called holding the condition)."""
        ticket = self._tickets.pop(ident, None)
        if ticket is not None:
            self._serving = max(self._serving, ticket + 1)
            self._cond.notify_all()

    def wait(self) -> None:
        """Before a try: wait while another request is failing, or is ahead of this one for
        a slot; raise its error if it gave up."""
        with self._cond:
            self._cond.wait_for(lambda: self.error is not None or self._my_turn())
            if self.error is not None:
                raise self.error

    def check(self) -> None:
        """Right before sending (after the limiter's wait): not now if another request
        began failing meanwhile (the caller waits its turn, then takes a fresh slot);
        otherwise this request has its slot and the next in order may go for one."""
        ident = threading.get_ident()
        with self._cond:
            if self.error is not None or self._other_failing(ident):
                raise NotSent
            self._served(ident)

    def failed(self) -> None:
        """This thread's request failed and will be retried: the others hold."""
        with self._cond:
            if self._failing is None:
                self._failing = threading.get_ident()

    def succeeded(self) -> None:
        with self._cond:
            if self._failing == threading.get_ident():
                self._failing = None
                self._cond.notify_all()

    def gave_up(self, error: BaseException) -> None:
        with self._cond:
            if self.error is None:
                self.error, self._failing = error, None
            self._cond.notify_all()


class EUtilsClient:
    """Talks to E-utilities through the session it is given."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        *,
        tool: str = "kratomlit",
        email: str | None = None,
        api_key: str | None = None,
        max_tries: int = 10,
        timeout: float = 60.0,
        batch_size: int = BATCH_SIZE,
        page_size: int = ESEARCH_WINDOW,
        window: int = ESEARCH_WINDOW,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.session = session
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.identity = {"tool": tool, **({"email": email} if email else {}),
                         **({"api_key": api_key} if api_key else {})}
        self.max_tries = max(1, max_tries)
        self.timeout = timeout
        self.batch_size = batch_size
        self.window = window
        self.page_size = min(page_size, window)
        self.sleep = sleep
        self.stats = RequestStats()
        self._tally_lock = threading.Lock()  # a fetching thread and the caller's
        self._refresh = False  # set only while search(refresh=True) runs

    @classmethod
    def from_settings(cls, session: requests.Session, settings: Settings) -> EUtilsClient:
        """The client a command uses: URL, identity and patience from the settings."""
        return cls(session, settings.eutils_url, tool=settings.tool, email=settings.email,
                   api_key=settings.api_key, max_tries=settings.max_tries,
                   timeout=settings.timeout)

    # ---- searching -------------------------------------------------------------------

    def esearch(self, term: str, *, mindate: date | None = None, maxdate: date | None = None,
                retstart: int = 0, retmax: int | None = None,
                refresh: bool = False) -> SearchPage:
        """One ESearch call; dates filter on publication date.

        No ``usehistory``: pages are asked for by ``retstart`` and records fetched by PMID,
        so a WebEnv would never be used (and an expired one could not strand a run).
        """
        params: dict[str, Any] = {"db": "pubmed", "term": term, "retstart": retstart,
                                  "retmax": self.page_size if retmax is None else retmax}
        if mindate or maxdate:
            params.update(datetype="pdat", mindate=_fmt(mindate or EARLIEST),
                          maxdate=_fmt(maxdate or LATEST))
        self.stats.esearch += 1
        method = "POST" if len(term) > LONG_TERM else "GET"
        try:
            return self._call("esearch.fcgi", params, method, _read_esearch, IN_BAND_TRIES,
                              refresh=self._refresh or refresh)
        except ContentError as exc:
            raise ContentError(
                f"NCBI's ESearch answer for {term[:120]!r} was refused: "
                f"{str(exc).rstrip('.')}. This is the content of the answer, not a network "
                "fault, so it was not retried.") from None

    def search(self, term: str, mindate: date | None = None, maxdate: date | None = None,
               limit: int | None = None, refresh: bool = False) -> SearchResult:
        """Every PMID for ``term``; slices by date, then PMID range, past 9,999 hits.

        ``refresh`` bypasses the HTTP cache (for "what changed since" searches).
        """
        self._refresh = refresh
        try:
            return self._search(term, mindate, maxdate, limit)
        finally:
            self._refresh = False

    def _search(self, term: str, mindate: date | None, maxdate: date | None,
                limit: int | None) -> SearchResult:
        first = self.esearch(term, mindate=mindate, maxdate=maxdate)
        result = SearchResult(term, first.count, [], 0, list(first.warnings))
        wanted = first.count if limit is None else min(limit, first.count)
        if wanted <= self.window:  # also --max N of a huge search: no slicing needed
            listed = self._pages(term, mindate, maxdate, first, limit)
            result.count, result.ids, result.slices = listed.count, listed.ids, 1
            return result
        seen: set[int] = set()
        lo, hi = mindate or EARLIEST, maxdate or LATEST
        stop = wanted if limit is not None else MAX_PMID  # without --max: every slice
        self._collect(self._date_slices(term, lo, hi, result), seen, result, stop)
        if len(result.ids) < wanted:
            # records whose publication date falls in no slice: PMID ranges cover everything
            result.warnings.append(f"date slices found {len(result.ids)} of {first.count}; "
                                   "completed by PMID ranges")
            self._collect(self._uid_slices(term, mindate, maxdate, 1, MAX_PMID, result), seen,
                          result, stop)
        if limit is None and len(result.ids) != first.count:
            # records indexed or removed while slicing: PubMed's Count now, never a cached one
            result.count = self.esearch(term, mindate=mindate, maxdate=maxdate, retmax=0,
                                        refresh=True).count
        result.ids = result.ids[:stop]
        return result

    @staticmethod
    def _collect(slices: Iterable[list[int]], seen: set[int], result: SearchResult,
                 wanted: int) -> None:
        for ids in slices:
            new = [i for i in ids if i not in seen]
            seen.update(new)
            result.ids.extend(new)
            if len(result.ids) >= wanted:
                return

    def _pages(self, term: str, mindate: date | None, maxdate: date | None,
               first: SearchPage, limit: int | None = None) -> SearchPage:
        """Every Id of a search that fits the window, page by page with ``retstart``.

        Records indexed or removed while we page shift every later page, so an Id would be
        listed twice and another skipped: when a page's Count differs from the first's, the
        listing starts again, past the HTTP cache. Still moving after ``LISTING_TRIES``
        listings, the Ids seen are returned (once each) and the caller's Count check marks
        the run incomplete.
        """
        ids: list[int] = []
        for listing in range(LISTING_TRIES):
            if listing:
                first = self.esearch(term, mindate=mindate, maxdate=maxdate, refresh=True)
            ids, moved = self._page_through(term, mindate, maxdate, first, limit, listing > 0)
            if not moved:
                break
            log.warning("PubMed's Count for %r changed while paging; listing it again",
                        term[:120])
        return SearchPage(count=first.count, ids=ids)

    def _page_through(self, term: str, mindate: date | None, maxdate: date | None,
                      first: SearchPage, limit: int | None,
                      refresh: bool) -> tuple[list[int], bool]:
        """One listing: (Ids once each, whether the Count moved meanwhile)."""
        wanted = min(first.count, self.window, first.count if limit is None else limit)
        ids = list(dict.fromkeys(first.ids))
        seen, position = set(ids), len(first.ids)
        while len(ids) < wanted:
            page = self.esearch(term, mindate=mindate, maxdate=maxdate, retstart=position,
                                refresh=refresh)
            if page.count != first.count:
                return ids, True
            if not page.ids:
                break
            position += len(page.ids)
            ids += [i for i in page.ids if i not in seen]
            seen.update(page.ids)
        return ids[:wanted], False

    def _date_slices(self, term: str, lo: date, hi: date,
                     result: SearchResult) -> Iterable[list[int]]:
        """Bisect [lo, hi], which holds more hits than the window, until each slice fits;
        a single day still too big is split by PMID range."""
        if lo >= hi:
            yield from self._uid_slices(term, lo, lo, 1, MAX_PMID, result)
            return
        mid = _split_date(lo, hi)
        for a, b in ((mid + timedelta(days=1), hi), (lo, mid)):  # newest first, as PubMed
            probe = self.esearch(term, mindate=a, maxdate=b)
            if probe.count <= self.window:
                result.slices += 1
                yield self._pages(term, a, b, probe).ids
            elif probe.count:
                yield from self._date_slices(term, a, b, result)

    def _uid_slices(self, term: str, first_day: date | None, last_day: date | None, lo: int,
                    hi: int, result: SearchResult) -> Iterable[list[int]]:
        """Split by PMID range, cutting at the median PMID of the page seen."""
        sliced = f"({term}) AND {lo}:{hi}[uid]"
        page = self.esearch(sliced, mindate=first_day, maxdate=last_day)
        if page.count <= self.window or lo >= hi:
            result.slices += 1
            yield self._pages(sliced, first_day, last_day, page).ids
            return
        seen = sorted(i for i in page.ids if lo <= i <= hi)
        mid = seen[len(seen) // 2] if seen else (lo + hi) // 2
        mid = min(max(mid, lo), hi - 1)
        yield from self._uid_slices(term, first_day, last_day, mid + 1, hi, result)
        yield from self._uid_slices(term, first_day, last_day, lo, mid, result)

    # ---- fetching --------------------------------------------------------------------

    def efetch(self, pmids: Sequence[int], *, refresh: bool = False) -> ParsedBatch:
        """Fetch and parse one batch of records by PMID (POST, so long lists are fine).

        EFetch answers are never cached (the library keeps each record's XML), so every
        call is a network request; ``refresh`` is kept for callers and changes nothing.
        An answer refused unparsed is a ``ContentError`` naming the PMIDs, at once.
        """
        return self._efetch(pmids, parse_pubmed_xml, refresh)

    def efetch_unparsed(self, pmids: Sequence[int], *, refresh: bool = False,
                        turns: RetryTurns | None = None) -> bytes:
        """One batch's EFetch answer, unparsed (``parse_pubmed_xml`` reads it, possibly in
        another process), through the same limiter, retries and statistics as ``efetch``.
        The body is screened first (``screen_pubmed_xml``): a page, an error document or a
        truncated body is retried here, as ``efetch`` would. Safe to call from several
        threads at once: the shared limiter spaces the requests, and ``turns`` (shared by
        those threads) lets only a failing request be retried while the others hold."""
        return self._efetch(pmids, screen_pubmed_xml, refresh, turns)

    def refetch(self, pmids: Sequence[int], why: str = "unreadable") -> ParsedBatch:
        """Fetch and parse a batch again, in this process: for an answer that passed the
        screen but that the parser then refused (rare), or whose parse was lost with the
        worker process (``why`` says which in the log). It is retried as ``efetch``
        retries any unreadable answer, and counts as a retry: a request sent again."""
        log.warning("efetch answer for %s %s; fetching it again", _pmid_list(pmids), why)
        self._tally("retries")
        return self.efetch(pmids, refresh=True)

    def _efetch(self, pmids: Sequence[int], read: Callable[[bytes], T], refresh: bool,
                turns: RetryTurns | None = None) -> T:
        params = {"db": "pubmed", "retmode": "xml", "id": ",".join(str(p) for p in pmids)}
        self._tally("efetch")
        try:
            return self._call("efetch.fcgi", params, "POST", read, IN_BAND_TRIES,
                              refresh=refresh, turns=turns)
        except ContentError as exc:
            log.error("efetch answer refused (%s) for PMIDs %s", exc,
                      ",".join(str(p) for p in pmids))
            raise ContentError(
                f"NCBI's answer for {_pmid_list(pmids)} was refused: {str(exc).rstrip('.')}. "
                "This is the content of the answer, not a network fault, so it was not "
                "retried; nothing of this batch was stored. Report it if it persists.") from None

    def _tally(self, what: str) -> None:
        """Count one more of ``what`` under a lock: EFetch also runs in a thread."""
        with self._tally_lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def batches(self, pmids: Sequence[int]) -> Iterable[list[int]]:
        for start in range(0, len(pmids), self.batch_size):
            yield list(pmids[start:start + self.batch_size])

    # ---- the wire --------------------------------------------------------------------

    def _call(self, endpoint: str, params: dict[str, Any], method: str,
              read: Callable[[bytes], T], in_band_tries: int, refresh: bool = False,
              turns: RetryTurns | None = None) -> T:
        """``turns`` is shared by requests sent together; alone, a request has its own."""
        turns = turns or RetryTurns()
        try:
            result = self._tries(endpoint, params, method, read, in_band_tries, refresh, turns)
        except BaseException as exc:
            turns.gave_up(exc)
            raise
        turns.succeeded()
        return result

    def _tries(self, endpoint: str, params: dict[str, Any], method: str,
               read: Callable[[bytes], T], in_band_tries: int, refresh: bool,
               turns: RetryTurns) -> T:
        url = self.base_url + endpoint
        payload = {**params, **self.identity}
        last, in_band, last_in_band = "", 0, False
        for attempt in range(1, self.max_tries + 1):
            try:
                return self._attempt_in_turn(url, method, payload, read,
                                             refresh or attempt > 1, turns)
            except InBandError as exc:
                in_band += 1
                last, last_in_band = f"NCBI answered with an error: {exc}", True
                limit = min(self.max_tries, attempt - in_band + in_band_tries)
                wait = self._backoff(attempt)
            except _Transient as exc:
                last, last_in_band = str(exc), False
                limit = min(self.max_tries, exc.limit or self.max_tries)
                wait = max(self._backoff(attempt), exc.retry_after)
            log.warning("%s failed (try %d of %d): %s", endpoint, attempt, limit,
                        self.redact(last))
            turns.failed()
            if attempt >= limit:  # limit <= max_tries, so every later try is a retry
                break
            self._tally("retries")
            log.info("retrying %s in %.1f s", endpoint, wait)
            self.sleep(wait)
        if last_in_band:
            raise NCBIError(f"{last.rstrip('.')} (request: {endpoint}).")
        raise NetworkError(
            f"Could not get an answer from {url} after {attempt} tries: {last}. Check your "
            "network connection and KRATOMLIT_EUTILS_URL, then run the command again; "
            "everything fetched so far is kept.")

    def _attempt_in_turn(self, url: str, method: str, payload: dict[str, Any],
                         read: Callable[[bytes], T], refresh: bool,
                         turns: RetryTurns) -> T:
        """One try, sent only while no other request of ``turns`` is failing (a try
        refused at the wire waits its turn and goes through the limiter again)."""
        while True:
            turns.wait()
            try:
                with checked_before_sending(turns.check):
                    return self._attempt(url, method, payload, read, refresh)
            except NotSent:
                continue

    def _attempt(self, url: str, method: str, payload: dict[str, Any],
                 read: Callable[[bytes], T], refresh: bool) -> T:
        what = _loggable(url, payload)
        try:
            resp = self._send(url, method, payload, refresh)
        except _BAD_URL as exc:
            raise UsageError(f"The E-utilities URL {url} cannot be used: "
                             f"{self.redact(_describe(exc))}. Check KRATOMLIT_EUTILS_URL "
                             "(or --eutils-url, or eutils_url in the config file).") from None
        except requests.ConnectionError as exc:
            self._tally("network")
            reason = self.redact(_describe(exc))
            log.warning("%s %s failed: %s", method, what, reason)
            limit = CONNECT_TRIES if _cannot_connect(exc) else None
            raise _Transient(reason, limit=limit) from None
        except requests.RequestException as exc:  # timeouts, truncated or over-large bodies
            self._tally("network")
            reason = self.redact(_describe(exc))
            log.warning("%s %s failed: %s", method, what, reason)
            raise _Transient(reason) from None
        cached = bool(getattr(resp, "from_cache", False))
        log.info("%s %s -> HTTP %s%s", method, what, resp.status_code, " (cache)" * cached)
        self._check_status(resp)
        try:
            return read(resp.content)
        except ContentError:
            self._forget(resp)
            raise
        except (MalformedResponse, InBandError) as exc:
            self._forget(resp)
            if isinstance(exc, InBandError):
                raise
            raise _Transient(f"unreadable answer ({exc})") from None

    def _send(self, url: str, method: str, payload: dict[str, Any],
              refresh: bool) -> requests.Response:
        """One request, following redirects on the same host only.

        requests would follow any redirect itself, re-sending the key (a 307 re-POSTs the
        whole body) to whatever host the answer names, and requests-cache would store the
        redirect history, requests and key included. Here each hop is a separate request
        (rate-limited, never cached: only 200s are) and the payload is sent afresh, to the
        same host only. A POST stays a POST (except after a 303): E-utilities requests only
        read, and turning a POST into a GET would drop the PMIDs.
        """
        # a plain requests.Session works too; only a cached one knows force_refresh
        extra: dict[str, Any] = {"force_refresh": refresh} if hasattr(self.session, "cache") \
            else {}
        for _ in range(MAX_REDIRECTS + 1):
            if method == "POST":
                resp = self.session.post(url, data=payload, timeout=self.timeout,
                                         allow_redirects=False, **extra)
            else:
                resp = self.session.get(url, params=payload, timeout=self.timeout,
                                        allow_redirects=False, **extra)
            self._count(resp)
            if not resp.is_redirect:
                return resp
            url, method = self._follow(url, method, resp)
        raise NCBIError(f"{_origin(url)} redirected more than {MAX_REDIRECTS} times; check "
                        "KRATOMLIT_EUTILS_URL.")

    def _count(self, resp: requests.Response) -> None:
        self._tally("from_cache" if getattr(resp, "from_cache", False) else "network")

    def _follow(self, url: str, method: str, resp: requests.Response) -> tuple[str, str]:
        """Where a redirect leads, if kratomlit may follow it; the query of ``Location``
        is dropped (it may echo the key) and the payload sent again."""
        target = urljoin(url, resp.headers.get("Location", ""))
        here, there = urlsplit(url), urlsplit(target)
        downgrade = here.scheme == "https" and there.scheme != "https"
        if there.scheme not in ("http", "https") or downgrade \
                or (there.hostname or "") != (here.hostname or ""):
            raise NCBIError(
                f"{_origin(url)} redirected the request to {self.redact(_origin(target))}, "
                "which kratomlit does not follow: your API key and email go only to the "
                "E-utilities host you configured. If E-utilities really moved, set "
                "KRATOMLIT_EUTILS_URL to the new address.")
        target = urlunsplit(there._replace(query="", fragment=""))
        log.info("HTTP %s: following to %s", resp.status_code, _origin(target))
        endpoint = url[len(self.base_url):] if url.startswith(self.base_url) else ""
        if resp.status_code in (301, 308) and endpoint and target.endswith("/" + endpoint):
            self.base_url = target[:-len(endpoint)]  # moved for good: go there directly
        return target, "GET" if resp.status_code == 303 else method

    def _check_status(self, resp: requests.Response) -> None:
        if resp.status_code == 200:
            return
        self._forget(resp)
        hint = self.redact(_body_hint(resp))
        if resp.status_code == 429 or resp.status_code >= 500:
            hint = hint.removeprefix(str(resp.status_code)).strip()  # "503 Service ..."
            raise _Transient(f"HTTP {resp.status_code} {hint}".strip(),
                             retry_after=_retry_after(resp))
        raise NCBIError(f"NCBI refused the request with HTTP {resp.status_code}: {hint}. "
                        f"{_advice(resp)}")

    def redact(self, text: str) -> str:
        """Remove the API key and email from text shown or logged (NCBI's 429 body and
        exception messages may quote them)."""
        for secret in (self.identity.get("api_key"), self.identity.get("email")):
            if secret:
                text = text.replace(secret, "***")
        return _API_KEY_FIELD.sub(r'\1"***"', text)

    def _forget(self, resp: requests.Response) -> None:
        cache = getattr(self.session, "cache", None)
        if cache is not None and resp.request is not None:
            cache.delete(requests=[resp.request])

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: 1 s, 2 s, 4 s ... each scaled by 0.5-1.0."""
        base = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)


def _read_esearch(body: bytes) -> SearchPage:
    head = body[:512].lstrip().lower()
    if head.startswith(b"<!doctype html") or head.startswith(b"<html") or b"<" not in head:
        raise MalformedResponse("an HTML or non-XML page instead of an ESearch result")
    error = _ESEARCH_ERROR.search(body)
    if error and b"<Count>" not in body:  # NCBI's error, even without a prolog Biopython needs
        raise InBandError(" ".join(error.group(1).decode("utf-8", "replace").split()))
    body, ids = _split_id_list(body)
    try:
        data = Entrez.read(io.BytesIO(safe_xml(local_esearch_dtd(body))), validate=False)
    except RuntimeError as exc:  # Biopython raises the text of an <ERROR> element ...
        if b"<ERROR>" in body:
            raise InBandError(" ".join(str(exc).split())) from None
        raise MalformedResponse(f"unreadable ESearch XML ({exc})") from exc  # ... or others
    except (EntrezParser.CorruptedXMLError, EntrezParser.NotXMLError, ValueError) as exc:
        raise MalformedResponse(f"unreadable ESearch XML ({exc})") from exc
    if "ERROR" in data and "Count" not in data:
        raise InBandError(" ".join(str(data["ERROR"]).split()))
    if "Count" not in data:
        raise MalformedResponse("ESearch answer without a Count")
    if ids is None:
        ids = [int(i) for i in data.get("IdList", [])]
    return SearchPage(count=int(data["Count"]), ids=ids,
                      webenv=str(data.get("WebEnv", "")),
                      query_key=str(data.get("QueryKey", "")), warnings=_warnings(data))


def _split_id_list(body: bytes) -> tuple[bytes, list[int] | None]:
    """The answer without its IdList's elements, and the PMIDs they held (None: no plain
    IdList, Biopython reads it all). Biopython still reads everything else (Count, WebEnv,
    errors, warnings), but its object per PMID cost 68 ms of a 5,000-PMID answer before the
    first EFetch could go out (this regex: ~3 ms), and those objects were cyclic garbage
    that outlived the search (16 MB at a 12,000-hit search's peak)."""
    found = _ID_LIST.search(body)
    if found is None:
        return body, None
    ids = [int(i) for i in _ID.findall(found.group(1))]
    return body[:found.start(1)] + body[found.end(1):], ids


def _warnings(data: Any) -> tuple[str, ...]:
    out = []
    errors, warnings = data.get("ErrorList", {}) or {}, data.get("WarningList", {}) or {}
    for key, label in (("PhraseNotFound", "phrase not found"),
                       ("FieldNotFound", "field not found")):
        out += [f"{label}: {x}" for x in errors.get(key, [])]
    for key, label in (("PhraseIgnored", "phrase ignored"),
                       ("QuotedPhraseNotFound", "quoted phrase not found"),
                       ("OutputMessage", "PubMed says")):
        out += [f"{label}: {x}" for x in warnings.get(key, [])]
    return tuple(out)


def _loggable(url: str, payload: dict[str, Any]) -> str:
    """Endpoint and query for the log, never the api_key or email."""
    endpoint = url.rsplit("/", 1)[-1]
    if "id" in payload:
        return f"{endpoint} ({len(str(payload['id']).split(','))} PMIDs)"
    dates = f" {payload['mindate']}-{payload['maxdate']}" if "mindate" in payload else ""
    return f"{endpoint} term={str(payload.get('term', ''))[:120]!r}{dates} " \
        f"retstart={payload.get('retstart', 0)}"


def _fmt(d: date) -> str:
    return d.strftime("%Y/%m/%d")


def _split_date(lo: date, hi: date) -> date:
    """A split point inside [lo, hi), biased to where PubMed's records actually are."""
    eff_lo, eff_hi = max(lo, date(1945, 1, 1)), min(hi, date.today() + timedelta(days=366))
    if eff_lo >= eff_hi:
        eff_lo, eff_hi = lo, hi
    mid = eff_lo + (eff_hi - eff_lo) / 2
    return min(max(mid, lo), hi - timedelta(days=1))


def _pmid_list(pmids: Sequence[int], shown: int = 10) -> str:
    head = ", ".join(str(p) for p in pmids[:shown])
    more = f" and {len(pmids) - shown} more" if len(pmids) > shown else ""
    return f"PMID{'s' if len(pmids) > 1 else ''} {head}{more}"


def _origin(url: str) -> str:
    """scheme://host[:port] of ``url``: what a message may show of it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _cannot_connect(exc: BaseException) -> bool:
    text = repr(exc)
    return any(s in text for s in ("NewConnectionError", "NameResolutionError",
                                   "Connection refused", "Failed to resolve"))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, ResponseTooLarge | DeadlineExceeded):
        return text
    for marker in ("Connection refused", "Connection reset", "Failed to resolve",
                   "Read timed out", "IncompleteRead", "Remote end closed"):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(exc).__name__ + (f": {text[:200]}" if text else "")


def _retry_after(resp: requests.Response) -> float:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date), capped."""
    value = resp.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return 0.0
    return min(BACKOFF_CAP_S, max(0.0, seconds))


def _body_hint(resp: requests.Response) -> str:
    text = resp.text[:300] if resp.content else ""
    if "<title>" in text.lower():
        start = text.lower().index("<title>") + 7
        end = text.lower().find("</title>", start)
        return text[start:end].strip()
    return " ".join(text.split())[:200] or resp.reason or ""


def _advice(resp: requests.Response) -> str:
    if "API key invalid" in resp.text:
        return "Check NCBI_API_KEY (or unset it to run at 3 requests/s)."
    return "Check the search term and the E-utilities URL."
