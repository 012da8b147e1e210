"""The kratomlit command line: parse arguments, call the library, format what it returns.

This is the one place where errors become messages and exit codes (see ``errors.py``).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from kratomlit import __version__, render
from kratomlit.config import Settings, load_settings
from kratomlit.errors import IncompleteError, KratomlitError, StorageError, UsageError

if TYPE_CHECKING:
    from kratomlit.queries import SavedQuery

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="kratomlit",
    help="Mine PubMed for kratom, mitragynine and opioid use disorder literature.\n\n"
    "Data come from NCBI E-utilities; run 'kratomlit about' for NCBI's disclaimer and "
    "copyright notice.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def handle_errors(fn: F) -> F:
    """Turn expected failures into one red line and their exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KratomlitError as exc:
            render.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except sqlite3.Error as exc:  # e.g. a read-only library or a full disk mid-run
            render.error(f"A database in KRATOMLIT_HOME cannot be used: {exc}. Check that the "
                         "folder and its files are writable and the disk is not full; "
                         "everything stored so far is kept.")
            raise typer.Exit(StorageError.exit_code) from None
        except KeyboardInterrupt:
            render.error("Interrupted. Everything stored so far is kept; run again to resume.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        render.out.print(f"kratomlit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        help="Folder for the library, HTTP cache and logs (env: KRATOMLIT_HOME).")] = None,
    eutils_url: Annotated[str | None, typer.Option(
        help="E-utilities base URL (env: KRATOMLIT_EUTILS_URL).")] = None,
    email: Annotated[str | None, typer.Option(
        help="Contact email sent to NCBI (env: NCBI_EMAIL).")] = None,
    api_key: Annotated[str | None, typer.Option(
        help="NCBI API key: 10 instead of 3 requests/s (env: NCBI_API_KEY).")] = None,
    timeout: Annotated[float | None, typer.Option(
        help="Seconds to wait for NCBI to connect or send (env: KRATOMLIT_TIMEOUT).")] = None,
    max_tries: Annotated[int | None, typer.Option(
        help="Tries per request before giving up, 1-50 (env: KRATOMLIT_MAX_TRIES).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    ctx.obj = {"home": home, "eutils_url": eutils_url, "email": email, "api_key": api_key,
               "timeout": timeout, "max_tries": max_tries}


def settings_from(ctx: typer.Context) -> Settings:
    return load_settings(ctx.obj or {})


def _log_to_file(settings: Settings) -> None:
    """Requests, retries and failures go to KRATOMLIT_HOME/logs/kratomlit.log (for cron)."""
    try:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.log_dir / "kratomlit.log", encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"Cannot write to {settings.log_dir}: {exc.strerror or exc}. "
                           "Check KRATOMLIT_HOME (it must be a writable folder).") from exc
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    logger = logging.getLogger("kratomlit")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _date_opt(value: str | None, *, end: bool, what: str) -> date | None:
    from kratomlit.queries import parse_date

    return parse_date(value, end=end, what=what) if value else None


