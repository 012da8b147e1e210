"""The kratomlit command line: parse arguments, call the library, format what it returns.

This is the one place where errors become messages and exit codes (see ``errors.py``).
"""


import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from kratomlit import __version__, interrupt, render
from kratomlit.errors import KratomlitError, StorageError, UsageError
from kratomlit.files import check_output
from kratomlit.lazy_typer import LazyTyper

if TYPE_CHECKING:  # config reads TOML and platformdirs: not needed for --help
    from kratomlit.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

app = LazyTyper(
    name="kratomlit",
    help="Mine PubMed for kratom, mitragynine and opioid use disorder literature.\n\n"
    "Data come from NCBI E-utilities; run 'kratomlit about' for NCBI's disclaimer and "
    "copyright notice.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain click help: rich help formatting imports rich.markdown, 0.2 s on every --help
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
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
        except Exception as exc:
            if not _is_sqlite_error(exc):
                raise
            # e.g. a read-only library or a full disk mid-run
            render.error(f"A database in KRATOMLIT_HOME cannot be used: {exc}. Check that the "
                         "folder and its files are writable and the disk is not full; "
                         "everything stored so far is kept.")
            raise typer.Exit(StorageError.exit_code) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (interrupt.Terminated)
            render.error("Interrupted. Everything stored so far is kept and no partial file "
                         "was left; run again to resume.")
            raise typer.Exit(interrupt.exit_code(exc)) from None

    return wrapper  # type: ignore[return-value]


def _is_sqlite_error(exc: Exception) -> bool:
    """Without importing sqlite3 (5 M instructions of every start): a run that never
    imported it cannot have raised its errors."""
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(exc, sqlite3.Error)


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
    max_response_mb: Annotated[int | None, typer.Option(
        help="Largest answer accepted, in MB once decompressed, 1-4096 (env: "
        "KRATOMLIT_MAX_RESPONSE_MB).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    ctx.obj = {"home": home, "eutils_url": eutils_url, "email": email, "api_key": api_key,
               "timeout": timeout, "max_tries": max_tries, "max_response_mb": max_response_mb}


def settings_from(ctx: typer.Context) -> "Settings":
    from kratomlit.config import load_settings

    return load_settings(ctx.obj or {})


def _log_to_file(settings: "Settings") -> None:
    """Requests, retries and failures go to KRATOMLIT_HOME/logs/kratomlit.log (for cron)."""
    import logging

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
    no_classify: Annotated[bool, typer.Option(
        "--no-classify", help="Store records without topic labels.")] = False,
) -> None:
    """Search PubMed and store every hit in the library, fetching only what is new or revised.

    New records get topic labels as they are stored (--no-classify leaves that to
    'kratomlit classify').

    Example: kratomlit search --saved kratom-oud
    """
    from kratomlit.queries import resolve_search
    from kratomlit.search import search_pubmed

    settings = settings_from(ctx)
    query = resolve_search(settings.user_queries_dir, term, saved, mindate, maxdate)
    _log_to_file(settings)
    if not settings.email:
        render.warning("NCBI_EMAIL is not set. NCBI asks every tool to send a contact email; "
                       "set NCBI_EMAIL (or --email) so NCBI can reach you before blocking.")
    with render.progress_bar(f"Fetching {query.name or 'records'}") as progress:
        summary = search_pubmed(settings, query, limit=max_records, progress=progress,
                                classify=not no_classify)
    if as_json:
        render.print_json(summary.to_dict())
    else:
        render.search_summary(summary)
    summary.raise_for_status()


def _existing_library(settings: "Settings") -> Path:
    if not settings.library_path.exists():
        raise UsageError(f"There is no library at {settings.library_path} yet. Run "
                         "'kratomlit search' first (or set KRATOMLIT_HOME).")
    return settings.library_path


@app.command()
@handle_errors
def export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="File to write; '-' writes csv, tsv, jsonl, ris or bibtex to "
        "stdout (with --format).")],
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
    design: Annotated[str | None, typer.Option(
        help="Only records of these study designs: rct,observational,... (any of them).")
    ] = None,
    columns: Annotated[str | None, typer.Option(
        help="Only these columns, in this order: a,b,c (csv, tsv, xlsx, jsonl, parquet).")
    ] = None,
    excel: Annotated[bool, typer.Option(
        "--excel", help="CSV/TSV with the UTF-8 BOM Excel needs to show accents.")] = False,
) -> None:
    """Export library records, one row per PMID, with topic and study-design columns.

    Example: kratomlit export --format csv --output kratom.csv
    """
    from kratomlit.export import export_library, infer_format, parse_columns
    from kratomlit.models import ExportOptions
    from kratomlit.store import Library

    settings = settings_from(ctx)
    check_output(output, settings.own_files())
    since_date = _date_opt(since, end=False, what="--since")
    options = ExportOptions(
        fmt=infer_format(output, fmt), saved=saved, search_id=search_id,
        topics=tuple(topic or ()), min_score=min_score, year_from=year_from, year_to=year_to,
        since=since_date.isoformat() if since_date else None, new=new,
        columns=parse_columns(columns), excel=excel,
        designs=tuple(d.strip() for d in (design or "").split(",") if d.strip()))
    with Library(_existing_library(settings), readonly=True) as library:
        result = export_library(library, output, options)
    for message in result.warnings:
        render.warning(message)
    since_note = (f", new since {render.local_time(result.new_since)}" if result.new_since
                  else "")
    where = "stdout" if str(output) == "-" else str(output)
    render.note(f"Wrote {result.count} records to {where} ({result.fmt}{since_note}).")


