"""Looking at the library from the terminal: ``list`` (one line per record), ``show`` (one
record as a reviewer reads it) and ``searches`` (every search the library knows).

``list`` selects with export's own query and topic filter (``export.selection_query``,
``export.selected_chunks``), so a list and an export with the same flags always hold the
same records. Study designs come from the ``extractions`` table (migration m006) as
``models.Extraction``; a library whose records were never extracted simply has no rows
there. The read queries live here, beside their only caller; this module returns typed
rows and ``render`` shows them.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kratomlit.cells import csv_text, json_line
from kratomlit.errors import KratomlitError, UsageError
from kratomlit.export import (
    ExportQuery,
    Tally,
    check_options,
    paged_rows,
    selected_chunks,
    selection_query,
)
from kratomlit.models import Author, ExportOptions, Extraction, Labels, LibraryRecord, Record
from kratomlit.store import Library
from kratomlit.store.extractions import extraction_from_row
from kratomlit.store.labels import labels_from_row
from kratomlit.store.records import record_from_json

LIST_FORMATS = ("table", "csv", "jsonl")
LIST_COLUMNS = ("pmid", "year", "first_author", "title", "journal", "topics", "design", "n",
                "first_seen")


# ---- study design (the extractions table) -----------------------------

@dataclass(frozen=True)
class StoredExtraction:
    """A record's extraction as stored: what the extractor found and which version found it."""

    extraction: Extraction
    version: str

    @classmethod
    def from_row(cls, version: str | None, data: str | None) -> StoredExtraction | None:
        found = extraction_from_row(data)
        return cls(found, version or "") if found else None

    def to_dict(self) -> dict[str, Any]:
        return {**self.extraction.to_dict(), "version": self.version}


def has_extractions(library: Library) -> bool:
    """Whether any record carries a study design yet (the table itself always exists:
    migration m006)."""
    return library.db.execute("SELECT 1 FROM extractions LIMIT 1").fetchone() is not None


def designs(library: Library, pmids: Iterable[int] | None = None) -> dict[int, StoredExtraction]:
    """PMID -> design for ``pmids`` (every extracted record when None); empty when no
    record has one yet."""
    if not has_extractions(library):
        return {}
    cols = "pmid, version, data FROM extractions"
    rows = (library.db.execute(f"SELECT {cols}") if pmids is None
            else library.rows_in(f"SELECT {cols} WHERE pmid IN ({{marks}})", pmids))
    found = ((r[0], StoredExtraction.from_row(r[1], r[2])) for r in rows)
    return {pmid: x for pmid, x in found if x is not None}


def _design_filter(library: Library, design: str | None) -> str | None:
    """``--design`` normalised; a usage error when the library holds no designs."""
    if design is None:
        return None
    if not has_extractions(library):
        raise UsageError("--design needs study designs, and this library holds none yet "
                         "(they are extracted into it by a later kratomlit version).")
    known = [r[0] for r in library.db.execute(
        "SELECT DISTINCT design FROM extractions WHERE design != '' ORDER BY 1")]
    if design.lower() not in {k.lower() for k in known}:
        raise UsageError(f"No record has the design {design!r}; designs in this library: "
                         f"{', '.join(known) or 'none'}.")
    return design.lower()


# ---- list ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ListRow:
    pmid: int
    year: int | None
    first_author: str
    title: str
    journal: str
    topics: list[str] | None  # None until classified
    design: str | None
    n: int | None
    first_seen: str  # UTC ISO 8601

    @classmethod
    def of(cls, item: LibraryRecord, design: StoredExtraction | None) -> ListRow:
        rec = item.record
        return cls(rec.pmid, rec.pub_year, rec.first_author, rec.title, rec.journal,
                   list(item.labels.topics) if item.labels else None,
                   design.extraction.design if design else None,
                   design.extraction.n if design else None,
                   item.first_stored)

    def to_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in LIST_COLUMNS}


@dataclass
class Listing:
    rows: list[ListRow]  # newest first (publication year, then PMID)
    matched: int  # records that passed every filter (more than ``rows`` with --limit)
    designs_known: bool  # the library has an extractions table
    notes: list[str] = field(default_factory=list)


