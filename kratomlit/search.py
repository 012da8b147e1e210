"""Run a search end to end: ESearch every PMID, EFetch only what the library lacks or
what PubMed revised since the last run, store each batch in one transaction.

Revisions: when the same search ran before, one extra ESearch restricted to
``[mdat]`` since that run (less a day of slack) lists held records PubMed changed; they
are fetched again, bypassing the HTTP cache, and count as updated only if their XML
changed.

Pipeline (issue 15): while batch k is stored and labelled, the next ones download (three
requests in flight, paced by the shared limiter; up to four batches or 28 MB of answers
ahead) and parse, from the third batch in a worker process (``prefetched``), so the
network, the parser and SQLite overlap while memory stays flat in the number of records.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import gc
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from kratomlit.config import Settings
from kratomlit.errors import IncompleteError
from kratomlit.eutils import EUtilsClient, RetryTurns
from kratomlit.models import ParsedBatch, Record
from kratomlit.parse import InBandError, MalformedResponse, parse_pubmed_xml
from kratomlit.queries import SavedQuery
from kratomlit.store import Library

if TYPE_CHECKING:
    from kratomlit.classify import Classifier
    from kratomlit.extract import Extractor

Progress = Callable[[int, int], None]  # (records done, records to fetch)


@dataclass
class SearchSummary:
    """What a search run did; the CLI prints it as a table or JSON."""

    term: str
    name: str | None
    mindate: str
    maxdate: str
    count: int = 0  # PubMed's Count
    listed: int = 0  # PMIDs retrieved by ESearch (equal to count unless --max)
    new: int = 0
    updated: int = 0
    already_held: int = 0
    not_returned: int = 0  # PMIDs ESearch listed but EFetch did not return
    slices: int = 1
    network_requests: int = 0
    from_cache: int = 0
    retries: int = 0
    complete: bool = True  # False when ESearch listed fewer PMIDs than its Count
    search_id: int = 0  # the library's id for this search (export --search ID)
    labelled: int = 0  # records given topic labels after the search
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("name", "mindate", "maxdate"):
            data[key] = data[key] or None  # one JSON spelling for "not given"
        return data

    def raise_for_status(self) -> None:
        """Raise ``IncompleteError`` (exit 8) when PubMed listed only part of the hits."""
        if not self.complete:
            raise IncompleteError(f"PubMed listed {self.listed} of {self.count} hits; what "
                                  "it listed is stored. Run the search again to complete it.")


def search_pubmed(settings: Settings, query: SavedQuery, *, limit: int | None = None,
                  progress: Progress | None = None, classify: bool = True) -> SearchSummary:
    """Run ``query`` against PubMed into the library at ``settings``, then give topic
    labels to what is unlabelled (``classify=False`` leaves that to ``classify``)."""
    from kratomlit.session import make_session

    with make_session(settings) as session, Library(settings.library_path) as library:
        client = EUtilsClient.from_settings(session, settings)
        labeller = BatchLabeller(library) if classify else None
        summary = run_search(client, library, query.term, name=query.name or None,
                             mindate=query.mindate, maxdate=query.maxdate, limit=limit,
                             progress=progress,
                             on_stored=labeller.after_batch if labeller else None)
        if labeller:
            summary.labelled = labeller.finish(summary.warnings)
    return summary


class BatchLabeller:
    """Labels each batch as soon as it is stored, while the next ones download and parse,
    instead of every record after the last batch: labelling leaves the critical path.
    A part that cannot load, or any failure, leaves the rest to ``finish`` (the labelling
    after the search, as before), which reports problems."""

    def __init__(self, library: Library):
        self.library, self.labelled, self.active = library, 0, True
        self.classifier: Classifier | None = None  # loaded with the first batch, while
        self.extractor: Extractor | None = None  # later ones download: not at start-up

    def after_batch(self, records: list[Record]) -> None:
        """Label the records just written (inserted or changed)."""
        from kratomlit.topics import label_records, load_classifier, load_extractor

        if self.active and self.classifier is None:
            problems: list[str] = []  # finish() loads them again and reports why
            self.classifier, self.extractor = load_classifier(problems), \
                load_extractor(problems)
            self.active = not problems
        if not self.active or self.classifier is None:
            return
        try:
            self.labelled += label_records(self.library, records, self.classifier,
                                           self.extractor)
        except Exception:  # noqa: BLE001 - finish() labels them again and reports the error
            self.active = False

    def finish(self, problems: list[str]) -> int:
        """Label what is left (all of it when per-batch labelling could not run); the
        number of records labelled in all."""
        from kratomlit.topics import label_library

        return self.labelled + label_library(self.library, problems,
                                             classifier=self.classifier).labelled


def run_search(client: EUtilsClient, library: Library, term: str, *,
               name: str | None = None, mindate: date | None = None,
               maxdate: date | None = None, limit: int | None = None,
               progress: Progress | None = None, refresh_id: int | None = None,
               check_revisions: bool = True, fresh: bool = False,
               on_stored: Callable[[list[Record]], None] | None = None) -> SearchSummary:
    """Search PubMed for ``term`` and bring the library up to date with its hits.

    ``fresh`` skips the HTTP cache for the ESearch (a scheduled refresh must see today's
    hits); ``check_revisions=False`` leaves the ``[mdat]`` check to the caller (``refresh``
    checks all its searches in one ESearch). ``on_stored`` runs after each stored batch
    with the records it wrote (labelling, while the next batches download).
    """
    lo, hi = (d.isoformat() if d else "" for d in (mindate, maxdate))
    summary = SearchSummary(term, name, lo, hi)
    search = library.runs.get_search(term, lo, hi, name)
    summary.search_id = search.id
    previous = library.runs.last_complete_run(search.id) if check_revisions else None
    with _one_at_a_time(library, search.id), _gc_frozen():
        library.runs.close_dead_runs(search.id)  # we hold its lock: any still running died
        run_id = library.runs.start_run(search.id, refresh_id)
        try:
            _run(client, library, search.id, previous, summary, mindate, maxdate, limit,
                 progress, fresh, on_stored or (lambda records: None))
        except BaseException as exc:
            _copy_stats(client, summary)
            error = "interrupted" if isinstance(exc, KeyboardInterrupt) else \
                str(exc)[:1000] or type(exc).__name__
            with contextlib.suppress(sqlite3.Error):  # keep the original error
                library.runs.finish_run(run_id, "failed", requests=summary.network_requests,
                                        error=error)
            raise
    _copy_stats(client, summary)
    status = "complete" if summary.complete else "incomplete"  # not a base for [mdat]
    library.runs.finish_run(run_id, status, count=summary.count, retrieved=summary.listed,
                       new=summary.new, updated=summary.updated, held=summary.already_held,
                       requests=summary.network_requests,
                       revisions_checked=int(check_revisions))
    return summary


def _run(client: EUtilsClient, library: Library, search_id: int, previous: str | None,
         summary: SearchSummary, mindate: date | None, maxdate: date | None,
         limit: int | None, progress: Progress | None, fresh: bool,
         on_stored: Callable[[list[Record]], None]) -> None:
    found = client.search(summary.term, mindate, maxdate, limit, refresh=fresh)
    summary.count, summary.listed, summary.slices = found.count, len(found.ids), found.slices
    summary.warnings += found.warnings
    if limit is None and len(found.ids) != found.count:
        summary.complete = False
        summary.warnings.append(f"PubMed reported {found.count} hits but listed "
                                f"{len(found.ids)}; run the search again to complete it.")
    held = library.records.held(found.ids)
    new = [p for p in found.ids if p not in held]
    revised = revised_since(client, library, summary.term, previous, held, mindate, maxdate)
    summary.already_held = len(held) - len(revised)
    library.records.touch_hits(search_id, [p for p in found.ids if p in held])
    tracker = _Tracker(len(new) + len(revised), progress)

    def not_meanwhile(batch: list[int]) -> list[int]:
        """Drop what another kratomlit process stored since we looked."""
        meanwhile = library.records.held(batch)
        if meanwhile:
            library.records.touch_hits(search_id, meanwhile)
            summary.already_held += len(meanwhile)
        return [p for p in batch if p not in meanwhile]

    def store_all(batches: Generator[tuple[list[int], ParsedBatch | None], None, None],
                  count: Callable[[Counter[str]], None]) -> None:
        # closed on the way out, error or not: a traceback holding this frame must not keep
        # the fetching threads and the worker alive (they would send the queued batches)
        with contextlib.closing(batches):
            for batch, parsed in batches:
                if parsed is not None:
                    count(_store(library, search_id, batch, parsed, summary, on_stored))
                del parsed  # not held while the next batch is awaited
                tracker.advance(len(batch))

    def count_new(out: Counter[str]) -> None:
        summary.new += out["inserted"]
        summary.already_held += out["unchanged"] + out["updated"]

    def count_revised(out: Counter[str]) -> None:
        summary.updated += out["updated"] + out["inserted"]
        summary.already_held += out["unchanged"]

    store_all(prefetched(client, client.batches(new), not_meanwhile), count_new)
    store_all(prefetched(client, client.batches(revised), refresh=True), count_revised)


AHEAD = 4  # batches requested beyond the one being stored, at most
# ... and while the answers in hand (fetched, parsed or being parsed, or being stored) add
# up to less than this, in bytes of XML. Answers of 500 records weigh 2.5 to 21 MB, and a
# parsed batch about 1.3 times its answer: a count alone held 5 heavy batches at once (a
# 12,000-record search peaked 50 % above a 3,000-record one); with the budget, heavy
# batches wait for the one being stored, light ones still go out 4 ahead. 28 MB rather
# than 40: 12,000-record peak RSS median 191 -> 175 MB (6 pairs), cold 5,000 no slower
# (4.71-4.94 s vs 4.77-5.50 s, 13 pairs; the limiter sets the pace), key run unchanged.
AHEAD_BYTES = 28 << 20
# Up to three EFetch requests in flight (the limiter's burst without a key): each answer's
# latency and NCBI's time to build it hide behind the others', so requests go out at the
# limiter's pace instead of one per round trip (5,000 records at 1 s latency: 12.8 s with
# one in flight, 6.9 s with three). ``RetryTurns`` keeps a fault's cost as with one: only
# the failing request is retried and nothing else is sent meanwhile.
IN_FLIGHT = 3
WORKER_FROM = 2  # the parse worker starts with the 3rd batch: small searches never wait for it
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8

Pending = deque[tuple[list[int], "Future[_Fetched] | None", int]]  # ids, fetch, ticket


def prefetched(client: EUtilsClient, batches: Iterable[list[int]],
               keep: Callable[[list[int]], list[int]] | None = None, refresh: bool = False
               ) -> Generator[tuple[list[int], ParsedBatch | None], None, None]:
    """Each batch with its EFetch answer, parsed, in order; while the caller stores batch
    k, later batches are being fetched (``IN_FLIGHT`` requests, started in order, paced
    by the shared limiter) and parsed, up to ``AHEAD`` batches and ``AHEAD_BYTES``: the
    first two in the fetching threads, later ones in a spawned worker process, so parsing
    uses the second core, never holds the caller's GIL and never delays the next request.
    ``keep`` (run here, in the caller's thread, as SQLite requires) trims a batch just
    before it is requested; a batch trimmed to nothing is yielded with None. While a fetch
    is failing only it is retried; if it fails, nothing more is sent, the batches that did
    arrive are yielded (out of order), then its error is raised."""
    _big_buffers_to_os()
    fetch = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="efetch")
    worker = ParseWorker()
    pending: Pending = deque()
    queue = enumerate(batches)
    turns = RetryTurns()  # shared by the fetching threads: one retries, the others hold
    awaited = _Awaited()

    def request_next() -> bool:
        index, batch = next(queue, (-1, None))
        if batch is None:
            return False
        ids = keep(batch) if keep else batch
        if index == WORKER_FROM:
            worker.start()
        use = worker if index >= WORKER_FROM else None
        ticket = turns.ticket() if ids else -1
        future = fetch.submit(_fetch, client, ids, refresh, use, turns, ticket,
                              awaited) if ids else None
        pending.append((ids, future, ticket))
        return True

    seen = [0, 0]  # answers taken from the window, and their bytes

    def top_up(storing: int = 0) -> None:
        """Request batches while the window and the budget allow (always one, if none is
        pending: the budget never stops the search). An answer still on the wire counts
        as the mean of those seen so far."""
        guess = seen[1] // seen[0] if seen[0] else 0
        while len(pending) < AHEAD and (not pending or
                                        storing + _in_hand(pending, guess) < AHEAD_BYTES):
            if not request_next():
                return

    try:
        top_up()
        while pending:
            ids, future, awaited.ticket = pending.popleft()
            try:
                fetched = future.result() if future else _Fetched()
                parsed = _parsed(client, worker, ids, fetched) if future else None
            except Exception as exc:
                turns.gave_up(exc)  # nothing more is sent
                yield from _salvaged(pending)
                raise
            del future  # it holds the parsed batch too: let the caller's store free it
            seen[0], seen[1] = seen[0] + 1, seen[1] + fetched.size
            top_up(fetched.size)
            del fetched
            yield ids, parsed
            del parsed  # stored: not held while the next batch is awaited
            top_up()
    finally:  # done, failed, or the caller stopped (closed us): nothing more goes out
        turns.gave_up(Stopped("the search stopped"))  # threads waiting for a slot give up
        fetch.shutdown(wait=False, cancel_futures=True)
        worker.close()


class Stopped(Exception):
    """Why a batch still waiting for its slot was not sent: its search had stopped."""


def _in_hand(pending: Pending, guess: int) -> int:
    """Bytes of the answers among ``pending``, counting ``guess`` for one not yet in."""
    return sum(_weight(future, guess) for _, future, _ in pending)


def _weight(future: Future[_Fetched] | None, guess: int) -> int:
    if future is None:
        return 0  # nothing to fetch
    if not future.done():
        return guess
    return 0 if future.exception() is not None else future.result().size


def _salvaged(pending: Pending) -> Iterator[tuple[list[int], ParsedBatch]]:
    """After a batch failed: the later batches whose answers had arrived or were on the
    wire, so the caller stores them before the failure is raised (a re-run then fetches
    less). Those that were held back fail with the same error and are skipped."""
    for ids, future, _ in pending:
        with contextlib.suppress(Exception):
            fetched = future.result() if future else _Fetched()
            parsed = fetched.future.result() if fetched.future else fetched.parsed
            if parsed is not None:  # never fetched again: nothing more is sent
                yield ids, parsed


@dataclass
class _Fetched:
    """One EFetch answer: parsed in the fetching thread, or being parsed by the worker, or
    neither (refused by the parser, or the worker died with it: fetched again)."""

    parsed: ParsedBatch | None = None
    future: Future[ParsedBatch] | None = None
    size: int = 0  # bytes of the answer: what it weighs in hand, parsed or not


@dataclass
class _Awaited:
    """The ticket of the batch the caller is waiting for (-1: none yet)."""

    ticket: int = -1


def _fetch(client: EUtilsClient, ids: list[int], refresh: bool, worker: ParseWorker | None,
           turns: RetryTurns, ticket: int, awaited: _Awaited) -> _Fetched:
    with turns.in_order(ticket):  # slots in the order batches are stored
        if turns.error is not None:
            raise turns.error  # another batch failed: this one is not requested
        body = client.efetch_unparsed(ids, refresh=refresh, turns=turns)
    size = len(body)
    # The worker parses while the caller stores; a batch the caller is already waiting
    # for is parsed here instead (the caller is idle, and the round trip to the worker,
    # ~50 ms for a batch, is saved: the last batch of a search usually arrives so).
    future = worker.submit(body) if worker is not None and awaited.ticket != ticket else None
    if future is not None:
        return _Fetched(future=future, size=size)  # not the body: the worker has it
    try:
        return _Fetched(parse_pubmed_xml(body), size=size)
    except (MalformedResponse, InBandError):
        return _Fetched(size=size)


def _parsed(client: EUtilsClient, worker: ParseWorker, ids: list[int],
            fetched: _Fetched) -> ParsedBatch:
    """The parsed batch; an answer the parser refused, or the worker could not parse (it
    died), is fetched (and retried) again here; later batches are then parsed here."""
    if fetched.future is not None:
        try:
            return fetched.future.result()
        except (MalformedResponse, InBandError):
            return client.refetch(ids)
        except BrokenProcessPool:  # the pool broke (the worker died), not the parse
            worker.broken = True
            return client.refetch(ids, why="lost: the parse worker stopped")
        # any other exception is the parser's own (the worker sends it back), raised as it
        # is when the batch is parsed in-thread
    return fetched.parsed if fetched.parsed is not None else client.refetch(ids)


class ParseWorker:
    """One spawned process that parses EFetch answers, so parsing runs on another core
    while this process stores. Started on demand; if it cannot start (or dies) the
    caller parses in-process. It ignores Ctrl-C (the parent handles that) and exits when
    its parent does, even one killed outright."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.broken = False

    def start(self) -> None:
        if self.pool is not None or self.broken:
            return
        try:
            with _sigint_held():
                context = multiprocessing.get_context("spawn")
                self.pool = ProcessPoolExecutor(1, mp_context=context,
                                                initializer=_worker_init,
                                                initargs=(os.getpid(),))
                self.pool.submit(int)  # start it now: its imports overlap the next fetch
        except (OSError, RuntimeError, ValueError):
            self.broken, self.pool = True, None

    def submit(self, body: bytes) -> Future[ParsedBatch] | None:
        if self.pool is None or self.broken:
            return None
        try:
            return self.pool.submit(_parse_handed, _HandOff(body))
        except (OSError, RuntimeError):  # BrokenProcessPool is a RuntimeError
            self.broken = True
            return None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


class _HandOff:
    """An answer on its way to the worker. The pool keeps a call's arguments until its
    result is back; this one gives its bytes to pickle and lets go of them, so this
    process frees the answer once it is sent, not after the worker has parsed it. The
    worker receives the bytes themselves (``bytes(b)`` is ``b``)."""

    def __init__(self, body: bytes):
        self.body = body

    def __reduce__(self) -> tuple[type[bytes], tuple[bytes]]:
        body, self.body = self.body, b""
        return bytes, (body,)


def _parse_handed(body: bytes | _HandOff) -> ParsedBatch:
    """In the worker: parse an answer handed over (bytes once unpickled)."""
    return parse_pubmed_xml(body if isinstance(body, bytes) else body.body)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Ignore Ctrl-C while the worker (and multiprocessing's resource tracker) are spawned:
    an ignored signal stays ignored across exec, and Python then installs no
    KeyboardInterrupt handler, so a Ctrl-C to the terminal's process group cannot kill them
    half-started with a 'Fatal Python error' traceback. The window is the few milliseconds
    of the spawn; a Ctrl-C inside it is lost (press it again). Main thread only, as
    ``signal.signal`` requires; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@functools.cache  # once per process: every search and refresh calls it
def _big_buffers_to_os() -> None:
    """With glibc, allocate buffers of 1 MiB and more (answers, their pickled copies on the
    way to and from the worker) with mmap and give them back when freed. By default glibc
    raises that threshold after the first such buffer is freed, and from then on keeps
    several threads' worth of 10 MB answers in its heaps: a 12,000-record search peaked at
    300 MB instead of 220. And at most two malloc arenas: each fetching thread would
    otherwise grow its own to the size of the answers it held (12,000 records with three
    requests in flight: 275 MB, 242 with two arenas). Elsewhere (or if it fails) nothing
    changes."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
        libc.mallopt(M_ARENA_MAX, 2)


def _worker_init(parent: int) -> None:
    """In the worker: leave Ctrl-C to the parent, exit once the parent is gone, and skip
    the interpreter's teardown when told to stop: by then every result has been written
    to the parent (the pool writes them synchronously), and the parent's exit waits for
    this process, ~30 ms of tearing down modules nobody will use again."""
    _big_buffers_to_os()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    atexit.register(os._exit, 0)


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _one_at_a_time(library: Library, search_id: int) -> AbstractContextManager[Any]:
    """Two processes running the same search wait for each other (an OS file lock beside
    the library, released if a process dies), so the second finds the records held
    instead of fetching them again."""
    try:
        folder = library.path.parent / "locks"
        folder.mkdir(exist_ok=True)
    except OSError:  # an unwritable home fails later with its own message
        return nullcontext()
    return FileLock(folder / f"search-{search_id}.lock")


class _Tracker:
    """Reports progress as (done, total) to the optional callback."""

    def __init__(self, total: int, progress: Progress | None):
        self.done, self.total, self.progress = 0, total, progress
        self.advance(0)

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)


def _store(library: Library, search_id: int, batch: list[int], parsed: ParsedBatch,
           summary: SearchSummary, on_stored: Callable[[list[Record]], None]
           ) -> Counter[str]:
    """Store a batch and hand the records it wrote (inserted or changed) to ``on_stored``;
    its counts. The records written are dropped on return, before the next batch."""
    summary.not_returned += len(set(batch) - {r.pmid for r in parsed.records})
    written: list[Record] = []
    out = library.records.save_batch(search_id, parsed.records, parsed.deleted,
                                     written=written)
    on_stored(written)
    return out


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """Exempt what exists when a search starts (modules, the session, the library, the
    caller's objects) from cyclic collection until it ends, and collect young objects
    every 20,000 allocations instead of 700: the full collections walked that whole heap
    each time (0.23-0.33 s of a 5,000-record search with a key), and ~700 young ones
    rescanned each batch's records while they were built (0.09-0.13 s); now ~0.09 s in
    all. A batch's records are freed by reference counting either way. Both are undone
    at the end, so nothing of a long-running caller is kept from the collector."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(20_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def revised_since(client: EUtilsClient, library: Library, term: str, previous: str | None,
                  held: set[int] | None = None, mindate: date | None = None,
                  maxdate: date | None = None) -> list[int]:
    """Held records PubMed modified since ``previous`` (a run's start), to fetch again.

    ``[mdat]`` counts whole days, so the window starts a day before that run. A listed
    record is refetched when the revision (DateRevised) the library holds predates the
    window; a copy revised inside the window already carries a change made then (a second
    revision inside the same window is caught once the window has moved past the first).
    ``held`` limits the answer to those PMIDs (default: anything the library holds).
    """
    if not previous or held == set():
        return []
    since = (datetime.fromisoformat(previous) - timedelta(days=1)).strftime("%Y/%m/%d")
    found = client.search(f"({term}) AND {since}:3000[mdat]", mindate, maxdate,
                          refresh=True)  # never a cached answer
    changed = [p for p in found.ids if p in held] if held is not None else \
        sorted(library.records.held(found.ids))
    stale = library.records.stale(changed, revised_before=since.replace("/", "-"),
                          fetched_before=previous)
    return [p for p in changed if p in stale]


def _copy_stats(client: EUtilsClient, summary: SearchSummary) -> None:
    summary.network_requests = client.stats.network
    summary.from_cache = client.stats.from_cache
    summary.retries = client.stats.retries
