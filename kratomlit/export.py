"""Library records -> rows with one documented schema -> a file in the reviewer's format.

The library is read in PMID-ordered chunks (keyset paging) and each chunk goes straight to
a streaming writer (``export_formats``), so memory stays flat in the number of records.
Every file is written to a temporary file beside the target and renamed into place, so a
failed export never leaves half a file. Rows keep native values (lists stay lists); each
writer flattens them as its format needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kratomlit.errors import ExportError, UsageError
from kratomlit.files import atomic_path
from kratomlit.parse import author_name, mesh_heading
from kratomlit.store import ExportQuery, Library, now_iso

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
TOPICS = ("mechanism", "withdrawal", "safety", "dosing")
SEP = "; "
CHUNK = 2000  # records read and written at a time

# column -> what it holds (README "Export columns" is written from this)
COLUMNS: dict[str, str] = {
    "pmid": "PubMed ID",
    "title": "article title, inline markup reduced to text",
    "abstract": "abstract; structured sections as 'LABEL: text' paragraphs",
    "authors": "authors as 'Last FM', collective names as written (list)",
    "first_author": "the first author as 'Last FM' (or a collective name)",
    "affiliations": "distinct author affiliations (list)",
    "journal": "journal title (book title for PubMed books)",
    "journal_iso": "ISO journal abbreviation",
    "year": "publication year (from MedlineDate when needed)",
    "pub_date": "publication date: YYYY-MM-DD, YYYY-MM, 'YYYY Season' or PubMed's MedlineDate",
    "volume": "volume",
    "issue": "issue",
    "pages": "pages",
    "doi": "DOI",
    "pmcid": "PubMed Central ID",
    "url": "PubMed page",
    "mesh": "MeSH descriptors, '*' marks a major topic, qualifiers after '/' (list)",
    "keywords": "author keywords (list)",
    "publication_types": "PubMed publication types (list)",
    "language": "language codes (list)",
    "retracted": "true when PubMed links a retraction notice",
    "corrections": "retraction/erratum links as 'Type: source (PMID n)' (list)",
    "searches": "saved-search names (or terms) that found the record (list)",
    "first_seen": "when the library first stored the record (UTC, ISO 8601)",
    "topics": "topics the classifier assigned (list; empty until classified)",
    **{f"score_{t}": f"classifier score for {t}, 0-1 (empty until classified)" for t in TOPICS},
    "classifier_version": "version of the classifier that made the labels",
}
LIST_COLUMNS = frozenset({"authors", "affiliations", "mesh", "keywords", "publication_types",
                          "language", "corrections", "searches", "topics"})
INT_COLUMNS = frozenset({"pmid", "year"})
FLOAT_COLUMNS = frozenset(f"score_{t}" for t in TOPICS)
BOOL_COLUMNS = frozenset({"retracted"})

# format -> file name endings that imply it
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",), "tsv": (".tsv", ".tab"), "xlsx": (".xlsx",), "ris": (".ris",),
    "bibtex": (".bib", ".bibtex"), "jsonl": (".jsonl", ".ndjson"),
    "parquet": (".parquet", ".pq"),
}
FORMATS = tuple(EXTENSIONS)
FLAGS = {"saved": "--saved", "search_id": "--search", "topics": "--topic",
         "min_score": "--min-score", "year_from": "--year-from", "year_to": "--year-to",
         "since": "--since", "new": "--new", "excel": "--excel"}  # option -> its CLI flag
TABULAR = ("csv", "tsv", "xlsx", "jsonl", "parquet")  # the formats --columns applies to


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; ``since`` is an ISO date, the rest as the CLI flags."""

    fmt: str
    saved: str | None = None
    search_id: int | None = None
    topics: tuple[str, ...] = ()
    min_score: float | None = None
    year_from: int | None = None
    year_to: int | None = None
    since: str | None = None
    new: bool = False
    columns: tuple[str, ...] = tuple(COLUMNS)
    excel: bool = False

    @property
    def selector(self) -> str:
        """What 'the same search' means for ``--new``: the saved name, the search id, or
        the whole library; the other filters do not matter."""
        if self.saved:
            return f"saved:{self.saved}"
        return f"search:{self.search_id}" if self.search_id is not None else "library"


@dataclass
class ExportResult:
    path: Path
    fmt: str
    count: int
    selector: str
    new_since: str | None = None  # the previous export's time, with --new
    warnings: list[str] = field(default_factory=list)


def infer_format(path: Path, fmt: str | None) -> str:
    """``fmt`` when given, otherwise the format the file name's ending implies."""
    if fmt:
        name = fmt.lower()
        if name not in EXTENSIONS:
            raise UsageError(f"Unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}.")
        return name
    suffix = path.suffix.lower()
    for name, endings in EXTENSIONS.items():
        if suffix in endings:
            return name
    raise UsageError(f"Cannot tell the format from {path.name!r}; give --format "
                     f"({', '.join(FORMATS)}) or a file ending such as .csv or .ris.")


def parse_columns(text: str | None) -> tuple[str, ...]:
    """``a,b,c`` -> the columns in that order; unknown names are a usage error."""
    if not text:
        return tuple(COLUMNS)
    names = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    unknown = [c for c in names if c not in COLUMNS]
    if unknown or not names:
        raise UsageError(f"Unknown --columns {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(COLUMNS)}.")
    return names