@app.command()
@handle_errors
def search(
    ctx: typer.Context,
    term: Annotated[str | None, typer.Argument(
        help="PubMed query, e.g. '(kratom OR mitragynine) AND withdrawal'.")] = None,
    saved: Annotated[str | None, typer.Option(
        help="Run a saved search by name (see 'kratomlit queries').")] = None,
    mindate: Annotated[str | None, typer.Option(
        help="Earliest publication date: YYYY, YYYY/MM or YYYY/MM/DD.")] = None,
    maxdate: Annotated[str | None, typer.Option(
        help="Latest publication date: YYYY, YYYY/MM or YYYY/MM/DD.")] = None,
    max_records: Annotated[int | None, typer.Option(
        "--max", min=1, help="Retrieve at most N hits (PubMed's order, newest first).")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON on stdout and nothing else.")] = False,
) -> None:
    """Search PubMed and store every hit in the library, fetching only what is new or revised.

    Example: kratomlit search --saved kratom-oud
    """
    from kratomlit.eutils import EUtilsClient
    from kratomlit.search import run_search
    from kratomlit.session import make_session
    from kratomlit.store import Library

    settings = settings_from(ctx)
    query = _search_request(settings, term, saved, mindate, maxdate)
    _log_to_file(settings)
    if not settings.email:
        render.warning("NCBI_EMAIL is not set. NCBI asks every tool to send a contact email; "
                       "set NCBI_EMAIL (or --email) so NCBI can reach you before blocking.")
    with make_session(settings) as session, Library(settings.library_path) as library:
        client = EUtilsClient.from_settings(session, settings)
        with render.progress_bar(f"Fetching {query.name or 'records'}") as progress:
            summary = run_search(client, library, query.term, name=query.name or None,
                                 mindate=query.mindate, maxdate=query.maxdate,
                                 limit=max_records, progress=progress)
    if as_json:
        render.print_json(summary.to_dict())
    else:
        render.search_summary(summary)
    if not summary.complete:
        raise IncompleteError(f"PubMed listed {summary.listed} of {summary.count} hits; what "
                              "it listed is stored. Run the search again to complete it.")


def _existing_library(settings: Settings) -> Path:
    if not settings.library_path.exists():
        raise UsageError(f"There is no library at {settings.library_path} yet. Run "
                         "'kratomlit search' first (or set KRATOMLIT_HOME).")
    return settings.library_path


def _search_request(settings: Settings, term: str | None, saved: str | None,
                    mindate: str | None, maxdate: str | None) -> SavedQuery:
    """The term, name and dates a search runs with: a saved search, overridden by flags."""
    from kratomlit.queries import SavedQuery, get_query

    if (term is None) == (saved is None):
        raise UsageError("Give a search TERM or --saved NAME (one of them).")
    query = get_query(saved, settings.user_queries_dir) if saved else SavedQuery("", term or "")
    lo = _date_opt(mindate, end=False, what="--mindate") or query.mindate
    hi = _date_opt(maxdate, end=True, what="--maxdate") or query.maxdate
    if lo and hi and lo > hi:
        raise UsageError(f"--mindate {lo} is after --maxdate {hi}.")
    if not query.term.strip():
        raise UsageError("The search term is empty.")
    return SavedQuery(query.name, query.term, query.description, lo, hi)  # name "": ad hoc


@app.command()
@handle_errors
def export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, jsonl, xlsx or ris.")] = "csv",
    saved: Annotated[str | None, typer.Option(
        help="Only records found by this saved search.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only records first stored on or after this date: YYYY, YYYY/MM, YYYY/MM/DD."
    )] = None,
) -> None:
    """Export library records, one row per PMID, with topic columns when classified.

    Example: kratomlit export --format csv --output kratom.csv
    """
    from kratomlit.export import WRITERS, to_frame, write_table
    from kratomlit.store import Library

    settings = settings_from(ctx)
    fmt = fmt.lower()
    if fmt not in WRITERS:
        raise UsageError(f"Unknown --format {fmt!r}; choose one of {', '.join(WRITERS)}.")
    since_iso = _date_opt(since, end=False, what="--since")
    with Library(_existing_library(settings)) as library:
        if saved and saved not in library.search_names():
            raise UsageError(f"The library has no records from a saved search named {saved!r}. "
                             f"Run 'kratomlit search --saved {saved}' first.")
        rows = list(library.iter_records(
            search_name=saved, since=since_iso.isoformat() if since_iso else None))
        labels = library.labels_for([r["pmid"] for r in rows])
    write_table(to_frame(rows, labels), fmt, output)
    render.note(f"Wrote {len(rows)} records to {output} ({fmt}).")


