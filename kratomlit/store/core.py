"""The library's core: one SQLite file, opened (and migrated) with WAL and a busy timeout,
and all-or-nothing transactions. The units beside it (records, runs, labels, exports)
each own their tables' queries; queries that serve one command live with that command.

Design: every write that belongs together is one transaction (a fetched batch, its
records and its hits), so a crash loses at most the batch in flight and a re-run resumes
from what is held. WAL mode and a busy timeout let a cron refresh and an analyst's
command share the file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from kratomlit.errors import StorageError
from kratomlit.migrations import MIGRATIONS, migrate

BUSY_TIMEOUT_S = 60
SQL_VARS = 900  # PMIDs per statement, under SQLite's parameter limit
# A new library's page size. Most of a library's bytes are records' XML (~10-30 KB each),
# stored in chains of overflow pages that SQLite writes a page per system call (twice:
# WAL, then checkpoint): 16 KiB pages stored 5,000 real records in 0.50-0.58 s instead of
# 0.67-0.77 s (system time 0.20-0.26 vs 0.32-0.37 s) for an 8 % larger file. Libraries
# made before keep their 4 KiB pages (SQLite cannot change it in WAL mode).
PAGE_SIZE = 16384


def loads(text: str | bytes) -> Any:
    """JSON stored by the library, decoded by orjson (3-10x faster than ``json``: decoding
    was the largest single cost of an export). The rare text orjson refuses and ``json``
    reads (NaN, Infinity, lone surrogates) goes to ``json``, so nothing that read before
    fails now. One difference remains: orjson reads an integer past 64 bits as a float.
    The library stores none (PMIDs, years and counts are far smaller; ``sample_size``
    gives no n above 10**10), so none is rounded."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def dumps(value: Any) -> str:
    """JSON for the library's columns, encoded by orjson (4x faster than ``json``: encoding
    was 40% of storing a record). Compact, non-ASCII as is; ``loads`` reads it as it read
    ``json``'s. What orjson refuses (a lone surrogate; none comes from lxml's text) goes to
    ``json``."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, ensure_ascii=False)


def now_iso() -> str:
    """UTC time to the millisecond: runs a second apart must still be ordered."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _wal(db: sqlite3.Connection) -> None:
    """Switch to WAL; SQLite answers 'locked' at once (no busy wait) while another process
    creates the same new file, so retry for a while."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _check_library(db: sqlite3.Connection, path: Path) -> None:
    """Refuse, before anything is written, a database that is not a kratomlit library or was
    written by a newer kratomlit (its unknown migrations would be silently ignored)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return  # a new, empty file
    if "_migrations" not in tables:
        db.close()
        raise StorageError(f"{path} is an SQLite database but not a kratomlit library; it was "
                           "left untouched. Move it aside or set KRATOMLIT_HOME elsewhere.")
    known = {fn.__name__ for fn in MIGRATIONS}
    newer = sorted({r[0] for r in db.execute("SELECT name FROM _migrations")} - known)
    if newer:
        db.close()
        raise StorageError(f"The library {path} was written by a newer kratomlit (schema "
                           f"{', '.join(newer)}); it was left untouched. Upgrade kratomlit.")


class Database:
    """Open (and migrate) the library at ``path``; use as a context manager.

    ``readonly`` opens it for reading only: no write lock is taken (not even to migrate,
    unless the schema is out of date), so reading never waits behind a writer, and a
    library on a read-only disk still reads.
    """

    def __init__(self, path: Path, readonly: bool = False,
                 busy_timeout: float = BUSY_TIMEOUT_S):
        self.path = path
        self.readonly = readonly
        try:
            if readonly and path.is_file() and self._open_readonly():
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
            self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only a new, empty file
            _check_library(self.db, path)
            _wal(self.db)
            self.db.execute("PRAGMA foreign_keys=ON")
            migrate(self.db)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(_open_problem(path, exc)) from exc

    def _open_readonly(self) -> bool:
        """Connect read-only; False when the schema needs migrating first (the caller
        then opens it for writing once). A read-only disk or folder, where SQLite cannot
        create the WAL index, is read as immutable."""
        for mode in ("mode=ro", "immutable=1"):
            db = sqlite3.connect(f"{self.path.absolute().as_uri()}?{mode}", uri=True,
                                 timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                _check_library(db, self.path)
                applied = {r[0] for r in db.execute("SELECT name FROM _migrations")}
            except sqlite3.OperationalError as exc:
                db.close()
                if "no such table" in str(exc):
                    return False
                continue
            if {fn.__name__ for fn in MIGRATIONS} - applied:
                db.close()
                return False
            self.db = db
            return True
        raise sqlite3.OperationalError("unable to open database file for reading")

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: IMMEDIATE takes the write lock up front, so no deadlock later."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def rows_in(self, sql: str, pmids: Iterable[int], *args: Any) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` (with ``{marks}`` for the PMID list) over PMIDs in chunks small
        enough for SQLite's parameter limit."""
        ids = list(pmids)
        for start in range(0, len(ids), SQL_VARS):
            chunk = ids[start:start + SQL_VARS]
            yield from self.db.execute(sql.format(marks=",".join("?" * len(chunk))),
                                       [*chunk, *args])

    def count(self, sql: str, *args: Any) -> int:
        return int(self.db.execute(sql, args).fetchone()[0])


def _open_problem(path: Path, exc: BaseException) -> str:
    """What went wrong opening the library, and what is safe to do about it."""
    if "locked" in str(exc) or "busy" in str(exc):
        return (f"The library {path} is locked by another kratomlit process that has been "
                "writing for a long time (e.g. a refresh). Nothing was changed; try again "
                "when it finishes. Do not delete or move the library while it is in use.")
    return (f"Cannot open the library {path}: {exc}. Check that KRATOMLIT_HOME is a "
            "writable folder with space left; if the file is not a kratomlit library, "
            "set KRATOMLIT_HOME elsewhere.")