def check_options(options: ExportOptions) -> None:
    """Reject combinations that cannot mean anything, before the library is read."""
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
    if options.columns != tuple(COLUMNS) and options.fmt not in TABULAR:
        raise UsageError(f"--columns applies to {', '.join(TABULAR)}; {options.fmt} has its "
                         "own fixed fields.")
    if options.excel and options.fmt not in ("csv", "tsv"):
        raise UsageError("--excel applies to csv and tsv (xlsx is always Excel-ready).")


def export_library(library: Library, path: Path, options: ExportOptions) -> ExportResult:
    """Write the records ``options`` select to ``path`` atomically; record the export."""
    from kratomlit.export_formats import open_writer

    check_options(options)
    started = now_iso()
    query, new_since = _query(library, options)
    result = ExportResult(path, options.fmt, 0, options.selector, new_since)
    _check_folder(path)
    try:
        about = _about(library, options, query)
        with atomic_path(path) as tmp, open_writer(options, tmp, about) as w:
            for chunk in _chunks(library, query, options):
                w.write(chunk)
                result.count += len(chunk)
            w.finish(result.count)
            result.warnings = w.warnings
    except OSError as exc:
        raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    library.record_export(options.selector, started, options.fmt, str(path.resolve()),
                          result.count, _filters(options))
    return result


def _check_folder(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"Cannot write {path}: folder {folder} does not exist.")


def _query(library: Library, options: ExportOptions) -> tuple[ExportQuery, str | None]:
    """The library query for ``options``, and the ``--new`` cut-off it used."""
    ids = _search_ids(library, options)
    new_since = library.last_export(options.selector) if options.new else None
    return ExportQuery(search_ids=ids, stored_since=options.since, seen_since=new_since,
                       year_from=options.year_from, year_to=options.year_to), new_since


def _search_ids(library: Library, options: ExportOptions) -> list[int] | None:
    if options.saved:
        ids = library.search_ids(options.saved)
        if not ids:
            raise UsageError(f"The library has no records from a saved search named "
                             f"{options.saved!r}. Run 'kratomlit search --saved "
                             f"{options.saved}' first.")
        return ids
    if options.search_id is None:
        return None
    known = library.searches()
    if options.search_id not in {s.id for s in known}:
        listing = "; ".join(f"{s.id} = {s.name or s.term}" for s in known[:20])
        raise UsageError(f"There is no search with id {options.search_id}. "
                         f"Searches: {listing or 'none yet'}.")
    return [options.search_id]


def _chunks(library: Library, query: ExportQuery,
            options: ExportOptions) -> Iterator[list[dict[str, Any]]]:
    for records in library.export_chunks(query, CHUNK):
        rows = [make_row(r) for r in records if _wanted(r.get("label"), options)]
        del records  # one chunk alive at a time, not two, while the next is read
        if rows and options.fmt in TABULAR:
            rows = [{c: row[c] for c in options.columns} for row in rows]
        if rows:
            yield rows
        del rows


def _wanted(label: Mapping[str, Any] | None, options: ExportOptions) -> bool:
    """``--topic``: assigned any of them; ``--min-score``: a score (of those topics, or
    of any topic) at least X. Unclassified records pass neither."""
    if not options.topics and options.min_score is None:
        return True
    if label is None:
        return False
    topics = options.topics or TOPICS
    if options.topics and not set(options.topics) & set(label["topics"]):
        return False
    if options.min_score is None:
        return True
    return any((label["scores"].get(t) or 0) >= options.min_score for t in topics)


def make_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    """One record (as ``Library.export_chunks`` gives it) -> every column in ``COLUMNS``."""
    authors = [author_name(a) for a in rec["authors"] if a.get("valid", True)]  # ValidYN="N"
    affiliations = dict.fromkeys(
        a for au in rec["authors"] if au.get("valid", True) for a in au["affiliations"])
    label = rec.get("label") or {}
    scores = label.get("scores", {})
    return {
        "pmid": int(rec["pmid"]), "title": rec["title"], "abstract": rec["abstract"],
        "authors": authors, "first_author": authors[0] if authors else "",
        "affiliations": list(affiliations), "journal": rec["journal"],
        "journal_iso": rec["journal_iso"], "year": rec["pub_year"],
        "pub_date": rec["pub_date"], "volume": rec["volume"], "issue": rec["issue"],
        "pages": rec["pages"], "doi": rec["doi"], "pmcid": rec["pmcid"],
        "url": PUBMED_URL.format(pmid=rec["pmid"]),
        "mesh": [mesh_heading(m) for m in rec["mesh"]], "keywords": list(rec["keywords"]),
        "publication_types": list(rec["publication_types"]),
        "language": list(rec["languages"]),
        "retracted": any(c["type"] == "RetractionIn" for c in rec["corrections"])
        or "Retracted Publication" in rec["publication_types"],
        "corrections": [_correction(c) for c in rec["corrections"]],
        "searches": list(rec.get("searches", [])), "first_seen": rec.get("first_stored", ""),
        "topics": list(label.get("topics", [])),
        **{f"score_{t}": scores.get(t) for t in TOPICS},
        "classifier_version": label.get("version", ""),
    }


def _correction(c: Mapping[str, str]) -> str:
    return f"{c['type']}: {c['source']}" + (f" (PMID {c['pmid']})" if c["pmid"] else "")


def _filters(options: ExportOptions) -> dict[str, Any]:
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
        about["search terms"] = " | ".join(s.term for s in library.searches() if s.id in ids)
    else:
        about["search terms"] = "(none: every record in the library)"
    for key, value in _filters(options).items():
        if key in FLAGS:
            about[FLAGS[key]] = ", ".join(value) if isinstance(value, tuple) else str(value)
    if query.seen_since:
        about["new since"] = query.seen_since
    return about
