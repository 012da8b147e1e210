"""Everything the CLI shows a person: rich consoles, progress bars and tables.

Library modules never import this; they return data and the CLI hands it here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # for the checker only: importing them would pull requests into --help
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text as RichText

    from kratomlit.digest import NewRecord
    from kratomlit.evaluate import EvalReport
    from kratomlit.refresh import RefreshSummary
    from kratomlit.search import SearchSummary
    from kratomlit.topics import LabelSummary

ProgressFn = Callable[[int, int], None]  # (done, total)

class _Console:
    """A rich Console made on first use: rich.console and rich.table cost 45 ms to
    import, which ``kratomlit --help`` and ``about`` need not pay."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=True, **self._options)
        return getattr(self._console, name)


def Text(*args: Any, **kwargs: Any) -> RichText:  # noqa: N802 - stands in for the class
    from rich.text import Text as RichText

    return RichText(*args, **kwargs)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def Table(*args: Any, **kwargs: Any) -> RichTable:  # noqa: N802 - stands in for the class
    from rich.table import Table as RichTable

    return RichTable(*args, **kwargs)


out = cast("Console", _Console())
err = cast("Console", _Console(stderr=True))

DISCLAIMER = """\
kratomlit retrieves data from NCBI's E-utilities (PubMed). NCBI's Disclaimer and
Copyright notice applies to everything it fetches:
  https://www.ncbi.nlm.nih.gov/home/about/policies/

  PubMed data are produced by the U.S. National Library of Medicine (NLM). They include
  works of the U.S. Government that are not protected by U.S. copyright law but may be
  protected by non-US copyright law, and abstracts from publications that may be
  protected by U.S. or non-US copyright law. NLM assumes no responsibility or liability
  associated with use of copyrighted material; consult the publishers' notices (or legal
  counsel) before redistributing abstracts. NCBI/NLM do not warrant the accuracy or
  completeness of the data. See https://www.nlm.nih.gov/databases/download.html

kratomlit is not affiliated with or endorsed by NCBI or NLM. NCBI asks that large jobs
run on weekends or between 9 pm and 5 am US Eastern time."""


def error(message: str) -> None:
    err.print(f"[bold red]Error:[/] {escape(message)}")  # messages quote [tiab] terms


def warning(message: str) -> None:
    err.print(f"[yellow]Warning:[/] {escape(message)}")


def note(message: str) -> None:
    """A plain line on stderr (paths and terms are printed as written)."""
    err.print(Text(message))


def print_json(data: Any) -> None:
    """Indented on a terminal; one line otherwise, so cron can append JSON lines."""
    indent = 2 if out.is_terminal else None
    out.out(json.dumps(data, ensure_ascii=False, indent=indent, default=str), highlight=False)


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressFn]:
    """A progress bar on stderr (silent when stderr is not a terminal, e.g. under cron)."""
    with named_progress_bar() as update:
        yield lambda done, total: update(description, done, total)


