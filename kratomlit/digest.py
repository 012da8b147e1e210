"""What is new: records each search found for the first time since a refresh or a date.

This is the Monday-morning digest (``kratomlit new``) and the file ``refresh
--export-new`` writes. "Since the last refresh" means after the end of the refresh before
the latest finished one, so each finished refresh's digest holds exactly what was first
seen during it and since the one before (interrupted refreshes roll into the next).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from kratomlit.errors import ExportError, UsageError
from kratomlit.export import EXTENSIONS, make_row
from kratomlit.export_formats import escape_cell
from kratomlit.files import atomic_path
from kratomlit.store import Library

COLUMNS = ("search", "first_seen", "pmid", "title", "first_author", "journal", "year",
           "doi", "url", "topics")
FORMATS = ("table", "csv", "jsonl")
LAST_RUN = ("last", "last_run", "last-run")  # spellings of "since the last refresh"


def is_last_run(since: str | None) -> bool:
    return since is None or since.lower() in LAST_RUN


def digest_format(fmt: str | None, output: Path | None) -> str:
    """``fmt`` checked; when not given, the output file's ending decides (else a table)."""
    if fmt is None:
        suffix = output.suffix.lower() if output is not None else ""
        fmt = next((f for f in ("csv", "jsonl") if suffix in EXTENSIONS[f]), "")
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
    """The cutoff for ``since``: ``last`` (default) is the refresh before the latest."""
    if not is_last_run(since):
        return since
    latest = library.latest_finished_refresh()
    if latest is None:
        raise UsageError("No refresh has finished yet, so there is no 'last run' to compare "
                         "with. Run 'kratomlit refresh' first, or give --since DATE.")
    return library.digest_cutoff(before=latest)


def new_records(library: Library, since: str | None,
                names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Digest rows (``COLUMNS``) for records first seen after ``since``, per search."""
    return [_row(rec) for rec in library.new_hits(since, names)]


def _row(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The export's own row (one rule for first author and URL), cut to the digest's
    columns; ``first_seen`` is when this search first found it, topics None until
    classified."""
    row = make_row(rec)
    return {"search": rec["search"], "first_seen": rec["first_seen"],
            **{c: row[c] for c in COLUMNS[2:-1]}, "topics": rec["topics"]}


def digest_text(rows: Iterable[Mapping[str, Any]], fmt: str) -> str:
    """Digest rows as CSV (formula cells neutralised) or JSON lines."""
    if fmt == "jsonl":  # lists stay lists, as in export's JSONL
        return "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows)
    flat = [{**r, "topics": "; ".join(r["topics"] or [])} for r in rows]
    df = pd.DataFrame(flat, columns=list(COLUMNS))
    df["year"] = df["year"].astype("Int64")
    safe = df.apply(lambda col: col.map(lambda v: escape_cell(v) if isinstance(v, str) else v))
    return str(safe.to_csv(index=False, lineterminator="\n"))


def write_digest(rows: Iterable[Mapping[str, Any]], fmt: str, path: Path) -> None:
    """Write the digest to ``path`` atomically."""
    text = digest_text(rows, fmt)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.") from exc


def dated_name(folder: Path, when: datetime | None = None) -> Path:
    """``folder/kratomlit-new-YYYY-MM-DDTHHMMSSZ.csv``: one file per run, sorted by name."""
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%SZ")
    return folder / f"kratomlit-new-{stamp}.csv"
