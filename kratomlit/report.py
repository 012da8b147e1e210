"""The literature at a glance: counts, topics per year, the review flow, refreshes, designs.

``gather`` reads the library with SQL on a read-only connection, inside one read
transaction (a snapshot: a refresh writing meanwhile cannot make two numbers disagree),
and tabulates with pandas. The queries live here, beside their one caller, rather than in
``store``. The selection is ``export``'s: ``--saved`` keeps records found by any search run
under those names, ``--since`` records first stored on or after that date, and deleted
records never count. Charts and pages are made from the returned ``ReportData`` by
``report_page`` (files) and ``report_render`` (terminal).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kratomlit.errors import StorageError, UsageError
from kratomlit.models import TOPICS

NEWEST = 20  # records listed under "newest"
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
YEAR_COLUMNS = ("year", "records", *TOPICS)  # topics_by_year.csv
FLOW_STAGES = ("identified", "duplicates", "unique", "labelled", *TOPICS)  # flow.csv


@dataclass(frozen=True)
class SearchUse:
    """One search the report covers: a saved-search name (or an ad hoc search's term)."""

    name: str
    terms: tuple[str, ...]  # every term run under the name
    identified: int         # selected records it found
    last_run: str | None    # end of its latest complete run (UTC ISO)


@dataclass(frozen=True)
class Flow:
    """PRISMA-style counts: PMIDs identified per search, summed; unique; labelled."""

    identified: int
    unique: int
    labelled: int
    topics: dict[str, int]

    @property
    def duplicates(self) -> int:
        return self.identified - self.unique

    def rows(self) -> list[tuple[str, int]]:
        """``(stage, count)`` in ``FLOW_STAGES`` order."""
        counts = {"identified": self.identified, "duplicates": self.duplicates,
                  "unique": self.unique, "labelled": self.labelled, **self.topics}
        return [(stage, counts[stage]) for stage in FLOW_STAGES]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows(), columns=["stage", "count"])


@dataclass(frozen=True)
class NewestRecord:
    pmid: int
    year: int | None
    title: str
    journal: str
    topics: tuple[str, ...] | None  # None until classified
    first_stored: str

    @property
    def url(self) -> str:
        return PUBMED_URL.format(pmid=self.pmid)


@dataclass
class ReportData:
    """Everything a report shows; tables are pandas frames written as CSV unchanged."""

    made_at: str                   # UTC ISO
    saved: tuple[str, ...]         # --saved names (empty: the whole library)
    since: str | None              # --since as an ISO date
    flow: Flow
    searches: list[SearchUse]
    topics_by_year: pd.DataFrame   # YEAR_COLUMNS; a last row with an empty year, if any
    refreshes: pd.DataFrame        # refresh, started, finished, status, added
    outside_refreshes: int         # selected records stored by 'search', not a refresh
    designs_by_year: pd.DataFrame | None  # year + one column per design; None: no designs
    newest: list[NewestRecord]
    last_refresh: str | None       # "<status>, <time>" of the library's latest refresh

    @property
    def records(self) -> int:
        return self.flow.unique


def when(text: str) -> str:
    """UTC ISO times as people read them: '2026-12-04 17:55 UTC'."""
    return re.sub(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)[\d:.]*\+00:00", r"\1 \2 UTC", text)


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the library at ``path`` (which must exist and be migrated:
    open it once with ``store.Library`` first)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise StorageError(f"Cannot read the library {path}: {exc}.") from exc
    if not {"records", "labels", "hits", "searches", "refreshes"} <= tables:
        db.close()
        raise StorageError(f"{path} is not a kratomlit library (or an old one: run "
                           "'kratomlit info' once to upgrade it).")
    return db


def load(path: Path, saved: Sequence[str] = (), since: str | None = None) -> ReportData:
    """The report for the library file at ``path`` (see ``gather``)."""
    from kratomlit.store import Library

    Library(path).close()  # refuses a foreign or newer file; applies pending migrations
    db = open_readonly(path)
    try:
        return gather(db, saved, since)
    finally:
        db.close()