@app.command()
@handle_errors
def classify(
    ctx: typer.Context,
    redo_all: Annotated[bool, typer.Option(
        "--all", help="Relabel every record, not only unlabelled or outdated ones.")] = False,
    input_path: Annotated[Path | None, typer.Option(
        "--input", help="Classify a JSONL file instead of the library (needs --output).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Where --input's labels go (JSONL, same order).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Label records by topic (mechanism, withdrawal, safety, dosing) with their evidence.

    Example: kratomlit classify
    """
    from kratomlit.classify import default_classifier
    from kratomlit.topics import classify_library, label_file

    if (input_path is None) != (output is None):
        raise UsageError("--input and --output go together.")
    if input_path is not None and redo_all:
        raise UsageError("--all applies to the library; --input files are always labelled "
                         "in full.")
    classifier = _load_classifier(default_classifier)
    if input_path is not None and output is not None:
        summary = label_file(classifier, input_path, output)
    else:
        from kratomlit.store import Library

        with Library(_existing_library(settings_from(ctx))) as library:
            summary = classify_library(classifier, library, redo_all=redo_all)
    if as_json:
        render.print_json(summary)
    else:
        render.classify_summary(summary)


@app.command(name="eval")
@handle_errors
def evaluate_gold(
    gold: Annotated[Path, typer.Option("--gold", help="JSONL with pmid, title, abstract, "
                                       "labels (and optional mesh, keywords, ...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Measure the classifier on labelled abstracts: per-topic P/R/F1, misses, false alarms.

    Example: kratomlit eval --gold gold.jsonl
    """
    from kratomlit.classify import default_classifier
    from kratomlit.topics import evaluate_file

    report = evaluate_file(_load_classifier(default_classifier), gold)
    if as_json:
        render.print_json(report.to_dict())
    else:
        render.eval_report(report)


def _load_classifier(load: Callable[[], Any]) -> Any:
    from kratomlit.classify import LexiconError

    try:
        return load()
    except LexiconError as exc:
        raise UsageError(f"The topic lexicon cannot be used: {exc}") from exc


@app.command()
@handle_errors
def queries(
    ctx: typer.Context,
    terms: Annotated[bool, typer.Option("--terms", help="Show each PubMed term too.")] = False,
) -> None:
    """List saved searches (shipped ones and your own in KRATOMLIT_HOME/queries).

    Example: kratomlit queries --terms
    """
    from kratomlit.queries import list_queries

    settings = settings_from(ctx)
    problems: list[str] = []
    found = list_queries(settings.user_queries_dir, problems)
    for problem in problems:
        render.warning(problem)
    columns = ["name", "description", "dates", *(["term"] if terms else [])]
    rows = [[q.name, q.description, _span(q.mindate, q.maxdate), *([q.term] if terms else [])]
            for q in found.values()]
    render.rows_table("Saved searches", columns, rows)


def _span(lo: date | None, hi: date | None) -> str:
    return f"{lo or '…'} to {hi or '…'}" if lo or hi else "any"


@app.command()
@handle_errors
def info(ctx: typer.Context) -> None:
    """Show where data lives, the settings in force and what the library holds.

    Example: kratomlit info
    """
    from kratomlit.store import Library

    s = settings_from(ctx)
    values: dict[str, Any] = {
        "home (KRATOMLIT_HOME)": s.home, "library": s.library_path, "HTTP cache": s.cache_path,
        "rate-limit state": s.ratelimit_path, "log": s.log_dir / "kratomlit.log",
        "your saved searches": s.user_queries_dir,
        "E-utilities URL": s.eutils_url, "email (NCBI_EMAIL)": s.email or "not set",
        "API key (NCBI_API_KEY)": "set" if s.api_key else "not set",
        "request limit": f"{s.requests_per_second}/s"}
    if s.library_path.exists():
        with Library(s.library_path) as library:
            values.update(library.counts())
    render.key_values("kratomlit", values)


@app.command()
def about() -> None:
    """Show NCBI's disclaimer and copyright notice, which applies to all data kratomlit fetches.

    Example: kratomlit about
    """
    render.out.print(render.DISCLAIMER)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="kratomlit")
    sys.exit(0)
