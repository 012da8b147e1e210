"""Records and hits: what the library holds, and which search found what."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from kratomlit.models import Record
from kratomlit.store.core import Database, dumps, loads, now_iso


def record_from_json(data: str | bytes) -> Record:
    """A record from the library's ``records.data`` column."""
    return Record.from_dict(loads(data))


def outdated(lib: Database, table: str, version: str, redo_all: bool = False
             ) -> Iterator[Record]:
    """Records with no row in ``table`` (labels, extractions) or a row made by another
    ``version``; every record with ``redo_all``. Pages by PMID: bounded memory, and safe
    while those rows are written."""
    where = "" if redo_all else "AND (t.version IS NULL OR t.version != ?)"
    args: list[str] = [] if redo_all else [version]
    sql = (f"SELECT r.pmid, r.data FROM records r LEFT JOIN {table} t ON t.pmid = r.pmid "
           f"WHERE r.deleted_at IS NULL AND r.pmid > ? {where} ORDER BY r.pmid LIMIT 1000")
    last = -1
    while True:
        rows = lib.db.execute(sql, [last, *args]).fetchall()
        if not rows:
            return
        for _pmid, data in rows:
            yield record_from_json(data)
        last = rows[-1][0]


class RecordStore:
    def __init__(self, db: Database):
        self.lib = db

    def held(self, pmids: Iterable[int]) -> set[int]:
        """Which of ``pmids`` the library holds (deleted ones too)."""
        return {r[0] for r in self.lib.rows_in(
            "SELECT pmid FROM records WHERE pmid IN ({marks})", pmids)}

    def get(self, pmid: int) -> Record | None:
        row = self.lib.db.execute("SELECT data FROM records WHERE pmid=?", (pmid,)).fetchone()
        return record_from_json(row[0]) if row else None

    def stale(self, pmids: Iterable[int], revised_before: str,
              fetched_before: str) -> set[int]:
        """Of ``pmids`` (listed as modified since ``revised_before``), those the library
        may hold an older version of: its stored DateRevised predates the window, so the
        listed change is newer than our copy. A copy already revised inside the window is
        kept: refetching it too would fetch the same records again on every run while the
        day-wide window still covers them. Records without a DateRevised fall back to
        "fetched before ``fetched_before``" (both ISO strings)."""
        return {r[0] for r in self.lib.rows_in(
            "SELECT pmid FROM records WHERE pmid IN ({marks}) AND ((date_revised != '' "
            "AND date_revised < ?) OR (date_revised = '' AND last_fetched < ?))",
            pmids, revised_before, fetched_before)}

    def save_batch(self, search_id: int | None, records: Sequence[Record],
                   deleted: Sequence[int] = (), changed: list[int] | None = None,
                   written: list[Record] | None = None) -> Counter[str]:
        """Store a fetched batch and its hits in one transaction.

        Returns how many records were ``inserted``, ``updated`` (their XML changed) and
        ``unchanged`` (e.g. stored meanwhile by another process). ``search_id`` None stores
        records without hits (revisions fetched for several searches at once). PMIDs of
        updated records are appended to ``changed``, and records inserted or updated (the
        ones without labels now) to ``written``, when given.
        """
        stamp = now_iso()
        outcome: Counter[str] = Counter(inserted=0, updated=0, unchanged=0)
        with self.lib.transaction() as db:
            for rec in records:
                result = _upsert(db, rec, stamp)
                outcome[result] += 1
                if result == "updated" and changed is not None:
                    changed.append(rec.pmid)
                if result != "unchanged" and written is not None:
                    written.append(rec)
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
        with self.lib.transaction() as db:
            db.executemany(
                "INSERT INTO hits (search_id, pmid, first_seen, last_seen) VALUES (?,?,?,?) "
                "ON CONFLICT DO UPDATE SET last_seen = excluded.last_seen",
                [(search_id, p, stamp, stamp) for p in pmids])

    def searches_holding(self, pmids: Iterable[int]) -> Counter[int]:
        """How many of ``pmids`` each search (by id) has found."""
        found: Counter[int] = Counter()
        for search_id, n in self.lib.rows_in(
                "SELECT search_id, count(*) FROM hits WHERE pmid IN ({marks}) "
                "GROUP BY search_id", pmids):
            found[search_id] += n
        return found

    def count(self) -> int:
        return self.lib.count("SELECT count(*) FROM records WHERE deleted_at IS NULL")


def _upsert(db: sqlite3.Connection, rec: Record, stamp: str) -> str:
    old = db.execute("SELECT raw_xml FROM records WHERE pmid=?", (rec.pmid,)).fetchone()
    if old and old[0] == rec.raw_xml:
        db.execute("UPDATE records SET last_fetched=? WHERE pmid=?", (stamp, rec.pmid))
        return "unchanged"
    data = dumps(rec.to_dict())
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
    if old:  # its labels and extraction describe the old text: made again for the new
        db.execute("DELETE FROM labels WHERE pmid=?", (rec.pmid,))
        db.execute("DELETE FROM extractions WHERE pmid=?", (rec.pmid,))
    return "updated" if old else "inserted"
