"""Saved searches: TOML files with ``name``, ``term`` and optional dates and description.

Shipped ones live in the package's ``queries/`` folder; a user's own go in
``KRATOMLIT_HOME/queries/`` and win over shipped ones with the same name.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
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
    """One saved search, checked: the one validation ``search``, ``refresh`` and
    ``queries`` share (a bad file gets the same message from each)."""
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
    description = data.get("description", "")
    if not isinstance(description, str):
        raise UsageError(f"Saved search {path}: 'description' must be a string.")
    lo = _opt_date(data.get("mindate"), False, path)
    hi = _opt_date(data.get("maxdate"), True, path)
    check_range(lo, hi, f"Saved search {path}: mindate", "maxdate")
    return SavedQuery(name=name, term=" ".join(term.split()), description=description,
                      mindate=lo, maxdate=hi, path=path)


def check_range(lo: date | None, hi: date | None, lo_name: str, hi_name: str) -> None:
    if lo and hi and lo > hi:
        raise UsageError(f"{lo_name} {lo} is after {hi_name} {hi}.")


def _opt_date(value: object, end: bool, path: Path) -> date | None:
    """A date as text (YYYY, YYYY/MM, YYYY/MM/DD) or a TOML date; never a date-time."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime) or not isinstance(value, (str, date)):
        raise UsageError(f"Saved search {path}: dates are written \"YYYY\", \"YYYY/MM\" or "
                         f"\"YYYY/MM/DD\" (got {value!r}).")
    if isinstance(value, date):
        return value
    return parse_date(value, end=end, what=f"Saved search {path}: date")


def list_queries(user_dir: Path | None = None, problems: list[str] | None = None,
                 shipped: bool = True) -> dict[str, SavedQuery]:
    """All saved searches by name; the user's folder overrides the shipped one
    (``shipped=False``: only the user's folder).

    A broken file is skipped and described in ``problems`` (when given), so one bad file
    does not disable every saved search; so is a second file in the same folder that
    uses a name already taken there.
    """
    found: dict[str, SavedQuery] = {}
    for folder in (packaged_queries_dir() if shipped else None, user_dir):
        if not (folder and folder.is_dir()):
            continue
        here: dict[str, Path] = {}
        for path in sorted(folder.glob("*.toml")):
            try:
                query = load_query_file(path)
                if query.name in here:
                    raise UsageError(f"Saved search {path} uses the name {query.name!r}, "
                                     f"already taken by {here[query.name]}; it was skipped.")
            except UsageError as exc:
                if problems is None:
                    raise
                problems.append(str(exc))
                continue
            here[query.name] = path
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


def resolve_search(user_dir: Path, term: str | None, saved: str | None,
                   mindate: str | None, maxdate: str | None) -> SavedQuery:
    """The term, name and dates a search runs with: a saved search, overridden by flags
    (name "" for an ad hoc term)."""
    if (term is None) == (saved is None):
        raise UsageError("Give a search TERM or --saved NAME (one of them).")
    query = get_query(saved, user_dir) if saved else SavedQuery("", term or "")
    lo = (parse_date(mindate, what="--mindate") if mindate else None) or query.mindate
    hi = (parse_date(maxdate, end=True, what="--maxdate") if maxdate else None) or query.maxdate
    check_range(lo, hi, "--mindate", "--maxdate")
    if not query.term.strip():
        raise UsageError("The search term is empty.")
    return SavedQuery(query.name, query.term, query.description, lo, hi, query.path)


def saved_searches(user_dir: Path, folder: Path | None,
                   problems: list[str]) -> dict[str, SavedQuery]:
    """``--queries DIR``'s saved searches alone, else the shipped ones and the user's;
    unreadable files are described in ``problems``."""
    if folder is None:
        return list_queries(user_dir, problems)
    if not folder.is_dir():
        raise UsageError(f"--queries {folder} is not a folder of saved-search .toml files.")
    return list_queries(folder, problems, shipped=False)


def select_saved(user_dir: Path, names: Sequence[str], folder: Path | None
                 ) -> tuple[list[SavedQuery], list[str]]:
    """The saved searches a refresh runs (the named ones, else all), and problems with
    query files that were skipped (only reported when running all)."""
    problems: list[str] = []
    found = saved_searches(user_dir, folder, problems)
    unknown = [n for n in names if n not in found]
    if unknown:
        raise UsageError(f"No saved search named {', '.join(map(repr, unknown))}. Known: "
                         f"{', '.join(found) or 'none'}. {' '.join(problems)}".strip())
    if not found:
        raise UsageError(f"There are no saved searches in {folder}. {' '.join(problems)}"
                         .strip())
    selected = [found[n] for n in dict.fromkeys(names)] if names else list(found.values())
    return selected, [] if names else problems
