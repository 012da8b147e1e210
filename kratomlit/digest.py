"""What is new: records each search found for the first time since a refresh or a date.

This is the Monday-morning digest (``kratomlit new``) and the file ``refresh
--export-new`` writes. "Since the last refresh" means after the end of the refresh before
the latest finished one, so each finished refresh's digest holds exactly what was first
seen during it and since the one before (interrupted refreshes roll into the next).
The queries live here, beside their only caller.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kratomlit.cells import escape_cell, json_line
from kratomlit.errors import ExportError, UsageError
from kratomlit.files import atomic_path
from kratomlit.models import Record
from kratomlit.store import Library
from kratomlit.store.records import record_from_json

COLUMNS = ("search", "first_seen", "pmid", "title", "first_author", "journal", "year",
           "doi", "url", "topics", "new_to_library")
FORMATS = ("table", "csv", "jsonl")
ENDINGS = {"csv": (".csv",), "jsonl": (".jsonl", ".ndjson")}
LAST_RUN = ("last", "last_run", "last-run")  # spellings of "since the last refresh"


@dataclass(frozen=True)
class NewRecord:
    """A record a saved search found for the first time at ``first_seen`` ("new to the
    search"); ``new_to_library`` when the library had not held it before the cut-off
    either; ``topics`` None until classified."""

    search: str
    first_seen: str
    record: Record
    topics: list[str] | None
    new_to_library: bool = True

    def row(self) -> dict[str, Any]:
        rec = self.record
        return {"search": self.search, "first_seen": self.first_seen, "pmid": rec.pmid,
                "title": rec.title, "first_author": rec.first_author, "journal": rec.journal,
                "year": rec.pub_year, "doi": rec.doi, "url": rec.url, "topics": self.topics,
                "new_to_library": self.new_to_library}


def is_last_run(since: str | None) -> bool:
    return since is None or since.lower() in LAST_RUN


def digest_format(fmt: str | None, output: Path | None) -> str:
    """``fmt`` checked; when not given, the output file's ending decides (else a table)."""
    if fmt is None:
        suffix = output.suffix.lower() if output is not None else ""
        fmt = next((f for f, endings in ENDINGS.items() if suffix in endings), "")
        if output is not None and not fmt:
            raise UsageError(f"Cannot tell the format from {output.name!r}; give --format "
                             "csv or jsonl, or a file ending .csv or .jsonl.")
        return fmt or "table"
    if fmt.lower() not in FORMATS:
        raise UsageError(f"Unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if output is not None and fmt.lower() == "table":
        raise UsageError("--output needs --format csv or jsonl.")
    return fmt.lower()


def digest_since(library: Library, since: str | None) -> str | None:
    """The cutoff for ``since``: ``last`` (default) is the refresh before the latest;
    anything else is already an ISO date."""
    if not is_last_run(since):
        return since
    row = library.db.execute("SELECT max(id) FROM refreshes WHERE status IN "
                             "('complete', 'partial')").fetchone()
    if row[0] is None:
        raise UsageError("No refresh has finished yet, so there is no 'last run' to compare "
                         "with. Run 'kratomlit refresh' first, or give --since DATE.")
    return refresh_cutoff(library, before=row[0])


def refresh_cutoff(library: Library, before: int) -> str | None:
    """End of the last refresh that finished (complete or partial) before refresh
    ``before``: what a refresh found is what was first seen after it."""
    row = library.db.execute("SELECT max(finished) FROM refreshes WHERE status IN "
                             "('complete', 'partial') AND id < ?", (before,)).fetchone()
    return row[0]


def new_records(library: Library, since: str | None,
                names: Sequence[str] = ()) -> list[NewRecord]:
    """Records first found by each saved search after ``since`` (all when None), per
    search, newest first; a record found by two searches is listed under each. Ad hoc
    searches (``search TERM``) are left out, as the README says. Unknown saved names are
    a usage error that lists the known ones."""
    check_names(library, names)
    return list(_new_hits(library, since, names))


def check_names(library: Library, names: Sequence[str]) -> None:
    """Unknown saved names are a usage error that lists the known ones (checked before
    anything else, so a typo is reported as a typo)."""
    known = library.runs.search_names()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise UsageError(f"The library has no saved search named {', '.join(unknown)}. "
                         f"Known: {', '.join(known) or 'none'}.")


def _new_hits(library: Library, since: str | None, names: Sequence[str]) -> Iterator[NewRecord]:
    where, args = ["r.deleted_at IS NULL", "s.name IS NOT NULL"], []
    if since:
        where.append("h.first_seen > ?")
        args.append(since)
    if names:
        where.append(f"s.name IN ({','.join('?' * len(names))})")
        args.extend(names)
    sql = ("SELECT s.name, h.first_seen, r.data, l.topics, r.first_stored FROM hits h "
           "JOIN searches s ON s.id = h.search_id JOIN records r ON r.pmid = h.pmid "
           "LEFT JOIN labels l ON l.pmid = h.pmid "
           f"WHERE {' AND '.join(where)} ORDER BY 1, h.first_seen DESC, h.pmid DESC")
    for search, first_seen, data, topics, stored in library.db.execute(sql, args):
        yield NewRecord(search, first_seen, record_from_json(data),
                        json.loads(topics) if topics else None,
                        since is None or stored > since)


def digest_text(items: Iterable[NewRecord], fmt: str) -> str:
    """Digest rows as CSV (formula cells neutralised, topics '; '-joined) or JSON lines
    (lists stay lists, as in export's JSONL)."""
    rows = [item.row() for item in items]
    if fmt == "jsonl":
        return "".join(json_line(r) for r in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        r["topics"] = "; ".join(r["topics"] or [])
        r["new_to_library"] = "yes" if r["new_to_library"] else "no"
        writer.writerow([escape_cell(v) if isinstance(v, str) else ("" if v is None else v)
                         for v in (r[c] for c in COLUMNS)])
    return buffer.getvalue()


def write_digest(items: Iterable[NewRecord], fmt: str, path: Path) -> None:
    """Write the digest to ``path`` atomically."""
    text = digest_text(items, fmt)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.") from exc


def dated_name(folder: Path, when: datetime | None = None) -> Path:
    """``folder/kratomlit-new-YYYY-MM-DDTHHMMSSZ.csv``: one file per run, sorted by name."""
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%SZ")
    return folder / f"kratomlit-new-{stamp}.csv"
