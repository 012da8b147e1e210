"""The kratomlit command line: parse arguments, call the library, format what it returns.

This is the one place where errors become messages and exit codes (see ``errors.py``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from kratomlit import __version__, render
from kratomlit.config import Settings, load_settings
from kratomlit.errors import IncompleteError, KratomlitError, StorageError, UsageError

if TYPE_CHECKING:
    from kratomlit.queries import SavedQuery
    from kratomlit.refresh import RefreshSummary

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
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="csv, tsv, xlsx, ris, bibtex, jsonl or parquet (default: from "
        "the file ending: .csv .tsv .xlsx .ris .bib .jsonl .parquet).")] = None,
    saved: Annotated[str | None, typer.Option(
        help="Only records found by this saved search.")] = None,
    search_id: Annotated[int | None, typer.Option(
        "--search", help="Only records found by the search with this id (an unknown id "
        "lists them).")] = None,
    topic: Annotated[list[str] | None, typer.Option(
        help="Only records assigned this topic (repeatable: any of them).")] = None,
    min_score: Annotated[float | None, typer.Option(
        help="Only records scoring at least this (0-1) on --topic, or on any topic.")] = None,
    year_from: Annotated[int | None, typer.Option(help="Earliest publication year.")] = None,
    year_to: Annotated[int | None, typer.Option(help="Latest publication year.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only records first stored on or after this date: YYYY, YYYY/MM, YYYY/MM/DD."
    )] = None,
    new: Annotated[bool, typer.Option(
        "--new", help="Only records the same search (--saved/--search, or the whole "
        "library) found since its previous export.")] = False,
    columns: Annotated[str | None, typer.Option(
        help="Only these columns, in this order: a,b,c (csv, tsv, xlsx, jsonl, parquet).")
    ] = None,
    excel: Annotated[bool, typer.Option(
        "--excel", help="CSV/TSV with the UTF-8 BOM Excel needs to show accents.")] = False,
) -> None:
    """Export library records, one row per PMID, with topic columns when classified.

    Example: kratomlit export --format csv --output kratom.csv
    """
    from kratomlit.export import ExportOptions, export_library, infer_format, parse_columns
    from kratomlit.store import Library

    settings = settings_from(ctx)
    since_date = _date_opt(since, end=False, what="--since")
    options = ExportOptions(
        fmt=infer_format(output, fmt), saved=saved, search_id=search_id,
        topics=tuple(topic or ()), min_score=min_score, year_from=year_from, year_to=year_to,
        since=since_date.isoformat() if since_date else None, new=new,
        columns=parse_columns(columns), excel=excel)
    with Library(_existing_library(settings)) as library:
        result = export_library(library, output, options)
    for message in result.warnings:
        render.warning(message)
    since_note = f", new since {result.new_since}" if result.new_since else ""
    render.note(f"Wrote {result.count} records to {output} ({result.fmt}{since_note}).")


@app.command()
@handle_errors
def refresh(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        help="Saved searches to refresh (default: every saved search).")] = None,
    queries_dir: Annotated[Path | None, typer.Option(
        "--queries", help="Run the saved searches in this folder instead of the shipped "
        "ones and KRATOMLIT_HOME/queries.")] = None,
    export_new: Annotated[Path | None, typer.Option(
        "--export-new", help="After the run, write what it found to a dated CSV in this "
        "folder.")] = None,
    wait: Annotated[float, typer.Option(
        min=0, help="Seconds to wait for another refresh on this home to finish.")] = 300,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print only errors (cron then mails only failures).")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the run's summary as JSON on stdout and nothing else.")] = False,
) -> None:
    """Bring saved searches up to date: new records, revised records, topic labels.

    Built for cron: no prompts, no colour or progress bars off a terminal, a log line per
    event in KRATOMLIT_HOME/logs, exit 0 complete, 10 partial, 9 another refresh running.

    Example: kratomlit refresh --quiet --export-new ~/kratom/new
    """
    from kratomlit.digest import dated_name, new_records, write_digest
    from kratomlit.eutils import EUtilsClient
    from kratomlit.refresh import refresh_lock, run_refresh
    from kratomlit.session import make_session
    from kratomlit.store import Library

    settings = settings_from(ctx)
    selected, problems = _refresh_queries(settings, names or [], queries_dir)
    _log_to_file(settings)
    if not settings.email and not quiet:
        render.warning("NCBI_EMAIL is not set; NCBI asks every tool for a contact email.")
    digest_dir = _folder(export_new) if export_new is not None else None  # fail before work
    classifier = _refresh_classifier(problems)
    with _busy_as_json(as_json), refresh_lock(settings.home, wait), \
            make_session(settings) as session, Library(settings.library_path) as library:
        with render.named_progress_bar() as progress:
            summary = run_refresh(library, selected,
                                  lambda: EUtilsClient.from_settings(session, settings),
                                  classifier, problems, progress=None if quiet else progress)
        if digest_dir is not None:
            path = dated_name(digest_dir)
            write_digest(new_records(library, library.digest_cutoff(before=summary.id)),
                         "csv", path)
            summary.digest = str(path)
    if as_json:
        render.print_json(summary.to_dict())
    elif not quiet:
        render.refresh_summary(summary)
    _refresh_exit(summary, settings)


@contextlib.contextmanager
def _busy_as_json(as_json: bool) -> Iterator[None]:
    """With --json, a run that found the lock taken still prints its JSON line, so a
    'refresh --json >> refresh.jsonl' log shows every run."""
    from kratomlit.errors import BusyError

    try:
        yield
    except BusyError as exc:
        if as_json:
            render.print_json({"status": "busy", "exit_code": exc.exit_code, "error": str(exc)})
        raise


def _refresh_queries(settings: Settings, names: list[str], folder: Path | None
                     ) -> tuple[list[SavedQuery], list[str]]:
    """The saved searches to run, and problems with query files that were skipped."""
    problems: list[str] = []
    found = _saved_searches(settings, folder, problems)
    unknown = [n for n in names if n not in found]
    if unknown:
        raise UsageError(f"No saved search named {', '.join(map(repr, unknown))}. Known: "
                         f"{', '.join(found) or 'none'}. {' '.join(problems)}".strip())
    if not found:
        raise UsageError(f"There are no saved searches in {folder}. {' '.join(problems)}"
                         .strip())
    selected = [found[n] for n in dict.fromkeys(names)] if names else list(found.values())
    return selected, [] if names else problems


def _saved_searches(settings: Settings, folder: Path | None,
                    problems: list[str]) -> dict[str, SavedQuery]:
    """``--queries DIR``'s saved searches alone, else the shipped ones and the user's;
    unreadable files are described in ``problems``."""
    from kratomlit.queries import list_queries

    if folder is None:
        return list_queries(settings.user_queries_dir, problems)
    if not folder.is_dir():
        raise UsageError(f"--queries {folder} is not a folder of saved-search .toml files.")
    return list_queries(folder, problems, shipped=False)


def _refresh_classifier(problems: list[str]) -> Any:
    """The topic classifier, or None (and a problem noted) when its model is broken."""
    from kratomlit.classify import LexiconError, default_classifier

    try:
        return default_classifier()
    except LexiconError as exc:
        problems.append(f"New records were not labelled: the topic model is broken ({exc}).")
        return None


def _folder(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"Cannot create the folder {path}: {exc.strerror or exc}.") from exc
    return path


def _refresh_exit(summary: RefreshSummary, settings: Settings) -> None:
    """Exit 0 when complete; otherwise say what failed, and exit 10 (partial) or the
    first failure's code (nothing saved)."""
    from kratomlit.errors import NCBIError, NetworkError, PartialError

    for problem in summary.problems:
        render.warning(problem)
    if summary.status == "complete":
        return
    failed = [s for s in summary.searches if s.status != "complete"]
    detail = "; ".join([*(f"{s.name} {s.status}: {s.error.rstrip('.')}" for s in failed),
                        *(p.rstrip(".") for p in summary.problems)])
    log = settings.log_dir / "kratomlit.log"
    if summary.status == "partial":
        done = len(summary.searches) - len(failed)
        rest = "the next refresh retries the rest" if failed else \
            "fix the problem and the next refresh includes it"
        raise PartialError(f"Refresh {summary.id} was partial ({detail}). {done} of "
                           f"{len(summary.searches)} saved searches ran and are up to date; "
                           f"{rest}. Log: {log}")
    error = {3: NetworkError, 4: NCBIError}.get(summary.exit_code, KratomlitError)
    raise error(f"Refresh {summary.id} saved nothing new: {detail}. The next refresh "
                f"catches up. Log: {log}")


