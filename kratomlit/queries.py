"""Saved searches: TOML files with ``name``, ``term`` and optional dates and description.

Shipped ones live in the package's ``queries/`` folder; a user's own go in
``KRATOMLIT_HOME/queries/`` and win over shipped ones with the same name.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from kratomlit.errors import UsageError

_DATE = re.compile(r"^(\d{4})(?:[/-](\d{1,2})(?:[/-](\d{1,2}))?)?$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class SavedQuery:
    name: str
    term: str
    description: str = ""
    mindate: date | None = None
    maxdate: date | None = None
    path: Path | None = None


def packaged_queries_dir() -> Path:
    """``kratomlit/queries`` in an installed wheel, ``queries/`` in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "queries"
    return installed if installed.is_dir() else here.parent / "queries"


def parse_date(text: str, *, end: bool = False, what: str = "date") -> date:
    """``2020``, ``2020/03``, ``2020-03-15`` -> a date; ``end`` picks the last day of a span."""
    m = _DATE.match(text.strip())
    if not m:
        raise UsageError(f"{what} {text!r} is not a date: use YYYY, YYYY/MM or YYYY/MM/DD.")
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    if year < 1000:
        raise UsageError(f"{what} {text!r}: PubMed has nothing before the year 1000.")
    try:
        if month is None:
            return date(year, 12, 31) if end else date(year, 1, 1)
        if day is None:
            last = calendar.monthrange(year, int(month))[1]
            return date(year, int(month), last if end else 1)
        return date(year, int(month), int(day))
    except ValueError as exc:
        raise UsageError(f"{what} {text!r} is not a real date ({exc}).") from exc


def load_query_file(path: Path) -> SavedQuery:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"Saved search {path} cannot be read: {exc}.") from exc
    name, term = data.get("name", path.stem), data.get("term")
    if not isinstance(term, str) or not term.strip():
        raise UsageError(f"Saved search {path} needs a non-empty 'term' string.")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"Saved search {path}: name {name!r} must be lower-case letters, "
                         "digits, '-' or '_'.")
    unknown = set(data) - {"name", "term", "description", "mindate", "maxdate"}
    if unknown:
        raise UsageError(f"Saved search {path} has unknown keys: {', '.join(sorted(unknown))}.")
    return SavedQuery(
        name=name, term=" ".join(term.split()), description=str(data.get("description", "")),
        mindate=_opt_date(data.get("mindate"), False, path),
        maxdate=_opt_date(data.get("maxdate"), True, path), path=path)


def _opt_date(value: object, end: bool, path: Path) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    return parse_date(str(value), end=end, what=f"{path.name}: date")


def list_queries(user_dir: Path | None = None, problems: list[str] | None = None,
                 shipped: bool = True) -> dict[str, SavedQuery]:
    """All saved searches by name; the user's folder overrides the shipped one
    (``shipped=False``: only the user's folder).

    A broken file is skipped and described in ``problems`` (when given), so one bad file
    does not disable every saved search.
    """
    found: dict[str, SavedQuery] = {}
    for folder in (packaged_queries_dir() if shipped else None, user_dir):
        if folder and folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                try:
                    query = load_query_file(path)
                except UsageError as exc:
                    if problems is None:
                        raise
                    problems.append(str(exc))
                    continue
                found[query.name] = query
    return found


def get_query(name: str, user_dir: Path | None = None) -> SavedQuery:
    problems: list[str] = []
    queries = list_queries(user_dir, problems)
    if name not in queries:
        known = ", ".join(sorted(queries)) or "none"
        broken = f" Unreadable files: {' '.join(problems)}" if problems else ""
        raise UsageError(f"No saved search named {name!r}. Known: {known}. "
                         f"Run 'kratomlit queries' to see them.{broken}")
    return queries[name]
