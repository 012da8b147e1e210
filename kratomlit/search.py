"""Run a search end to end: ESearch every PMID, EFetch only what the library lacks or
what PubMed revised since the last run, store each batch in one transaction.

Revisions: when the same search ran before, one extra ESearch restricted to
``[mdat]`` since that run (less a day of slack) lists held records PubMed changed; they
are fetched again, bypassing the HTTP cache, and count as updated only if their XML
changed.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from filelock import FileLock

from kratomlit.config import Settings
from kratomlit.errors import IncompleteError
from kratomlit.eutils import EUtilsClient
from kratomlit.models import ParsedBatch
from kratomlit.queries import SavedQuery
from kratomlit.store import Library

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
        summary = run_search(client, library, query.term, name=query.name or None,
                             mindate=query.mindate, maxdate=query.maxdate, limit=limit,
                             progress=progress)
        if classify:
            summary.labelled = label_new(library, summary.warnings)
    return summary


def label_new(library: Library, problems: list[str]) -> int:
    """Topics, design, n and doses for every record lacking current ones (a part that
    cannot load is noted in ``problems``; the records stay stored)."""
    from kratomlit.topics import label_library

    return label_library(library, problems).labelled


def run_search(client: EUtilsClient, library: Library, term: str, *,
               name: str | None = None, mindate: date | None = None,
               maxdate: date | None = None, limit: int | None = None,
               progress: Progress | None = None, refresh_id: int | None = None,
               check_revisions: bool = True, fresh: bool = False) -> SearchSummary:
    """Search PubMed for ``term`` and bring the library up to date with its hits.

    ``fresh`` skips the HTTP cache for the ESearch (a scheduled refresh must see today's
    hits); ``check_revisions=False`` leaves the ``[mdat]`` check to the caller (``refresh``
    checks all its searches in one ESearch).
    """
    lo, hi = (d.isoformat() if d else "" for d in (mindate, maxdate))
    summary = SearchSummary(term, name, lo, hi)
    search = library.runs.get_search(term, lo, hi, name)
    summary.search_id = search.id
    previous = library.runs.last_complete_run(search.id) if check_revisions else None
    with _one_at_a_time(library, search.id):
        library.runs.close_dead_runs(search.id)  # we hold its lock: any still running died
        run_id = library.runs.start_run(search.id, refresh_id)
        try:
            _run(client, library, search.id, previous, summary, mindate, maxdate, limit,
                 progress, fresh)
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
         limit: int | None, progress: Progress | None, fresh: bool) -> None:
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

    for batch, parsed in prefetched(client, client.batches(new), not_meanwhile):
        if parsed is not None:
            out = _store(library, search_id, batch, parsed, summary)
            summary.new += out["inserted"]
            summary.already_held += out["unchanged"] + out["updated"]
        tracker.advance(len(batch))
    for batch, parsed in prefetched(client, client.batches(revised), refresh=True):
        if parsed is not None:
            out = _store(library, search_id, batch, parsed, summary)
            summary.updated += out["updated"] + out["inserted"]
            summary.already_held += out["unchanged"]
        tracker.advance(len(batch))


def prefetched(client: EUtilsClient, batches: Iterable[list[int]],
               keep: Callable[[list[int]], list[int]] | None = None, refresh: bool = False
               ) -> Iterator[tuple[list[int], ParsedBatch | None]]:
    """Each batch with its EFetch answer, parsed; while the caller stores batch k, batch
    k+1 is already being fetched and parsed in one worker thread, so the request budget
    is not idle while SQLite writes. One worker keeps requests in order and lets the
    shared limiter pace them exactly as before. ``keep`` (run here, in the caller's
    thread, as SQLite requires) trims a batch just before it is requested; a batch
    trimmed to nothing is yielded with None. A failed fetch raises before the next
    batch is requested."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="efetch")

    def submit(batch: list[int]) -> tuple[list[int], Future[ParsedBatch] | None]:
        ids = keep(batch) if keep else batch
        return ids, (pool.submit(client.efetch, ids, refresh=refresh) if ids else None)

    try:
        queue = iter(batches)
        current = submit(first) if (first := next(queue, None)) is not None else None
        while current is not None:
            ids, future = current
            parsed = future.result() if future is not None else None
            current = submit(nxt) if (nxt := next(queue, None)) is not None else None
            yield ids, parsed
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


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
           summary: SearchSummary) -> Counter[str]:
    summary.not_returned += len(set(batch) - {r.pmid for r in parsed.records})
    return library.records.save_batch(search_id, parsed.records, parsed.deleted)


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