@app.command(name="list")
@handle_errors
def list_cmd(
    ctx: typer.Context,
    saved: Annotated[str | None, typer.Option(
        help="Only records found by this saved search.")] = None,
    search_id: Annotated[int | None, typer.Option(
        "--search", help="Only records found by the search with this id (see 'kratomlit "
        "searches').")] = None,
    topic: Annotated[list[str] | None, typer.Option(
        help="Only records assigned this topic (repeatable: any of them).")] = None,
    min_score: Annotated[float | None, typer.Option(
        help="Only records scoring at least this (0-1) on --topic, or on any topic.")] = None,
    year_from: Annotated[int | None, typer.Option(help="Earliest publication year.")] = None,
    year_to: Annotated[int | None, typer.Option(help="Latest publication year.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only records first stored on or after this date: YYYY, YYYY/MM, YYYY/MM/DD."
    )] = None,
    design: Annotated[str | None, typer.Option(
        help="Only records of this study design (once the library holds designs).")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", "-n", min=1, help="Show the newest N records only.")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="table, csv or jsonl (csv/jsonl go to stdout for pipes).")
    ] = "table",
) -> None:
    """List library records, newest first, with the same filters as export.

    Example: kratomlit list --topic withdrawal --year-from 2020 --limit 20
    """
    from kratomlit.browse import list_format, list_records, listing_text
    from kratomlit.models import ExportOptions
    from kratomlit.store import Library

    fmt = list_format(fmt)
    since_date = _date_opt(since, end=False, what="--since")
    options = ExportOptions(
        fmt="jsonl", saved=saved, search_id=search_id, topics=tuple(topic or ()),
        min_score=min_score, year_from=year_from, year_to=year_to,
        since=since_date.isoformat() if since_date else None)
    with Library(_existing_library(settings_from(ctx))) as library:
        listing = list_records(library, options, design=design, limit=limit)
    for message in listing.notes:
        render.warning(message)
    if fmt == "table":
        render.record_list(listing)
    else:
        for text in listing_text(listing.rows, fmt):
            render.out.out(text, end="", highlight=False)


@app.command()
@handle_errors
def show(
    ctx: typer.Context,
    pmid: Annotated[int, typer.Argument(help="PubMed ID of a record in the library.")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the record as JSON on stdout (times in ISO 8601).")] = False,
) -> None:
    """Show one record as a reviewer reads it: abstract, topics with their evidence, the
    searches that found it and its history.

    Example: kratomlit show 38012345
    """
    from kratomlit.browse import record_view
    from kratomlit.store import Library

    with Library(_existing_library(settings_from(ctx))) as library:
        view = record_view(library, pmid)
    if as_json:
        render.print_json(view.to_dict())
    else:
        render.record_view(view)


@app.command()
@handle_errors
def searches(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per search on stdout.")] = False,
) -> None:
    """List every search the library holds: its id (for export/list --search), saved name,
    term, dates, runs and records held.

    Example: kratomlit searches
    """
    from kratomlit.browse import search_overview
    from kratomlit.store import Library

    with Library(_existing_library(settings_from(ctx))) as library:
        infos = search_overview(library)
    if as_json:
        render.print_json([i.to_dict() for i in infos])
    else:
        render.searches_table(infos)


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
    report_dir: Annotated[Path | None, typer.Option(
        "--report", help="After the run, rebuild the report of the whole library (see "
        "'kratomlit report') in this folder.")] = None,
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
    from kratomlit.queries import select_saved
    from kratomlit.refresh import refresh_saved

    settings = settings_from(ctx)
    selected, problems = select_saved(settings.user_queries_dir, names or [], queries_dir)
    _log_to_file(settings)
    if not settings.email and not quiet:
        render.warning("NCBI_EMAIL is not set; NCBI asks every tool for a contact email.")
    digest_dir = _folder(export_new) if export_new is not None else None  # fail before work
    if report_dir is not None:
        from kratomlit.report_page import check_target

        check_target(report_dir)  # fail before work
    bar = contextlib.nullcontext(None) if quiet else render.named_progress_bar()
    with _busy_as_json(as_json), bar as progress:  # --quiet: not even an empty bar
        summary = refresh_saved(settings, selected, problems, wait=wait, digest_dir=digest_dir,
                                progress=progress, on_wait=None if quiet else render.waiting)
    if report_dir is not None:
        _write_report(settings.library_path, report_dir, (), None, quiet or as_json)
    if as_json:
        render.print_json(summary.to_dict())
    elif not quiet:
        render.refresh_summary(summary)
    for problem in summary.problems:
        render.warning(problem)
    summary.raise_for_status(settings.log_dir / "kratomlit.log")


@app.command()
@handle_errors
def report(
    ctx: typer.Context,
    saved: Annotated[list[str] | None, typer.Option(
        help="Only records found by this saved search (repeatable: any of them).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only records first stored on or after this date: YYYY, YYYY/MM, YYYY/MM/DD."
    )] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write index.html, PNG charts and CSV tables to this folder "
        "(replacing an earlier report there) instead of printing a summary.")] = None,
) -> None:
    """Summarise the library: counts, review flow, topics per year, charts with --output.

    Example: kratomlit report --output ~/kratom/report
    """
    since_date = _date_opt(since, end=False, what="--since")
    path = _existing_library(settings_from(ctx))
    cutoff = since_date.isoformat() if since_date else None
    if output is not None:
        _write_report(path, output, tuple(saved or ()), cutoff, quiet=False)
        return
    from kratomlit.report import load
    from kratomlit.report_render import show_report

    show_report(load(path, tuple(saved or ()), cutoff))