def gather(db: sqlite3.Connection, saved: Sequence[str] = (),
           since: str | None = None) -> ReportData:
    """The report for records ``export`` would select with these ``--saved``/``--since``.

    One query reads the (large) record rows; hits, labels, refreshes and designs are small
    rows read whole and matched to the selected PMIDs with pandas.
    """
    db.execute("BEGIN")  # one snapshot for every query below
    try:
        sel = Selection.make(db, tuple(dict.fromkeys(saved)), since)
        records = _records(db, sel)
        refreshes, outside = _refreshes(db, records["first_stored"], since)
        found = _identified(db, sel, records["pmid"])
        return ReportData(
            made_at=datetime.now(UTC).isoformat(timespec="seconds"), saved=sel.names,
            since=since, flow=_flow(found, records), searches=_searches(db, sel, found),
            topics_by_year=topics_by_year(records), refreshes=refreshes,
            outside_refreshes=outside, designs_by_year=_designs(db, records),
            newest=_newest(db, records), last_refresh=_last_refresh(db))
    finally:
        db.execute("COMMIT")


@dataclass(frozen=True)
class Selection:
    """The WHERE clause (over ``records r``) that ``export`` applies for these filters."""

    names: tuple[str, ...]
    search_ids: tuple[int, ...] | None  # None: every search
    where: str
    args: tuple[Any, ...]

    @classmethod
    def make(cls, db: sqlite3.Connection, names: tuple[str, ...],
             since: str | None) -> Selection:
        where, args = ["r.deleted_at IS NULL"], []
        ids: tuple[int, ...] | None = None
        if names:
            ids = _search_ids(db, names)
            where.append("EXISTS (SELECT 1 FROM hits h WHERE h.pmid = r.pmid AND "
                         f"h.search_id IN ({','.join(map(str, ids))}))")
        if since:
            where.append("r.first_stored >= ?")
            args.append(since)
        return cls(names, ids, " AND ".join(where), tuple(args))


def _search_ids(db: sqlite3.Connection, names: tuple[str, ...]) -> tuple[int, ...]:
    """Ids of the searches run under ``names``; an unknown name is a usage error (as in
    ``export --saved``)."""
    rows = db.execute(f"SELECT id, name FROM searches WHERE name IN "
                      f"({','.join('?' * len(names))})", names).fetchall()
    unknown = [n for n in names if n not in {name for _id, name in rows}]
    if unknown:
        raise UsageError(f"The library has no records from a saved search named "
                         f"{', '.join(map(repr, unknown))}. Run 'kratomlit search --saved "
                         f"{unknown[0]}' first.")
    return tuple(sorted(i for i, _name in rows))


def _records(db: sqlite3.Connection, sel: Selection) -> pd.DataFrame:
    """One row per selected record: pmid, year, first_stored, labelled, a 0/1 per topic."""
    sql = ("SELECT r.pmid, r.pub_year AS year, r.first_stored, l.topics FROM records r "
           f"LEFT JOIN labels l ON l.pmid = r.pmid WHERE {sel.where}")
    df = pd.read_sql_query(sql, db, params=sel.args)
    df["year"] = df["year"].astype("Int64")
    topics = df.pop("topics")
    df["labelled"] = topics.notna().astype("int64")
    topics = topics.fillna("").astype(str)
    for t in TOPICS:  # topics is a JSON list of these names: '"safety"' matches one element
        df[t] = topics.str.contains(f'"{t}"', regex=False).astype("int64")
    return df


def topics_by_year(records: pd.DataFrame) -> pd.DataFrame:
    """Records per publication year and how many carry each topic (unknown year last)."""
    by_year = records.groupby("year", dropna=False, sort=True)
    table = by_year[list(TOPICS)].sum()
    table.insert(0, "records", by_year.size())
    table = table.reset_index().astype({c: "int64" for c in YEAR_COLUMNS[1:]})
    table["year"] = table["year"].astype("Int64")
    return table[list(YEAR_COLUMNS)]


def _flow(found: dict[str, int], records: pd.DataFrame) -> Flow:
    return Flow(identified=sum(found.values()), unique=len(records),
                labelled=int(records["labelled"].sum()),
                topics={t: int(records[t].sum()) for t in TOPICS})


def _identified(db: sqlite3.Connection, sel: Selection, pmids: pd.Series) -> dict[str, int]:
    """Selected records per search name (an ad hoc search: its term), as ``export`` lists
    them in its ``searches`` column (a name run with two terms counts a record once); with
    ``--saved``, only those names."""
    only = "" if sel.search_ids is None else \
        f"WHERE search_id IN ({','.join(map(str, sel.search_ids))})"
    hits = pd.DataFrame(db.execute(f"SELECT search_id, pmid FROM hits {only}").fetchall(),
                        columns=["search_id", "pmid"], dtype="int64")
    labels = dict(db.execute("SELECT id, COALESCE(name, term) FROM searches"))
    hits = hits[hits["pmid"].isin(pmids)]
    pairs = pd.DataFrame({"search": hits["search_id"].map(labels), "pmid": hits["pmid"]})
    counts = pairs.drop_duplicates()["search"].value_counts().sort_index()
    return {str(k): int(v) for k, v in counts.items()}


