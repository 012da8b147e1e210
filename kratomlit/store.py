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
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    """UTC time to the millisecond: runs a second apart must still be ordered."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


ROW_FILTERS = ("topics", "min_score", "year_from", "year_to", "since")  # export options


@dataclass(frozen=True)
class ExportQuery:
    """Which records an export reads; every field narrows the selection (None: no limit)."""

    search_ids: Sequence[int] | None = None
    stored_since: str | None = None  # records.first_stored >= this
    seen_since: str | None = None    # first found by one of ``search_ids`` at or after this
    year_from: int | None = None
    year_to: int | None = None

    def sql(self) -> tuple[str, list[Any]]:
        where: list[str] = ["r.deleted_at IS NULL"]
        args: list[Any] = []
        if self.search_ids is not None:
            marks = ",".join(str(int(i)) for i in self.search_ids) or "NULL"
            hits = f"FROM hits h WHERE h.pmid = r.pmid AND h.search_id IN ({marks})"
            if self.seen_since:  # first found by any of them (a renamed term is no news)
                where.append(f"(SELECT min(h.first_seen) {hits}) >= ?")
                args.append(self.seen_since)
            else:
                where.append(f"EXISTS (SELECT 1 {hits})")
        elif self.seen_since:
            where.append("r.first_stored >= ?")
            args.append(self.seen_since)
        for clause, value in (("r.first_stored >= ?", self.stored_since),
                              ("r.pub_year >= ?", self.year_from),
                              ("r.pub_year <= ?", self.year_to)):
            if value is not None:
                where.append(clause)
                args.append(value)
        return " AND ".join(where), args


def _export_row(pmid: int, data: str, first_stored: str, searches: str, version: str | None,
                topics: str | None, scores: str | None) -> dict[str, Any]:
    row = json.loads(data)
    row["first_stored"] = first_stored
    row["searches"] = list(dict.fromkeys(json.loads(searches)))  # a name run as two terms
    row["label"] = None if version is None else {
        "version": version, "topics": json.loads(topics or "[]"),
        "scores": json.loads(scores or "{}")}
    return row


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
        """Start of the last finished run whose revisions were checked: the ``[mdat]`` base."""
        row = self.db.execute("SELECT max(started) FROM runs WHERE search_id=? AND "
                              "status='complete' AND revisions_checked=1", (search_id,)).fetchone()
        return row[0]

    def start_run(self, search_id: int, refresh_id: int | None = None) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO runs (search_id, started, refresh_id, "
                             "revisions_checked) VALUES (?, ?, ?, 0)",
                             (search_id, now_iso(), refresh_id))
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, **values: Any) -> None:
        """Close a run with its status and counts (columns of ``runs``)."""
        self._finish("runs", run_id, status, values)

    def _finish(self, table: str, row_id: int, status: str, values: dict[str, Any]) -> None:
        cols = ", ".join(f"{k} = :{k}" for k in values)
        sets = f"{cols}, " if cols else ""
        with self.transaction() as db:
            db.execute(f"UPDATE {table} SET {sets}finished = :finished, status = :status "
                       "WHERE id = :id", {**values, "finished": now_iso(), "status": status,
                                          "id": row_id})

    # ---- refreshes ------------------------------------------------------------------

    def start_refresh(self, pid: int) -> tuple[int, str]:
        """Open a refresh; return its id and start time.

        The caller holds the refresh lock, so any refresh still marked running was killed:
        it and its open search runs are closed as interrupted first.
        """
        stamp = now_iso()
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='failed', finished=?, error='interrupted' "
                       "WHERE status='running' AND refresh_id IN "
                       "(SELECT id FROM refreshes WHERE status='running')", (stamp,))
            db.execute("UPDATE refreshes SET status='interrupted' WHERE status='running'")
            cur = db.execute("INSERT INTO refreshes (started, pid) VALUES (?, ?)", (stamp, pid))
        return int(cur.lastrowid or 0), stamp

    def finish_refresh(self, refresh_id: int, status: str, **values: Any) -> None:
        self._finish("refreshes", refresh_id, status, values)

    def revision_base(self, search_ids: Iterable[int]) -> str | None:
        """The oldest of these searches' ``[mdat]`` bases: one window covering them all."""
        bases = [self.last_complete_run(i) for i in search_ids]
        known = [b for b in bases if b]
        return min(known) if known else None

    def mark_revisions_checked(self, refresh_id: int,
                               updated: Mapping[int, int] | None = None) -> None:
        """Make this refresh's complete runs ``[mdat]`` bases, with their updated counts
        (``updated``: search id -> records refetched because PubMed revised them)."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET revisions_checked=1 WHERE refresh_id=? "
                       "AND status='complete'", (refresh_id,))
            db.executemany("UPDATE runs SET updated=? WHERE refresh_id=? AND search_id=?",
                           [(n, refresh_id, sid) for sid, n in (updated or {}).items()])

    def searches_holding(self, pmids: Iterable[int]) -> Counter[int]:
        """How many of ``pmids`` each search (by id) has found."""
        found: Counter[int] = Counter()
        for search_id, n in self._rows_in(
                "SELECT search_id, count(*) FROM hits WHERE pmid IN ({marks}) "
                "GROUP BY search_id", pmids):
            found[search_id] += n
        return found

    def digest_cutoff(self, before: int) -> str | None:
        """End of the last refresh that finished (complete or partial) before refresh
        ``before``: what a refresh found is what was first seen after it."""
        row = self.db.execute("SELECT max(finished) FROM refreshes WHERE status IN "
                              "('complete', 'partial') AND id < ?", (before,)).fetchone()
        return row[0]

    def last_refresh(self) -> str:
        """'<status> <finished or started>' of the latest refresh, for ``info``."""
        row = self.db.execute("SELECT status, COALESCE(finished, started) FROM refreshes "
                              "ORDER BY id DESC LIMIT 1").fetchone()
        return f"{row[0]}, {row[1]}" if row else "never"

    def latest_finished_refresh(self) -> int | None:
        row = self.db.execute("SELECT max(id) FROM refreshes WHERE status IN "
                              "('complete', 'partial')").fetchone()
        return row[0]

    def new_hits(self, since: str | None, names: Sequence[str] = ()
                 ) -> Iterator[dict[str, Any]]:
        """Records first found by each search after ``since`` (all when None), per search,
        newest first; a record found by two searches is listed under each."""
        where, args = ["r.deleted_at IS NULL"], []
        if since:
            where.append("h.first_seen > ?")
            args.append(since)
        if names:
            where.append(f"s.name IN ({','.join('?' * len(names))})")
            args.extend(names)
        sql = ("SELECT COALESCE(s.name, s.term), h.first_seen, r.data, l.topics FROM hits h "
               "JOIN searches s ON s.id = h.search_id JOIN records r ON r.pmid = h.pmid "
               "LEFT JOIN labels l ON l.pmid = h.pmid "
               f"WHERE {' AND '.join(where)} ORDER BY 1, h.first_seen DESC, h.pmid DESC")
        for search, first_seen, data, topics in self.db.execute(sql, args):
            row = json.loads(data)
            row.update(search=search, first_seen=first_seen,
                       topics=json.loads(topics) if topics else None)
            yield row

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
        """Of ``pmids`` (listed as modified since ``revised_before``), those the library
        may hold an older version of: its stored DateRevised predates the window, so the
        listed change is newer than our copy. A copy already revised inside the window is
        kept: refetching it too would fetch the same records again on every run while the
        day-wide window still covers them. Records without a DateRevised fall back to
        "fetched before ``fetched_before``" (both ISO strings)."""
        return {r[0] for r in self._rows_in(
            "SELECT pmid FROM records WHERE pmid IN ({marks}) AND ((date_revised != '' "
            "AND date_revised < ?) OR (date_revised = '' AND last_fetched < ?))",
            pmids, revised_before, fetched_before)}

    def save_batch(self, search_id: int | None, records: Sequence[Record],
                   deleted: Sequence[int] = (), changed: list[int] | None = None
                   ) -> Counter[str]:
        """Store a fetched batch and its hits in one transaction.

        Returns how many records were ``inserted``, ``updated`` (their XML changed) and
        ``unchanged`` (e.g. stored meanwhile by another process). ``search_id`` None stores
        records without hits (revisions fetched for several searches at once). PMIDs of
        updated records are appended to ``changed`` when it is given.
        """
        stamp = now_iso()
        outcome: Counter[str] = Counter(inserted=0, updated=0, unchanged=0)
        with self.transaction() as db:
            for rec in records:
                result = self._upsert(db, rec, stamp)
                outcome[result] += 1
                if result == "updated" and changed is not None:
                    changed.append(rec.pmid)
            if search_id is not None:
                db.executemany(
                    "INSERT INTO hits (search_id, pmid, first_seen, last_seen) VALUES (?,?,?,?)"
                    " ON CONFLICT DO UPDATE SET last_seen = excluded.last_seen",
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

    def searches(self) -> list[SearchRow]:
        """Every search the library knows, by id (the id ``export --search`` takes)."""
        return [SearchRow(*r) for r in self.db.execute(
            "SELECT id, term, mindate, maxdate, name FROM searches ORDER BY id")]

    def search_ids(self, name: str) -> list[int]:
        """Ids of the searches run under saved-search ``name`` (every version of its term)."""
        return [r[0] for r in self.db.execute("SELECT id FROM searches WHERE name = ?", (name,))]

    def export_chunks(self, query: ExportQuery, size: int = 2000
                      ) -> Iterator[list[dict[str, Any]]]:
        """Records matching ``query`` in PMID order, ``size`` at a time, each with
        ``first_stored``, ``searches`` (list) and ``label`` (dict or None).

        Pages by PMID (keyset), so memory stays flat however large the library is.
        """
        where, args = query.sql()
        sql = (
            "SELECT r.pmid, r.data, r.first_stored, (SELECT json_group_array(x) FROM ("
            "SELECT COALESCE(s.name, s.term) AS x FROM hits h JOIN searches s ON "
            "s.id = h.search_id WHERE h.pmid = r.pmid ORDER BY s.id)), "
            "l.version, l.topics, l.scores FROM records r LEFT JOIN labels l ON l.pmid = r.pmid "
            f"WHERE r.pmid > ? AND {where} ORDER BY r.pmid LIMIT ?")
        last = -1
        while True:
            rows = self.db.execute(sql, [last, *args, size]).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            chunk = [_export_row(*row) for row in rows]
            del rows
            yield chunk
            del chunk

    def last_export(self, selector: str) -> str | None:
        """When the latest finished export of ``selector`` began reading (UTC ISO).

        Only exports that kept every record of the search count: one filtered by topic,
        score, year or date left records out, so it cannot mark them as delivered.
        """
        return self.db.execute(
            "SELECT max(started) FROM exports WHERE selector = ? AND " + " AND ".join(
                f"json_extract(filters, '$.{k}') IS NULL" for k in ROW_FILTERS),
            (selector,)).fetchone()[0]

    def record_export(self, selector: str, started: str, fmt: str, path: str, count: int,
                      filters: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO exports (selector, started, finished, format, path, count, "
                       "filters) VALUES (?,?,?,?,?,?,?)",
                       (selector, started, now_iso(), fmt, path, count,
                        json.dumps(filters, ensure_ascii=False, default=str)))

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