_LIST_SQL = ("SELECT r.pmid, r.title, r.journal, r.pub_year, "
             "json_extract(r.data, '$.authors[0]'), r.first_stored, l.version, l.topics, "
             "l.scores FROM records r LEFT JOIN labels l ON l.pmid = r.pmid "
             "WHERE r.pmid > ? AND {where} ORDER BY r.pmid LIMIT ?")


def read_list_chunks(library: Library, query: ExportQuery, size: int
                     ) -> Iterator[list[LibraryRecord]]:
    """Export's selection, reading only what a list line shows: no abstract, MeSH or
    evidence to parse (four times faster than ``read_chunks`` on a large library)."""
    for rows in paged_rows(library, query, _LIST_SQL, size):
        yield [LibraryRecord(_light_record(library, *row[:5]), row[5], [],
                             labels_from_row(row[6], row[7], row[8], "{}")) for row in rows]


def _light_record(library: Library, pmid: int, title: str, journal: str, year: int | None,
                  first: str | None) -> Record:
    """A record with what a list line shows. Only the first author is parsed (the whole
    author list cost a third of ``list``); when PubMed marks that name as listed in error,
    the whole list is read so ``Record.first_author`` still applies its one rule."""
    authors: list[Author] = [json.loads(first)] if first else []
    if authors and not authors[0].get("valid", True):
        row = library.db.execute("SELECT json_extract(data, '$.authors') FROM records "
                                 "WHERE pmid = ?", (pmid,)).fetchone()
        authors = json.loads(row[0] or "[]")
    return Record(pmid=pmid, title=title, journal=journal, pub_year=year, authors=authors)


def _newest(item: LibraryRecord) -> tuple[int, int]:
    return (item.record.pub_year or 0, item.record.pmid)


def list_records(library: Library, options: ExportOptions, design: str | None = None,
                 limit: int | None = None) -> Listing:
    """The records ``options`` select (export's selection, so the two always agree),
    narrowed to ``design``, newest first, at most ``limit``. A topic filter that matched
    nothing because records are unclassified is an error that says so (exit 1)."""
    check_options(options)
    wanted_design = _design_filter(library, design)
    known = designs(library)
    query, _ = selection_query(library, options)
    tally, matched = Tally(), 0
    kept: list[LibraryRecord] = []  # with --limit: the newest so far
    rows: list[ListRow] = []  # without: every row, small (records are dropped per chunk)
    for chunk in selected_chunks(library, query, options, tally, read_list_chunks):
        if wanted_design:
            chunk = [r for r in chunk if _design_of(known, r.record.pmid) == wanted_design]
        matched += len(chunk)
        if limit:
            kept = heapq.nlargest(limit, [*kept, *chunk], key=_newest)
        else:
            rows += [ListRow.of(r, known.get(r.record.pmid)) for r in chunk]
    if not matched and tally.unlabelled:
        raise KratomlitError(tally.message(0) or "")
    if limit:
        rows = [ListRow.of(r, known.get(r.record.pmid)) for r in kept]  # only those shown
    else:
        rows.sort(key=lambda r: (r.year or 0, r.pmid), reverse=True)
    notes = [m for m in [tally.message(matched)] if m]
    return Listing(rows, matched, bool(known) or has_extractions(library), notes)


def _design_of(known: dict[int, StoredExtraction], pmid: int) -> str:
    found = known.get(pmid)
    return found.extraction.design.lower() if found else ""


def listing_text(rows: Sequence[ListRow], fmt: str, size: int = 1000) -> Iterator[str]:
    """Rows as CSV (formula cells neutralised, topics '; '-joined; the header once) or
    JSON lines, ``size`` rows per piece of text, so a long list is never one string."""
    for start in range(0, len(rows), size) if rows else [0]:
        dicts = [r.to_dict() for r in rows[start:start + size]]
        if fmt == "jsonl":
            yield "".join(json_line(d) for d in dicts)
        else:
            text = csv_text(LIST_COLUMNS, dicts)
            yield text if start == 0 else text.split("\n", 1)[1]