def _write_report(library: Path, folder: Path, saved: tuple[str, ...], since: str | None,
                  quiet: bool) -> None:
    from kratomlit.report import load
    from kratomlit.report_page import check_target, write_report

    check_target(folder)  # before the library is read
    data = load(library, saved, since)
    write_report(data, folder)
    if not quiet:
        render.note(f"Wrote a report of {data.records} records to {folder / 'index.html'}.")


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


def _folder(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"Cannot create the folder {path}: {exc.strerror or exc}.") from exc
    return path


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
        "--output", "-o", help="Write csv/jsonl to this file instead of stdout ('-': "
        "stdout).")] = None,
) -> None:
    """List records new to each saved search since the last refresh (or a date); '*'
    marks those also new to the library.

    Example: kratomlit new --since 2026/11/01 -o new.csv
    """
    from kratomlit.digest import (
        check_names,
        digest_format,
        digest_since,
        digest_text,
        is_last_run,
        new_records,
        write_digest,
    )
    from kratomlit.store import Library

    settings = settings_from(ctx)
    if output is not None and str(output) == "-":
        output = None  # '-o -': stdout, never a file named '-'
    fmt = digest_format(fmt, output)
    if output is not None:
        check_output(output, settings.own_files())
    cutoff_date = None if is_last_run(since) else _date_opt(since, end=False, what="--since")
    with Library(_existing_library(settings), readonly=True) as library:
        check_names(library, saved or [])  # a typo first, not "no refresh yet"
        cutoff = digest_since(library, cutoff_date.isoformat() if cutoff_date else since)
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
    """Label records by topic (mechanism, withdrawal, safety, dosing) with their evidence,
    and give each its study design, people analysed (n) and doses.

    Example: kratomlit classify
    """
    from kratomlit.store import Library
    from kratomlit.topics import label_file, label_library

    if (input_path is None) != (output is None):
        raise UsageError("--input and --output go together.")
    if input_path is not None and redo_all:
        raise UsageError("--all applies to the library; --input files are always labelled "
                         "in full.")
    classifier = _load_classifier(model)
    if input_path is not None and output is not None:
        check_output(output, settings_from(ctx).own_files())
        summary = label_file(classifier, input_path, output)
    else:
        problems: list[str] = []
        with Library(_existing_library(settings_from(ctx))) as library:
            summary = label_library(library, problems, redo_all, classifier=classifier)
        for problem in problems:
            render.warning(problem)
    if as_json:
        from dataclasses import asdict

        render.print_json({k: v for k, v in asdict(summary).items() if v is not None})
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
    from kratomlit.queries import saved_searches

    problems: list[str] = []
    found = saved_searches(settings_from(ctx).user_queries_dir, queries_dir, problems)
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
    values = s.describe()
    if s.library_path.exists():
        with Library(s.library_path, readonly=True) as library:
            values.update(library.summary())
            last = library.runs.last_refresh()
        if last:  # a local, readable time for a person
            values["last refresh"] = f"{last[0]}, {render.local_time(last[1])}"
    render.key_values("kratomlit", values)


@app.command()
def about() -> None:
    """Show NCBI's disclaimer and copyright notice, which applies to all data kratomlit fetches.

    Example: kratomlit about
    """
    render.out.print(render.DISCLAIMER)


GLOBAL_OPTIONS = ("--home", "--eutils-url", "--email", "--api-key", "--timeout",
                  "--max-tries", "--max-response-mb")


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
    interrupt.handle_sigterm()
    option = misplaced_global(sys.argv[1:])
    if option:
        render.warning(f"{option} is a global option: put it before the command, e.g. "
                       f"'kratomlit {option} ... search TERM'.")
    app(prog_name="kratomlit")
    sys.exit(0)