@app.command(name="new")
@handle_errors
def new_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        help="'last' (default: what the latest refresh found) or a date: YYYY, YYYY/MM or "
        "YYYY/MM/DD.")
    ] = None,
    saved: Annotated[list[str] | None, typer.Option(
        help="Only this saved search (repeatable).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="table, csv or jsonl (default: table, or from the --output "
        "file's ending).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write csv/jsonl to this file instead of stdout.")] = None,
) -> None:
    """List records first seen since the last refresh (or a date), per saved search.

    Example: kratomlit new --since 2026/11/01 -o new.csv
    """
    from kratomlit.digest import (
        digest_format,
        digest_since,
        digest_text,
        is_last_run,
        new_records,
        write_digest,
    )
    from kratomlit.store import Library

    fmt = digest_format(fmt, output)
    cutoff_date = None if is_last_run(since) else _date_opt(since, end=False, what="--since")
    with Library(_existing_library(settings_from(ctx))) as library:
        known = library.search_names()
        unknown = sorted(set(saved or []) - set(known))
        if unknown:
            raise UsageError(f"The library has no saved search named {', '.join(unknown)}. "
                             f"Known: {', '.join(known) or 'none'}.")
        cutoff = cutoff_date.isoformat() if cutoff_date else digest_since(library, since)
        rows = new_records(library, cutoff, saved or [])
    if fmt == "table":
        render.digest_table(rows, cutoff)
    elif output is not None:
        write_digest(rows, fmt, output)
        render.note(f"Wrote {len(rows)} new records to {output} ({fmt}).")
    else:
        render.out.out(digest_text(rows, fmt), end="", highlight=False)


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
    model: Annotated[Path | None, typer.Option(
        "--model", help="A model file from `kratomlit train` (default: the shipped one).")] = None,
) -> None:
    """Label records by topic (mechanism, withdrawal, safety, dosing) with their evidence.

    Example: kratomlit classify
    """
    from kratomlit.topics import classify_library, label_file

    if (input_path is None) != (output is None):
        raise UsageError("--input and --output go together.")
    if input_path is not None and redo_all:
        raise UsageError("--all applies to the library; --input files are always labelled "
                         "in full.")
    classifier = _load_classifier(model)
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
    model: Annotated[Path | None, typer.Option(
        "--model", help="A model file from `kratomlit train` (default: the shipped one).")] = None,
    cv: Annotated[int, typer.Option(
        "--cv", help="Cross-validate training on the gold file with K folds instead "
                     "(needs the train extra).", min=0)] = 0,
    repeats: Annotated[int, typer.Option("--repeats", help="Repeats of --cv.", min=1)] = 3,
) -> None:
    """Measure the classifier on labelled abstracts: per-topic P/R/F1, misses, false alarms.

    Example: kratomlit eval --gold gold.jsonl
    """
    if cv:
        if model is not None:
            raise UsageError("--cv trains its own models in each fold; leave out --model.")
        from kratomlit.evaluate import cv_text

        cv_report = _train_module().cross_validate_files([gold], cv, repeats).to_dict()
        if as_json:
            render.print_json(cv_report)
        else:
            render.out.out(cv_text(cv_report), end="", highlight=False)
        return
    from kratomlit.topics import evaluate_file

    report = evaluate_file(_load_classifier(model), gold)
    if as_json:
        render.print_json(report.to_dict())
    else:
        render.eval_report(report)