@contextmanager
def named_progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """One progress bar for several searches: ``update(name, done, total)`` (silent off a
    terminal, e.g. under cron)."""
    from rich.progress import (  # only commands that fetch need it (not --help)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=err, disable=not err.is_terminal)
    task = bar.add_task("", total=None)

    def update(name: str, done: int, total: int) -> None:
        bar.update(task, description=escape(name), completed=done, total=total)

    with bar:
        yield update


def search_summary(summary: SearchSummary) -> None:
    title = Text(f"Search: {summary.name or summary.term}")  # terms hold [tiab]: not markup
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    rows = [("hits (PubMed Count)", summary.count), ("PMIDs listed", summary.listed),
            ("new records", summary.new), ("updated records", summary.updated),
            ("already held", summary.already_held),
            ("served from cache", summary.from_cache),
            ("network requests made", summary.network_requests),
            ("retries", summary.retries), ("search slices", summary.slices),
            ("labelled", summary.labelled)]
    if summary.not_returned:
        rows.append(("listed but not returned by NCBI", summary.not_returned))
    for label, value in rows:
        table.add_row(label, str(value))
    out.print(table)
    for w in summary.warnings:
        warning(w)


def refresh_summary(summary: RefreshSummary) -> None:
    """One row per saved search, then the run's totals."""
    table = Table(title=Text(f"Refresh {summary.id}: {summary.status}"), header_style="bold")
    for col in ("search", "status", "hits", "new", "updated", "requests", "note"):
        table.add_column(col, justify="left" if col in ("search", "status", "note")
                         else "right", overflow="fold")
    for s in summary.searches:
        table.add_row(s.name, s.status, str(s.hits), str(s.new), str(s.updated),
                      str(s.requests), Text(s.error or s.notes))
    out.print(table)
    revisions = (f"revised records refetched: {summary.revised} (modified in PubMed since "
                 f"{summary.revisions_since})" if summary.revisions_since
                 else "revisions: nothing to compare yet (first run of these searches)")
    out.print(Text(f"{revisions}; labelled: {summary.labelled}; network requests: "
                   f"{summary.requests}"))
    if summary.digest:
        out.print(Text(f"new records written to {summary.digest}"))


def digest_table(items: Sequence[NewRecord], since: str | None) -> None:
    title = f"{len(items)} records first seen since {since or 'the library began'}"
    table = Table(title=Text(title), header_style="bold")
    for col in ("search", "pmid", "year", "title", "topics"):
        table.add_column(col, overflow="fold")
    for item in items:
        rec = item.record
        table.add_row(*(Text(v) for v in (item.search, str(rec.pmid), str(rec.pub_year or ""),
                                          rec.title, "; ".join(item.topics or []))))
    out.print(table)


def key_values(title: str, values: Mapping[str, Any]) -> None:
    """A two-column table on a terminal; 'key: value' lines otherwise, never cut short."""
    if not out.is_terminal:
        for key, value in values.items():
            out.print(Text(f"{key}: {value}"))
        return
    table = Table(title=Text(title), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in values.items():
        table.add_row(key, Text(str(value)))
    out.print(table)


def rows_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=Text(title), header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(str(v)) for v in row))  # terms hold [tiab]: not markup
    out.print(table)


def classify_summary(summary: LabelSummary) -> None:
    values: dict[str, Any] = {"classifier version": summary.version,
                              "labelled now": summary.labelled}
    if summary.output is not None:
        values["written to"] = summary.output
    else:
        values["records in library"] = summary.library_records
        values.update({f"labelled now as {t}": n for t, n in summary.topics.items()})
        if summary.extractor_version:
            values["extractor version"] = summary.extractor_version
            values["design, n and doses extracted now"] = summary.extracted
            values.update({f"  design {d}": n for d, n in summary.designs.items()})
    key_values("Topic labels", values)


def eval_report(report: EvalReport) -> None:
    """Per-topic table, pooled F1, then every miss and false alarm with its evidence."""
    table = Table(title=f"Evaluation on {report.n} abstracts", header_style="bold")
    for col in ("topic", "precision", "recall", "F1", "support", "TP", "FP", "FN"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for t, m in report.per_topic.items():
        table.add_row(t, f"{m.precision:.3f}", f"{m.recall:.3f}", f"{m.f1:.3f}",
                      str(m.support), str(m.tp), str(m.fp), str(m.fn))
    out.print(table)
    out.print(f"micro-F1 {report.micro_f1:.3f}   macro-F1 {report.macro_f1:.3f}")
    if report.extraction is not None:
        from kratomlit.extract_eval import format_report

        out.print(Text("\nStudy design and n\n" + format_report(report.extraction)))
    for title, errors in (("Misses (gold topic not assigned)", report.misses),
                          ("False alarms (assigned, not gold)", report.false_alarms)):
        out.print(f"\n[bold]{title}: {len(errors)}[/]")
        for e in errors:
            phrases = "; ".join(ev["phrase"] for ev in e["evidence"]) or "no phrase fired"
            out.print(Text(f"  {e['pmid']}  {e['topic']}  score {e['score']:.3f}  {phrases}"))
            for ev in e["evidence"][:3]:
                out.print(Text(f"      {ev['source']}: \"{ev['sentence']}\""), style="dim")
