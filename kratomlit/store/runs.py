"""Searches, their runs and refreshes: the bookkeeping behind ``[mdat]`` revision windows,
``refresh`` and ``info``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kratomlit.store.core import Database, now_iso


@dataclass(frozen=True)
class SearchRow:
    id: int
    term: str
    mindate: str
    maxdate: str
    name: str | None


class RunLog:
    def __init__(self, db: Database):
        self.lib = db

    # ---- searches -----------------------------------------------------------------

    def get_search(self, term: str, mindate: str = "", maxdate: str = "",
                   name: str | None = None) -> SearchRow:
        """The library's row for this term and date range, created on first use."""
        with self.lib.transaction() as db:
            db.execute(
                "INSERT INTO searches (term, mindate, maxdate, name, created) VALUES (?,?,?,?,?)"
                " ON CONFLICT (term, mindate, maxdate) DO UPDATE SET name = COALESCE("
                "excluded.name, searches.name)", (term, mindate, maxdate, name, now_iso()))
            row = db.execute("SELECT id, term, mindate, maxdate, name FROM searches WHERE term=?"
                             " AND mindate=? AND maxdate=?", (term, mindate, maxdate)).fetchone()
        return SearchRow(*row)

    def searches(self) -> list[SearchRow]:
        """Every search the library knows, by id (the id ``export --search`` takes)."""
        return [SearchRow(*r) for r in self.lib.db.execute(
            "SELECT id, term, mindate, maxdate, name FROM searches ORDER BY id")]

    def search_names(self) -> list[str]:
        return [r[0] for r in self.lib.db.execute(
            "SELECT DISTINCT name FROM searches WHERE name IS NOT NULL ORDER BY name")]

    def search_ids(self, name: str) -> list[int]:
        """Ids of the searches run under saved-search ``name`` (every version of its term)."""
        return [r[0] for r in self.lib.db.execute(
            "SELECT id FROM searches WHERE name = ?", (name,))]

    # ---- runs -----------------------------------------------------------------------

    def last_complete_run(self, search_id: int) -> str | None:
        """Start of the last finished run whose revisions were checked: the ``[mdat]`` base."""
        row = self.lib.db.execute(
            "SELECT max(started) FROM runs WHERE search_id=? AND status='complete' AND "
            "revisions_checked=1", (search_id,)).fetchone()
        return row[0]

    def revision_base(self, search_ids: Iterable[int]) -> str | None:
        """The oldest of these searches' ``[mdat]`` bases: one window covering them all."""
        known = [b for b in (self.last_complete_run(i) for i in search_ids) if b]
        return min(known) if known else None

    def start_run(self, search_id: int, refresh_id: int | None = None) -> int:
        with self.lib.transaction() as db:
            cur = db.execute("INSERT INTO runs (search_id, started, refresh_id, "
                             "revisions_checked) VALUES (?, ?, ?, 0)",
                             (search_id, now_iso(), refresh_id))
        return int(cur.lastrowid or 0)

    def close_dead_runs(self, search_id: int) -> int:
        """Close runs of this search still marked running: the caller holds the search's
        lock, so their process was killed (SIGKILL, power loss)."""
        with self.lib.transaction() as db:
            cur = db.execute("UPDATE runs SET status='failed', finished=?, error='interrupted' "
                             "WHERE search_id=? AND status='running'", (now_iso(), search_id))
        return cur.rowcount

    def finish_run(self, run_id: int, status: str, **values: Any) -> None:
        """Close a run with its status and counts (columns of ``runs``)."""
        self._finish("runs", run_id, status, values)

    def _finish(self, table: str, row_id: int, status: str, values: dict[str, Any]) -> None:
        cols = ", ".join(f"{k} = :{k}" for k in values)
        sets = f"{cols}, " if cols else ""
        with self.lib.transaction() as db:
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
        with self.lib.transaction() as db:
            db.execute("UPDATE runs SET status='failed', finished=?, error='interrupted' "
                       "WHERE status='running' AND refresh_id IN "
                       "(SELECT id FROM refreshes WHERE status='running')", (stamp,))
            db.execute("UPDATE refreshes SET status='interrupted' WHERE status='running'")
            cur = db.execute("INSERT INTO refreshes (started, pid) VALUES (?, ?)", (stamp, pid))
        return int(cur.lastrowid or 0), stamp

    def finish_refresh(self, refresh_id: int, status: str, **values: Any) -> None:
        self._finish("refreshes", refresh_id, status, values)

    def mark_revisions_checked(self, refresh_id: int,
                               updated: Mapping[int, int] | None = None) -> None:
        """Make this refresh's complete runs ``[mdat]`` bases, with their updated counts
        (``updated``: search id -> records refetched because PubMed revised them)."""
        with self.lib.transaction() as db:
            db.execute("UPDATE runs SET revisions_checked=1 WHERE refresh_id=? "
                       "AND status='complete'", (refresh_id,))
            db.executemany("UPDATE runs SET updated=? WHERE refresh_id=? AND search_id=?",
                           [(n, refresh_id, sid) for sid, n in (updated or {}).items()])

    def last_refresh(self) -> tuple[str, str] | None:
        """(status, finished or started time) of the latest refresh, None if none ran."""
        row = self.lib.db.execute("SELECT status, COALESCE(finished, started) FROM refreshes "
                                  "ORDER BY id DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else None
