"""Library records -> rows with one documented schema (``models.COLUMNS``) -> a file in
the reviewer's format.

The library is read in PMID-ordered chunks (keyset paging; the query lives here, beside
its only caller) and each chunk goes straight to a streaming writer (``export_formats``),
so memory stays flat in the number of records. Every file is written to a temporary file
beside the target and renamed into place, so a failed export never leaves half a file.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kratomlit.errors import ExportError, KratomlitError, StorageError, UsageError
from kratomlit.files import atomic_path
from kratomlit.models import (
    COLUMNS,
    DESIGNS,
    TOPICS,
    ExportOptions,
    Labels,
    LibraryRecord,
    export_row,
)
from kratomlit.store import Library, now_iso
from kratomlit.store.core import loads
from kratomlit.store.extractions import extraction_from_row
from kratomlit.store.labels import labels_from_row
from kratomlit.store.records import record_from_json

if TYPE_CHECKING:
    from kratomlit.export_formats import Writer

CHUNK = 2000  # records read and written at a time; BibTeX and Parquet files depend on it
LOG_WAIT_S = 5.0  # how long the export log waits for a writer before giving up

# format -> file name endings that imply it
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",), "tsv": (".tsv", ".tab"), "xlsx": (".xlsx",), "ris": (".ris",),
    "bibtex": (".bib", ".bibtex"), "jsonl": (".jsonl", ".ndjson"),
    "parquet": (".parquet", ".pq"),
}
FORMATS = tuple(EXTENSIONS)
TABULAR = ("csv", "tsv", "xlsx", "jsonl", "parquet")  # the formats --columns applies to
BINARY = ("xlsx", "parquet")  # formats that cannot go to stdout (-o -)


@dataclass
class ExportResult:
    path: Path
    fmt: str
    count: int
    selector: str
    new_since: str | None = None  # the previous export's time, with --new
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExportQuery:
    """Which records an export reads; every field narrows the selection (None: no limit)."""

    search_ids: Sequence[int] | None = None
    stored_since: str | None = None  # records.first_stored >= this
    seen_since: str | None = None    # first found by one of ``search_ids`` at or after this
    year_from: int | None = None
    year_to: int | None = None
    designs: Sequence[str] = ()  # study designs (any of them)
    after: int = -1  # PMIDs above this only (where keyset paging starts)
    upto: int | None = None  # PMIDs up to this only (one slice of a parallel export)

    def sql(self) -> tuple[str, list[Any]]:
        where: list[str] = ["r.deleted_at IS NULL"]
        args: list[Any] = []
        if self.designs:
            where.append("EXISTS (SELECT 1 FROM extractions x WHERE x.pmid = r.pmid AND "
                         f"x.design IN ({','.join('?' * len(self.designs))}))")
            args.extend(self.designs)
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
                              ("r.pmid <= ?", self.upto),
                              ("r.pub_year >= ?", self.year_from),
                              ("r.pub_year <= ?", self.year_to)):
            if value is not None:
                where.append(clause)
                args.append(value)
        return " AND ".join(where), args


ChunkReader = Callable[[Library, ExportQuery, int], Iterator[list[LibraryRecord]]]


def read_chunks(library: Library, query: ExportQuery, size: int = CHUNK
                ) -> Iterator[list[LibraryRecord]]:
    """Records matching ``query`` in PMID order, ``size`` at a time, with the searches
    that found them and their labels. Pages by PMID (keyset), so memory stays flat however
    large the library is. The record's JSON comes as UTF-8 bytes, which orjson reads as
    they are: no ``str`` made and encoded back (half of SQLite's share of the read)."""
    sql = (
        "SELECT r.pmid, CAST(r.data AS BLOB), r.first_stored, (SELECT json_group_array(x) FROM ("
        "SELECT COALESCE(s.name, s.term) AS x FROM hits h JOIN searches s ON "
        "s.id = h.search_id WHERE h.pmid = r.pmid ORDER BY s.id)), "
        "l.version, l.topics, l.scores, l.evidence, e.version, e.data FROM records r "
        "LEFT JOIN labels l ON l.pmid = r.pmid LEFT JOIN extractions e ON e.pmid = r.pmid "
        "WHERE r.pmid > ? AND {where} "
        "ORDER BY r.pmid LIMIT ?")
    for rows in paged_rows(library, query, sql, size):
        chunk = [_library_record(*row) for row in rows]
        del rows
        yield chunk
        del chunk


def paged_rows(library: Library, query: ExportQuery, sql: str, size: int = CHUNK
               ) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of ``sql`` (``r`` the records table, first column ``r.pmid``; ``{where}``
    and the keyset parameters as in ``read_chunks``) for the records ``query`` selects,
    ``size`` at a time in PMID order: one selection for every reader of the library."""
    where, args = query.sql()
    statement = sql.format(where=where)
    last = query.after
    while True:
        rows = library.db.execute(statement, [last, *args, size]).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield rows


def _library_record(pmid: int, data: bytes, first_stored: str, searches: str,
                    version: str | None, topics: str | None, scores: str | None,
                    evidence: str | None, extractor: str | None, extracted: str | None
                    ) -> LibraryRecord:
    return LibraryRecord(record_from_json(data), first_stored,
                         list(dict.fromkeys(loads(searches))),  # a name run as two terms
                         labels_from_row(version, topics, scores, evidence),
                         extraction_from_row(extracted), extractor or "")


def infer_format(path: Path, fmt: str | None) -> str:
    """``fmt`` when given, otherwise the format the file name's ending implies."""
    if fmt:
        name = fmt.lower()
        if name not in EXTENSIONS:
            raise UsageError(f"Unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}.")
        return name
    if str(path) == "-":
        raise UsageError("Writing to stdout (-o -) needs --format: csv, tsv, jsonl, ris or "
                         "bibtex.")
    suffix = path.suffix.lower()
    for name, endings in EXTENSIONS.items():
        if suffix in endings:
            return name
    raise UsageError(f"Cannot tell the format from {path.name!r}; give --format "
                     f"({', '.join(FORMATS)}) or a file ending such as .csv or .ris.")


def parse_columns(text: str | None) -> tuple[str, ...]:
    """``a,b,c`` -> the columns in that order (empty: the format's default); unknown names
    are a usage error."""
    if not text:
        return ()
    names = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    unknown = [c for c in names if c not in COLUMNS]
    if unknown or not names:
        raise UsageError(f"Unknown --columns {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(COLUMNS)}.")
    return names


def check_options(options: ExportOptions) -> None:
    """Reject combinations that cannot mean anything, before the library is read."""
    wrong = [d for d in options.designs if d not in DESIGNS]
    if wrong:
        raise UsageError(f"Unknown --design {', '.join(wrong)}; choose from "
                         f"{', '.join(DESIGNS)}.")
    unknown = [t for t in options.topics if t not in TOPICS]
    if unknown:
        raise UsageError(f"Unknown --topic {', '.join(unknown)}; choose from {', '.join(TOPICS)}.")
    if options.saved and options.search_id is not None:
        raise UsageError("Give --saved NAME or --search ID, not both.")
    if options.min_score is not None and not 0 <= options.min_score <= 1:
        raise UsageError(f"--min-score {options.min_score} is outside 0-1.")
    lo, hi = options.year_from, options.year_to
    if lo is not None and hi is not None and lo > hi:
        raise UsageError(f"--year-from {lo} is after --year-to {hi}.")
    if options.custom_columns and options.fmt not in TABULAR:
        raise UsageError(f"--columns applies to {', '.join(TABULAR)}; {options.fmt} has its "
                         "own fixed fields.")
    if options.excel and options.fmt not in ("csv", "tsv"):
        raise UsageError("--excel applies to csv and tsv (xlsx is always Excel-ready).")


def export_library(library: Library, path: Path, options: ExportOptions) -> ExportResult:
    """Write the records ``options`` select to ``path`` atomically; log the export."""
    from kratomlit.export_formats import STDOUT, open_writer

    check_options(options)
    to_stdout = path == STDOUT
    if to_stdout and options.fmt in BINARY:
        raise UsageError(f"{options.fmt} is a binary format and cannot go to stdout ('-o -');"
                         f" give a file name, e.g. -o records.{options.fmt}.")
    started = now_iso()
    query, new_since = selection_query(library, options)
    tally = Tally()
    result = ExportResult(path, options.fmt, 0, options.selector, new_since)
    if not to_stdout:
        _check_folder(path)
    try:
        about = _about(library, options, query)
        target = contextlib.nullcontext(STDOUT) if to_stdout else atomic_path(path)
        with target as tmp, open_writer(options, tmp, about) as w, gc_paused():
            for count in _write_chunks(library, query, options, tally, w, about):
                result.count += count
            if not result.count and tally.unlabelled:
                raise KratomlitError(tally.message(0) or "")  # no empty file: exit 1
            w.finish(result.count)
            result.warnings = w.warnings + [m for m in [tally.message(result.count)] if m]
    except OSError as exc:
        raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    _log_export(library, "(stdout)" if to_stdout else str(path.resolve()), options, started,
                result)
    return result


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the block runs: an export makes millions of
    small objects (none of them in cycles), and the collector ran over them again and
    again; memory stays flat because each chunk is freed by reference counting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _log_export(library: Library, path: str, options: ExportOptions, started: str,
                result: ExportResult) -> None:
    """Log the export for ``--new``. The file is already in place, so a library that
    cannot take the note (read-only, full disk, a writer holding it) costs a warning,
    not the exit code: the exit code describes the file on disk."""
    try:
        with Library(library.path, busy_timeout=LOG_WAIT_S) as writable:
            writable.exports.record(options.selector, started, options.fmt, path,
                                    result.count, options.keeps_every_record,
                                    _options_log(options))
    except (StorageError, sqlite3.Error) as exc:
        result.warnings.append(f"{path} was written, but the library could not record the "
                               f"export ({exc}); a later 'export --new' will not count it.")


def _check_folder(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"Cannot write {path}: folder {folder} does not exist.")


def selection_query(library: Library, options: ExportOptions
                    ) -> tuple[ExportQuery, str | None]:
    """The library query for ``options``, and the ``--new`` cut-off it used."""
    ids = search_ids(library, options.saved, options.search_id)
    new_since = library.exports.last_complete(options.selector) if options.new else None
    return ExportQuery(search_ids=ids, stored_since=options.since, seen_since=new_since,
                       designs=options.designs,
                       year_from=options.year_from, year_to=options.year_to), new_since


def search_ids(library: Library, saved: str | None, search_id: int | None) -> list[int] | None:
    """The library's search ids for ``--saved NAME`` or ``--search ID`` (None: all)."""
    if saved:
        ids = library.runs.search_ids(saved)
        if not ids:
            known = ", ".join(library.runs.search_names()) or "none yet"
            raise UsageError(f"The library has no records from a saved search named "
                             f"{saved!r}; it holds records from: {known}. Check the name "
                             "('kratomlit searches' lists them), or run 'kratomlit search "
                             f"--saved {saved}' if it is a saved search not run yet.")
        return ids
    if search_id is None:
        return None
    known_rows = library.runs.searches()
    if search_id not in {s.id for s in known_rows}:
        listing = "; ".join(f"{s.id} = {s.name or s.term}" for s in known_rows[:20])
        raise UsageError(f"There is no search with id {search_id}. "
                         f"Searches: {listing or 'none yet'}.")
    return [search_id]


def _write_chunks(library: Library, query: ExportQuery, options: ExportOptions,
                  tally: Tally, writer: Writer, about: Mapping[str, str]) -> Iterator[int]:
    """Write every chunk with ``writer``; yields each one's record count. A large export
    in a format that allows it shares the work with a helper process on a second core
    (``export_parallel``, which runs ``helper_main`` there): the same chunks, the same
    file."""
    from kratomlit.export_parallel import helper_pays, shared

    parts = chunk_slices(library, query, CHUNK) if writer.parallel else []
    if not helper_pays(writer, parts):
        yield from _write_part(library, query, (query.after, query.upto), options, tally,
                               writer)
        return

    def take(answer: tuple[int, int, list[Any]]) -> int:
        count, unlabelled, prepared = answer
        tally.unlabelled += unlabelled
        for item in prepared:
            writer.write_prepared(item)
        return count

    yield from shared(__name__, (library.path, options, dict(about), query), parts,
                      lambda part: _write_part(library, query, part, options, tally, writer),
                      take)


def _write_part(library: Library, query: ExportQuery, part: tuple[int, int | None],
                options: ExportOptions, tally: Tally, writer: Writer) -> Iterator[int]:
    for rows in _rows(library, replace(query, after=part[0], upto=part[1]), options, tally):
        writer.write(rows)
        yield len(rows)


def chunk_slices(library: Library, query: ExportQuery, size: int
                 ) -> list[tuple[int, int | None]]:
    """The PMID ranges of the chunks keyset paging reads (``size`` records each, the last
    open-ended), from one pass over the selected PMIDs that keeps only every
    ``size``-th: memory stays flat however many records there are."""
    where, args = query.sql()
    bounds = [row[0] for row in library.db.execute(
        "SELECT pmid FROM (SELECT r.pmid AS pmid, row_number() OVER (ORDER BY r.pmid) AS n "
        f"FROM records r WHERE {where}) WHERE n % ? = 0", [*args, size])]
    return list(zip([query.after, *bounds], [*bounds, query.upto], strict=True))


def helper_main() -> None:
    """The export helper process's entry point (``export_parallel``)."""
    from kratomlit.export_parallel import serve

    serve(_prepared_parts)


def _prepared_parts(work: tuple[Path, ExportOptions, dict[str, str], ExportQuery],
                    parts: list[tuple[int, int | None]]
                    ) -> Iterator[tuple[int, int, list[Any]]]:
    """In the helper: each part's chunks, ``prepare``d, with its record count and the
    unlabelled records its filters skipped."""
    from kratomlit.export_formats import open_writer

    path, options, about, query = work
    with Library(path, readonly=True) as library, \
            open_writer(options, None, about) as writer, gc_paused():
        for after, upto in parts:
            tally, prepared, count = Tally(), [], 0
            for rows in _rows(library, replace(query, after=after, upto=upto), options,
                              tally):
                prepared.append(writer.prepare(rows))
                count += len(rows)
            yield count, tally.unlabelled, prepared


def _rows(library: Library, query: ExportQuery, options: ExportOptions,
          tally: Tally) -> Iterator[list[dict[str, Any]]]:
    """Rows with every column; each writer reads only ``options.columns`` from them."""
    for records in selected_chunks(library, query, options, tally):
        rows = [export_row(r) for r in records]
        del records  # one chunk alive at a time, not two, while the next is read
        yield rows
        del rows


@dataclass
class Tally:
    """What a selection passed over: records the query read that had no topic labels while
    a topic or score filter applied (they pass no such filter)."""

    unlabelled: int = 0

    def message(self, shown: int) -> str | None:
        """Why a topic filter may have kept too little (None when nothing was skipped)."""
        if not self.unlabelled:
            return None
        head = "No record matched: " if not shown else ""
        return (f"{head}{self.unlabelled} records have no topic labels yet; they are "
                "classified by search/refresh, or run 'kratomlit classify'.")


def selected_chunks(library: Library, query: ExportQuery, options: ExportOptions,
                    tally: Tally, reader: ChunkReader = read_chunks
                    ) -> Iterator[list[LibraryRecord]]:
    """Records ``query`` reads that pass ``options``' topic and score filters, in PMID
    order, chunk by chunk (empty chunks skipped). The one selection export and ``list``
    share, so they can never disagree; ``tally`` counts the unlabelled ones skipped.
    ``reader`` may read less of each record (``list`` needs no abstract or evidence)."""
    filtering = bool(options.topics) or options.min_score is not None
    for records in reader(library, query, CHUNK):
        if filtering:  # otherwise every record passes: no call to ``wanted`` for each
            tally.unlabelled += sum(r.labels is None for r in records)
            records = [r for r in records if wanted(r.labels, options)]
        if records:
            yield records
        del records


def wanted(labels: Labels | None, options: ExportOptions) -> bool:
    """``--topic``: assigned any of them; ``--min-score``: a score (of those topics, or
    of any topic) at least X. Unclassified records pass neither."""
    if not options.topics and options.min_score is None:
        return True
    if labels is None:
        return False
    topics = options.topics or TOPICS
    if options.topics and not set(options.topics) & set(labels.topics):
        return False
    if options.min_score is None:
        return True
    return any((labels.scores.get(t) or 0) >= options.min_score for t in topics)


def _options_log(options: ExportOptions) -> dict[str, Any]:
    return {k: v for k, v in asdict(options).items()
            if v not in (None, (), False) and k != "columns"}


def _about(library: Library, options: ExportOptions, query: ExportQuery) -> dict[str, str]:
    """How the file was made (the XLSX 'columns' sheet, Parquet metadata): when, by which
    version, from which search terms, with which options (as the CLI flags)."""
    from kratomlit import __version__

    about = {"exported at (UTC)": now_iso(), "kratomlit version": __version__,
             "format": options.fmt, "selection": options.selector}
    if query.search_ids is not None:
        ids = set(query.search_ids)
        about["search terms"] = " | ".join(s.term for s in library.runs.searches()
                                           if s.id in ids)
    else:
        about["search terms"] = "(none: every record in the library)"
    about.update(options.flags())
    if query.seen_since:
        about["new since"] = query.seen_since
    return about