@app.command()
@handle_errors
def train(
    gold: Annotated[list[Path], typer.Option("--gold", help="Labelled JSONL (as for eval); "
                                             "repeat for several files.")],
    output: Annotated[Path, typer.Option("--output", help="Where the model file goes.")],
    cv: Annotated[int, typer.Option("--cv", help="Folds for the cross-validated scores "
                                    "stored in the model (0: none).", min=0)] = 5,
    repeats: Annotated[int, typer.Option("--repeats", help="Repeats of --cv.", min=1)] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Fit the topic model on labelled abstracts and write it as a readable model file.

    Example: kratomlit train --gold labels.jsonl --output my_model.json
    """
    summary = _train_module().train_files(gold, output, cv, repeats)
    if as_json:
        render.print_json(summary)
    else:
        render.note(f"Wrote {summary['model']} (version {summary['version']}, "
                    f"{summary['features']} features, trained on {summary['trained_on']}).")
        if "cv_macro_f1" in summary:
            mean, sd = summary["cv_macro_f1"]
            render.note(f"Cross-validated macro-F1 {mean:.3f} ± {sd:.3f}.")


def _train_module() -> Any:
    try:
        from kratomlit import train as train_module
    except ImportError as exc:
        raise UsageError(f"Training needs scikit-learn ({exc.name} is missing): "
                         "pip install 'kratomlit[train]'.") from None
    return train_module


def _load_classifier(model: Path | None) -> Any:
    from kratomlit.classify import Classifier, ModelError, default_classifier

    try:
        return Classifier.load(model) if model is not None else default_classifier()
    except ModelError as exc:
        raise UsageError(f"The topic model cannot be used: {exc}") from exc


@app.command()
@handle_errors
def queries(
    ctx: typer.Context,
    terms: Annotated[bool, typer.Option("--terms", help="Show each PubMed term too.")] = False,
    queries_dir: Annotated[Path | None, typer.Option(
        "--queries", help="List (and check) the saved searches in this folder instead, as "
        "'refresh --queries' would run them.")] = None,
) -> None:
    """List saved searches (shipped ones and your own in KRATOMLIT_HOME/queries).

    Example: kratomlit queries --terms
    """
    problems: list[str] = []
    found = _saved_searches(settings_from(ctx), queries_dir, problems)
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
        "request limit": f"{s.requests_per_second}/s",
        "tries per request (KRATOMLIT_MAX_TRIES)": s.max_tries,
        "timeout (KRATOMLIT_TIMEOUT)": f"{s.timeout:g} s"}
    if s.library_path.exists():
        with Library(s.library_path) as library:
            values.update(library.counts())
            values["last refresh"] = library.last_refresh()
    render.key_values("kratomlit", values)


@app.command()
def about() -> None:
    """Show NCBI's disclaimer and copyright notice, which applies to all data kratomlit fetches.

    Example: kratomlit about
    """
    render.out.print(render.DISCLAIMER)


GLOBAL_OPTIONS = ("--home", "--eutils-url", "--email", "--api-key", "--timeout",
                  "--max-tries")


def misplaced_global(argv: list[str]) -> str | None:
    """A global option written after the command (click would only say 'No such option')."""
    command_seen, skip = False, False
    for arg in argv:
        name = arg.split("=", 1)[0]
        if skip:
            skip = False
        elif name in GLOBAL_OPTIONS:
            if command_seen:
                return name
            skip = "=" not in arg
        elif not arg.startswith("-"):
            command_seen = True
    return None


def main() -> None:
    """Console-script entry point."""
    option = misplaced_global(sys.argv[1:])
    if option:
        render.warning(f"{option} is a global option: put it before the command, e.g. "
                       f"'kratomlit {option} ... search TERM'.")
    app(prog_name="kratomlit")
    sys.exit(0)