def _searches(db: sqlite3.Connection, sel: Selection,
              found: dict[str, int]) -> list[SearchUse]:
    """The searches covered (``found``: selected records per search name): the ``--saved``
    names (even when they found nothing selected), else every search that found one."""
    names = list(sel.names) or list(found)
    terms: dict[str, list[str]] = {}
    last: dict[str, str] = {}
    for label, term, finished in db.execute(
            "SELECT COALESCE(s.name, s.term), s.term, (SELECT max(finished) FROM runs u WHERE "
            "u.search_id = s.id AND u.status = 'complete') FROM searches s ORDER BY s.id"):
        terms.setdefault(label, []).append(term)
        if finished and finished > last.get(label, ""):
            last[label] = finished
    return [SearchUse(n, tuple(dict.fromkeys(terms.get(n, []))), found.get(n, 0), last.get(n))
            for n in names]


def _refreshes(db: sqlite3.Connection, first_stored: pd.Series,
               since: str | None) -> tuple[pd.DataFrame, int]:
    """Selected records added by each refresh (stored between its start and its end, or
    the next start when it never finished), and how many no refresh added."""
    table = pd.read_sql_query("SELECT id AS refresh, started, finished, status FROM refreshes "
                              "ORDER BY started, id", db)
    nxt = table["started"].shift(-1).fillna("\uffff")
    ends = table["finished"].fillna(nxt).to_numpy(dtype=str)
    stamps = first_stored.to_numpy(dtype=str)
    idx = np.searchsorted(table["started"].to_numpy(dtype=str), stamps, side="right") - 1
    inside = idx >= 0
    inside[inside] = stamps[inside] <= ends[idx[inside]]
    table["added"] = np.bincount(idx[inside], minlength=len(table)).astype("int64")
    if since:  # refreshes that ended before --since cannot have added a selected record
        table = table[ends >= since].reset_index(drop=True)
    return table, int((~inside).sum())


def _designs(db: sqlite3.Connection, records: pd.DataFrame) -> pd.DataFrame | None:
    """Study designs of the selected records per year (commonest design first, 'unknown'
    last), once the ``extractions`` table exists and holds rows for them; else None."""
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'extractions'").fetchone()
    if not exists:
        return None
    designs = pd.read_sql_query("SELECT pmid, COALESCE(NULLIF(trim(design), ''), 'unknown') "
                                "AS design FROM extractions", db)
    long = designs.merge(records[["pmid", "year"]], on="pmid")
    if long.empty:
        return None
    wide = long.groupby(["year", "design"], dropna=False).size().unstack(fill_value=0)
    order = wide.sum().sort_values(ascending=False, kind="stable").index
    order = [d for d in order if d != "unknown"] + (["unknown"] if "unknown" in wide else [])
    wide = wide[order].astype("int64").sort_index().reset_index()  # unknown year last
    wide.columns.name = None
    wide["year"] = wide["year"].astype("Int64")
    return wide


def _newest(db: sqlite3.Connection, records: pd.DataFrame) -> list[NewestRecord]:
    """The most recently published selected records (by year, then PMID: PubMed numbers
    records in the order it receives them)."""
    top = records.sort_values(["year", "pmid"], ascending=False, na_position="last")
    pmids = [int(p) for p in top["pmid"].head(NEWEST)]
    rows = {r[0]: r for r in db.execute(
        "SELECT r.pmid, r.pub_year, r.title, r.journal, l.topics, r.first_stored FROM records r "
        f"LEFT JOIN labels l ON l.pmid = r.pmid WHERE r.pmid IN ({','.join('?' * len(pmids))})",
        pmids)}
    return [NewestRecord(p, year, title, journal,
                         None if topics is None else tuple(json.loads(topics)), stored)
            for p, year, title, journal, topics, stored in (rows[p] for p in pmids)]


def _last_refresh(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT status, COALESCE(finished, started) FROM refreshes "
                     "ORDER BY id DESC LIMIT 1").fetchone()
    return f"{row[0]}, {row[1]}" if row else None
