"""Bring saved searches up to date, unattended: what ``kratomlit refresh`` runs from cron.

New records: each saved search is one ESearch (never a cached answer) whose whole PMID
list is compared with the library, and only PMIDs the library lacks are fetched. A date
window ("added since last time") would miss records whose Entrez date is later than
their publication date.

Revisions: afterwards one ESearch, ``(search 1) OR (search 2) ... AND <since>:3000[mdat]``,
lists held records PubMed modified since the oldest of these searches' previous checked
runs (less a day, as ``[mdat]`` counts days); those stored before the change are fetched
again. ``[mdat]`` is PubMed's own modification date, so this costs one request however
large the library is, where comparing each record's DateRevised would mean refetching
everything.

Only one refresh runs per KRATOMLIT_HOME at a time (a file lock); a killed refresh leaves
every batch it stored, and the next one closes it as interrupted and finishes the job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from kratomlit.config import Settings
from kratomlit.errors import BusyError, KratomlitError, NCBIError, NetworkError, PartialError
from kratomlit.eutils import EUtilsClient
from kratomlit.queries import SavedQuery
from kratomlit.search import SearchSummary, prefetched, revised_since, run_search
from kratomlit.store import Library
from kratomlit.topics import label_library

log = logging.getLogger("kratomlit.refresh")
LOCK_NAME = "refresh.lock"
ClientFactory = Callable[[], EUtilsClient]
SearchProgress = Callable[[str, int, int], None]  # (saved search, records done, to fetch)


@dataclass
class SearchOutcome:
    """One saved search within a refresh."""

    name: str
    term: str
    status: str = "complete"  # complete | incomplete | failed | skipped
    hits: int = 0
    new: int = 0  # records new to the library (stored for the first time)
    new_to_search: int = 0  # records this search found for the first time ('kratomlit new')
    updated: int = 0
    requests: int = 0
    error: str = ""  # why it failed or was skipped
    notes: str = ""  # PubMed's warnings for a search that ran
    exit_code: int = 0


@dataclass
class RefreshSummary:
    """What a refresh did; stored in the ``refreshes`` table and printed by the CLI."""

    id: int
    started: str
    searches: list[SearchOutcome] = field(default_factory=list)
    status: str = "running"  # complete | partial | failed
    revisions_since: str | None = None
    revised: int = 0
    labelled: int = 0
    requests: int = 0
    problems: list[str] = field(default_factory=list)
    digest: str | None = None  # file written by --export-new

    @property
    def new(self) -> int:
        """Records new to the library."""
        return sum(s.new for s in self.searches)

    @property
    def new_to_search(self) -> int:
        """Hits new to their search (a record two searches found counts twice)."""
        return sum(s.new_to_search for s in self.searches)

    @property
    def exit_code(self) -> int:
        """0 complete, 10 partial, else the first failure's code (3 network, 4 NCBI)."""
        if self.status == "complete":
            return 0
        if self.status == "partial":
            return PartialError.exit_code
        return next((s.exit_code for s in self.searches if s.exit_code), 1)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(new=self.new, new_to_search=self.new_to_search, exit_code=self.exit_code)
        return data

    def raise_for_status(self, log_path: Path) -> None:
        """Nothing when complete; otherwise an error naming what failed: exit 10
        (partial) or the first failure's code (nothing saved)."""
        if self.status == "complete":
            return
        failed = [s for s in self.searches if s.status != "complete"]
        detail = "; ".join([*(f"{s.name} {s.status}: {s.error.rstrip('.')}" for s in failed),
                            *(p.rstrip(".") for p in self.problems)])
        if self.status == "partial":
            done = len(self.searches) - len(failed)
            rest = "the next refresh retries the rest" if failed else \
                "fix the problem and the next refresh includes it"
            raise PartialError(f"Refresh {self.id} was partial ({detail}). {done} of "
                               f"{len(self.searches)} saved searches ran and are up to date; "
                               f"{rest}. Log: {log_path}")
        raise RefreshFailed(f"Refresh {self.id} saved nothing new: {detail}. The next refresh "
                            f"catches up. Log: {log_path}", self.exit_code)


