"""The local library: one SQLite file holding records, searches, runs, hits and labels.

Design: every write that belongs together is one transaction (a fetched batch, its
records and its hits), so a crash loses at most the batch in flight and a re-run resumes
from what is held. WAL mode and a busy timeout let a cron refresh and an analyst's
command share the file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kratomlit.errors import StorageError
from kratomlit.migrations import MIGRATIONS, migrate
from kratomlit.parse import Record

BUSY_TIMEOUT_S = 60


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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class SearchRow:
    id: int
    term: str
    mindate: str
    maxdate: str
    name: str | None


class Library:
    """Open (and migrate) the library at ``path``; use as a context manager."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            _check_library(self.db, path)
            _wal(self.db)
            self.db.execute("PRAGMA foreign_keys=ON")
            migrate(self.db)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"Cannot open the library {path}: {exc}. Check that KRATOMLIT_HOME is writable "
                "and the file is a kratomlit library (move it aside to start a new one).") from exc

    def __enter__(self) -> Library:
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

    # ---- searches and runs --------------------------------------------------------

    def get_search(self, term: str, mindate: str = "", maxdate: str = "",
                   name: str | None = None) -> SearchRow:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO searches (term, mindate, maxdate, name, created) VALUES (?,?,?,?,?)"
                " ON CONFLICT (term, mindate, maxdate) DO UPDATE SET name = COALESCE("
                "excluded.name, searches.name)", (term, mindate, maxdate, name, now_iso()))
            row = db.execute("SELECT id, term, mindate, maxdate, name FROM searches WHERE term=?"
                             " AND mindate=? AND maxdate=?", (term, mindate, maxdate)).fetchone()
        return SearchRow(*row)

    def last_complete_run(self, search_id: int) -> str | None:
        """Start time of the last run that finished, for ``[mdat]`` refreshes."""
        row = self.db.execute("SELECT max(started) FROM runs WHERE search_id=? AND "
                              "status='complete'", (search_id,)).fetchone()
        return row[0]

    def start_run(self, search_id: int) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO runs (search_id, started) VALUES (?, ?)",
                             (search_id, now_iso()))
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, **counts: int) -> None:
        cols = ", ".join(f"{k} = :{k}" for k in counts)
        sets = f"{cols}, " if cols else ""
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {sets}finished = :finished, status = :status "
                       "WHERE id = :id", {**counts, "finished": now_iso(), "status": status,
                                          "id": run_id})

    # ---- records ------------------------------------------------------------------

    def _rows_in(self, sql: str, pmids: Iterable[int], *args: Any) -> Iterator[tuple]:
        """Rows of ``sql`` (with ``{marks}`` for the PMID list) over PMIDs in chunks small
        enough for SQLite's parameter limit."""
        ids = list(pmids)
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            yield from self.db.execute(sql.format(marks=",".join("?" * len(chunk))),
                                       [*chunk, *args])

    def held(self, pmids: Iterable[int]) -> set[int]:
        """Which of ``pmids`` the library holds (deleted ones too)."""
        return {r[0] for r in self._rows_in(
            "SELECT pmid FROM records WHERE pmid IN ({marks})", pmids)}

    def stale(self, pmids: Iterable[int], revised_before: str,
              fetched_before: str) -> set[int]:
        """Of ``pmids``, those whose stored revision date predates ``revised_before`` or
        that were last fetched before ``fetched_before`` (both ISO strings)."""
        return {r[0] for r in self._rows_in(
            "SELECT pmid FROM records WHERE pmid IN ({marks}) AND ((date_revised != '' "
            "AND date_revised < ?) OR last_fetched < ?)", pmids, revised_before, fetched_before)}

    def save_batch(self, search_id: int, records: Sequence[Record],
                   deleted: Sequence[int] = ()) -> Counter[str]:
        """Store a fetched batch and its hits in one transaction.

        Returns how many records were ``inserted``, ``updated`` (their XML changed) and
        ``unchanged`` (e.g. stored meanwhile by another process).
        """
        stamp = now_iso()
        outcome: Counter[str] = Counter(inserted=0, updated=0, unchanged=0)
        with self.transaction() as db:
            for rec in records:
                outcome[self._upsert(db, rec, stamp)] += 1
            db.executemany(
                "INSERT INTO hits (search_id, pmid, first_seen, last_seen) VALUES (?,?,?,?) "
                "ON CONFLICT DO UPDATE SET last_seen = excluded.last_seen",
                [(search_id, r.pmid, stamp, stamp) for r in records])
            db.executemany("UPDATE records SET deleted_at=? WHERE pmid=?",
                           [(stamp, p) for p in deleted])
        return outcome

    def touch_hits(self, search_id: int, pmids: Iterable[int]) -> None:
        """Record that a search found records the library already held."""
        stamp = now_iso()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO hits (search_id, pmid, first_seen, last_seen) VALUES (?,?,?,?) "
                "ON CONFLICT DO UPDATE SET last_seen = excluded.last_seen",
                [(search_id, p, stamp, stamp) for p in pmids])

    @staticmethod
    def _upsert(db: sqlite3.Connection, rec: Record, stamp: str) -> str:
        old = db.execute("SELECT raw_xml FROM records WHERE pmid=?", (rec.pmid,)).fetchone()
        if old and old[0] == rec.raw_xml:
            db.execute("UPDATE records SET last_fetched=? WHERE pmid=?", (stamp, rec.pmid))
            return "unchanged"
        data = json.dumps(rec.to_dict(), ensure_ascii=False)
        db.execute(
            "INSERT INTO records (pmid, kind, title, abstract, journal, pub_year, doi, pmcid, "
            "retracted, date_revised, data, raw_xml, first_stored, last_fetched) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (pmid) DO UPDATE SET "
            "kind=excluded.kind, title=excluded.title, abstract=excluded.abstract, "
            "journal=excluded.journal, pub_year=excluded.pub_year, doi=excluded.doi, "
            "pmcid=excluded.pmcid, retracted=excluded.retracted, "
            "date_revised=excluded.date_revised, data=excluded.data, raw_xml=excluded.raw_xml, "
            "last_fetched=excluded.last_fetched, deleted_at=NULL",
            (rec.pmid, rec.kind, rec.title, rec.abstract, rec.journal, rec.pub_year, rec.doi,
             rec.pmcid, int(rec.retracted), rec.date_revised, data, rec.raw_xml, stamp, stamp))
        if old:  # its labels describe the old text: classify labels it again
            db.execute("DELETE FROM labels WHERE pmid=?", (rec.pmid,))
        return "updated" if old else "inserted"

    def iter_records(self, *, search_name: str | None = None, since: str | None = None,
                     pmids: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        """Records (as dicts, with ``searches`` and ``first_stored``), oldest PMID first."""
        where, args = ["r.deleted_at IS NULL"], []
        if search_name is not None:
            where.append("r.pmid IN (SELECT h.pmid FROM hits h JOIN searches s ON "
                         "s.id = h.search_id WHERE s.name = ?)")
            args.append(search_name)
        if since:
            where.append("r.first_stored >= ?")
            args.append(since)
        if pmids is not None:
            where.append(f"r.pmid IN ({','.join(str(int(p)) for p in pmids) or 'NULL'})")
        sql = (
            "SELECT r.data, r.first_stored, (SELECT group_concat(COALESCE(s.name, s.term), "
            "' | ') FROM hits h JOIN searches s ON s.id = h.search_id WHERE h.pmid = r.pmid) "
            f"FROM records r WHERE {' AND '.join(where)} ORDER BY r.pmid")
        for data, first_stored, searches in self.db.execute(sql, args):
            row = json.loads(data)
            row["first_stored"] = first_stored
            row["searches"] = searches or ""
            yield row

    def search_names(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT name FROM searches WHERE name IS NOT NULL ORDER BY name")]

    def counts(self) -> dict[str, int]:
        one = self.db.execute
        return {
            "records": one("SELECT count(*) FROM records WHERE deleted_at IS NULL").fetchone()[0],
            "searches": one("SELECT count(*) FROM searches").fetchone()[0],
            "runs": one("SELECT count(*) FROM runs").fetchone()[0],
            "labelled": one("SELECT count(*) FROM labels").fetchone()[0],
        }

    # ---- topic labels -------------------------------------------------------------

    def labels_for(self, pmids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Stored labels by PMID: ``topics``, ``scores``, ``evidence``, ``version``."""
        return {pmid: {"version": version, "topics": json.loads(topics),
                       "scores": json.loads(scores), "evidence": json.loads(evidence)}
                for pmid, version, topics, scores, evidence in self._rows_in(
                    "SELECT pmid, version, topics, scores, evidence FROM labels "
                    "WHERE pmid IN ({marks})", pmids)}

    def records_to_label(self, version: str, redo_all: bool = False
                         ) -> Iterator[dict[str, Any]]:
        """Records with no labels, or labels from another classifier version."""
        where = "" if redo_all else "AND (l.version IS NULL OR l.version != ?)"
        args: list[Any] = [] if redo_all else [version]
        sql = ("SELECT r.pmid, r.data FROM records r LEFT JOIN labels l ON l.pmid = r.pmid "
               f"WHERE r.deleted_at IS NULL AND r.pmid > ? {where} ORDER BY r.pmid LIMIT 1000")
        last = -1
        while True:  # pages by PMID: bounded memory, and safe while labels are written
            rows = self.db.execute(sql, [last, *args]).fetchall()
            if not rows:
                return
            for _pmid, data in rows:
                yield json.loads(data)
            last = rows[-1][0]

    def save_labels(self, version: str, labels: Iterable[tuple[int, dict[str, Any]]]) -> int:
        """Store ``(pmid, classification dict)`` pairs in one transaction."""
        stamp = now_iso()
        rows = [(pmid, version, json.dumps(c["topics"]), json.dumps(c["scores"]),
                 json.dumps(c["evidence"], ensure_ascii=False), stamp) for pmid, c in labels]
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO labels (pmid, version, topics, scores, evidence, labelled_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (pmid) DO UPDATE SET version=excluded.version,"
                " topics=excluded.topics, scores=excluded.scores, evidence=excluded.evidence, "
                "labelled_at=excluded.labelled_at", rows)
        return len(rows)