def list_format(fmt: str | None) -> str:
    name = (fmt or "table").lower()
    if name not in LIST_FORMATS:
        raise UsageError(f"Unknown --format {fmt!r}; choose one of {', '.join(LIST_FORMATS)}.")
    return name


# ---- show ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    """A search that found the record, and when (UTC ISO 8601)."""

    search_id: int
    name: str | None
    term: str
    first_seen: str
    last_seen: str


@dataclass
class RecordView:
    """One record with everything the library knows about it."""

    record: Record
    labels: Labels | None
    first_stored: str
    last_fetched: str
    deleted_at: str | None
    hits: list[Hit]
    design: StoredExtraction | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; times stay ISO 8601 (UTC)."""
        rec, lab = self.record, self.labels
        return {
            "record": {**rec.to_dict(), "url": rec.url, "retracted": rec.retracted,
                       "author_names": rec.author_names},
            "labels": None if lab is None else {
                "version": lab.version, "topics": lab.topics, "scores": lab.scores,
                "evidence": {t: [e.to_dict() for e in ev] for t, ev in lab.evidence.items()}},
            "library": {"first_stored": self.first_stored, "last_fetched": self.last_fetched,
                        "deleted_at": self.deleted_at},
            "searches": [vars(h) for h in self.hits],
            "design": self.design.to_dict() if self.design else None,
        }


def record_view(library: Library, pmid: int) -> RecordView:
    """Everything about ``pmid``; a usage error (exit 2) when the library never held it."""
    row = library.db.execute(
        "SELECT r.data, r.first_stored, r.last_fetched, r.deleted_at, l.version, l.topics, "
        "l.scores, l.evidence FROM records r LEFT JOIN labels l ON l.pmid = r.pmid "
        "WHERE r.pmid = ?", (pmid,)).fetchone()
    if row is None:
        raise UsageError(f"The library has never seen PMID {pmid}: no search stored it. "
                         f"Run 'kratomlit search {pmid}[uid]' to fetch it.")
    hits = [Hit(*h) for h in library.db.execute(
        "SELECT s.id, s.name, s.term, h.first_seen, h.last_seen FROM hits h JOIN searches s "
        "ON s.id = h.search_id WHERE h.pmid = ? ORDER BY h.first_seen, s.id", (pmid,))]
    return RecordView(record_from_json(row[0]), labels_from_row(*row[4:]), row[1], row[2],
                      row[3], hits, designs(library, [pmid]).get(pmid))


# ---- searches -----------------------------------------------------------------------

@dataclass(frozen=True)
class SearchInfo:
    """A search the library knows: its id (``export --search ID``), what it asks PubMed,
    how often it ran and what it holds."""

    id: int
    name: str | None
    term: str
    mindate: str
    maxdate: str
    runs: int
    last_run: str | None  # UTC ISO 8601 start of the latest run
    last_status: str | None
    count: int | None  # PubMed's Count at the latest run that got one
    held: int  # records found by it that the library holds (PubMed deletions left out)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def search_overview(library: Library) -> list[SearchInfo]:
    """Every search in the library, by id."""
    sql = (
        "SELECT s.id, s.name, s.term, s.mindate, s.maxdate, "
        "(SELECT count(*) FROM runs u WHERE u.search_id = s.id), "
        "(SELECT max(started) FROM runs u WHERE u.search_id = s.id), "
        "(SELECT status FROM runs u WHERE u.search_id = s.id ORDER BY started DESC LIMIT 1), "
        "(SELECT count FROM runs u WHERE u.search_id = s.id AND count IS NOT NULL "
        " ORDER BY started DESC LIMIT 1), "
        "(SELECT count(*) FROM hits h JOIN records r ON r.pmid = h.pmid "
        " WHERE h.search_id = s.id AND r.deleted_at IS NULL) "
        "FROM searches s ORDER BY s.id")
    return [SearchInfo(*row) for row in library.db.execute(sql)]