class RefreshFailed(KratomlitError):
    """A refresh that saved nothing; its exit code is its first failure's (3 or 4)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def refresh_saved(settings: Settings, queries: Sequence[SavedQuery], problems: list[str], *,
                  wait: float, digest_dir: Path | None = None,
                  progress: SearchProgress | None = None,
                  on_wait: Callable[[float], None] | None = None) -> RefreshSummary:
    """The whole ``refresh`` command: take the lock (``on_wait(seconds)`` is told when
    another refresh holds it), run ``queries``, label, and write what was new to a dated
    CSV in ``digest_dir`` when given."""
    from kratomlit.digest import dated_name, new_records, refresh_cutoff, write_digest
    from kratomlit.session import make_session

    with refresh_lock(settings.home, wait, on_wait), make_session(settings) as session, \
            Library(settings.library_path) as library:
        summary = run_refresh(library, queries,
                              lambda: EUtilsClient.from_settings(session, settings),
                              problems, progress=progress)
        if digest_dir is not None:
            path = dated_name(digest_dir)
            write_digest(new_records(library, refresh_cutoff(library, before=summary.id)),
                         "csv", path)
            summary.digest = str(path)
    return summary


@contextmanager
def refresh_lock(home: Path, wait: float,
                 on_wait: Callable[[float], None] | None = None) -> Iterator[None]:
    """Hold KRATOMLIT_HOME's refresh lock, waiting up to ``wait`` seconds for it; when
    another refresh holds it, ``on_wait(wait)`` is called first so a person is told.

    The lock is an OS file lock: a killed process releases it, so it never goes stale.
    """
    home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(home / LOCK_NAME)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if wait <= 0:
                raise
            log.info("another refresh holds %s: waiting up to %g s", lock.lock_file, wait)
            if on_wait is not None:
                on_wait(wait)
            lock.acquire(timeout=wait)
    except Timeout:
        log.warning("refresh not started: another refresh held %s for %g s", lock.lock_file,
                    wait)
        raise BusyError(f"Another kratomlit refresh is running on {home} and did not finish "
                        f"within {wait:g} s; this run did nothing. Let it finish, or give "
                        "--wait SECONDS to wait longer.") from None
    try:
        yield
    finally:
        lock.release()


def run_refresh(library: Library, queries: Sequence[SavedQuery], make_client: ClientFactory,
                problems: Sequence[str] = (),
                progress: SearchProgress | None = None) -> RefreshSummary:
    """Run every search, check revisions once, label what is new; record it all.

    The caller holds ``refresh_lock``. One search failing does not stop the others,
    except that after a network failure the rest are skipped: NCBI is unreachable.
    """
    refresh_id, started = library.runs.start_refresh(os.getpid())
    summary = RefreshSummary(refresh_id, started, problems=list(problems))
    log.info("refresh %d started: %d saved searches", refresh_id, len(queries))
    try:
        ids = _run_searches(library, queries, make_client, summary, progress)
        if ids:
            _check_revisions(library, queries, ids, make_client, summary)
        summary.labelled = label_library(library, summary.problems).labelled
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        with contextlib.suppress(sqlite3.Error):  # keep the original error, not this one
            library.runs.finish_refresh(refresh_id, status, **_counts(summary))
        log.error("refresh %d stopped: %s", refresh_id, exc or type(exc).__name__)
        raise
    summary.status = _status(summary)
    library.runs.finish_refresh(refresh_id, summary.status, **_counts(summary))
    log.info("refresh %d finished: %s; %d new, %d revised, %d labelled, %d requests",
             refresh_id, summary.status, summary.new, summary.revised, summary.labelled,
             summary.requests)
    return summary


def _run_searches(library: Library, queries: Sequence[SavedQuery], make_client: ClientFactory,
                  summary: RefreshSummary, progress: SearchProgress | None
                  ) -> dict[str, int]:
    """Run each search; return the library ids of those that completed, by name."""
    done: dict[str, int] = {}
    unreachable = False
    for q in queries:
        outcome = SearchOutcome(q.name, q.term)
        summary.searches.append(outcome)
        if unreachable:
            outcome.status, outcome.error = "skipped", "not tried: NCBI could not be reached"
            outcome.exit_code = NetworkError.exit_code
            log.warning("refresh %d search %s skipped", summary.id, q.name)
            continue
        client = make_client()
        label = f"{q.name} ({len(summary.searches)}/{len(queries)})"
        try:
            result = run_search(client, library, q.term, name=q.name, mindate=q.mindate,
                                maxdate=q.maxdate, refresh_id=summary.id,
                                check_revisions=False, fresh=True,
                                progress=_named(progress, label))
        except (NetworkError, NCBIError) as exc:
            outcome.status, outcome.error, outcome.exit_code = "failed", str(exc), exc.exit_code
            unreachable = isinstance(exc, NetworkError)
            log.error("refresh %d search %s failed: %s", summary.id, q.name, exc)
        else:
            _took(outcome, result)
            outcome.new_to_search = library.count(
                "SELECT count(*) FROM hits WHERE search_id = ? AND first_seen >= ?",
                result.search_id, summary.started)
            if result.complete:
                done[q.name] = result.search_id
            log.info("refresh %d search %s %s: %d hits, %d new, %d requests", summary.id,
                     q.name, outcome.status, outcome.hits, outcome.new, client.stats.network)
        outcome.requests = client.stats.network
        summary.requests += client.stats.network
    return done


def _took(outcome: SearchOutcome, result: SearchSummary) -> None:
    """Copy what a finished search run found into its outcome."""
    outcome.hits, outcome.new = result.count, result.new
    outcome.status = "complete" if result.complete else "incomplete"
    outcome.notes = " ".join(result.warnings)
    if not result.complete:
        outcome.error = "PubMed listed fewer PMIDs than its Count"


def _named(progress: SearchProgress | None, name: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(name, done, total)


def _check_revisions(library: Library, queries: Sequence[SavedQuery], done: dict[str, int],
                     make_client: ClientFactory, summary: RefreshSummary) -> None:
    """One ``[mdat]`` ESearch over the completed searches; refetch what changed."""
    since = library.runs.revision_base(done.values())
    client = make_client()
    by_search: Counter[int] = Counter()
    try:
        if since:
            term = " OR ".join(f"({q.term})" for q in queries if q.name in done)
            changed = _refetch(client, library, revised_since(client, library, term, since))
            summary.revised = len(changed)
            by_search = library.records.searches_holding(changed)
            for outcome in summary.searches:
                outcome.updated = by_search.get(done.get(outcome.name, -1), 0)
        library.runs.mark_revisions_checked(summary.id, by_search)
        summary.revisions_since = since
    except (NetworkError, NCBIError) as exc:
        summary.problems.append(f"Revision check failed, retried next run: {exc}")
        log.error("refresh %d revision check failed: %s", summary.id, exc)
    finally:
        summary.requests += client.stats.network
    log.info("refresh %d revisions since %s: %d updated", summary.id, since or "(first run)",
             summary.revised)


def _refetch(client: EUtilsClient, library: Library, pmids: list[int]) -> list[int]:
    """Fetch ``pmids`` again, bypassing the cache; return those whose XML changed."""
    changed: list[int] = []
    for _batch, parsed in prefetched(client, client.batches(pmids), refresh=True):
        if parsed is not None:
            library.records.save_batch(None, parsed.records, parsed.deleted, changed=changed)
    return changed


def _status(summary: RefreshSummary) -> str:
    complete = [s for s in summary.searches if s.status == "complete"]
    if len(complete) == len(summary.searches) and not summary.problems:
        return "complete"
    saved = complete or [s for s in summary.searches if s.status == "incomplete"]
    return "partial" if saved else "failed"


def _counts(summary: RefreshSummary) -> dict[str, Any]:
    return {"searches": len(summary.searches), "new": summary.new, "updated": summary.revised,
            "failed": sum(s.status != "complete" for s in summary.searches),
            "labelled": summary.labelled, "requests": summary.requests,
            "revisions_since": summary.revisions_since}
