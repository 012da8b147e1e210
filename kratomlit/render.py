"""Everything the CLI shows a person: rich consoles, progress bars and tables.

Library modules never import this; they return data and the CLI hands it here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # for the checker only: importing them would pull requests into --help
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text as RichText

    from kratomlit.browse import Listing, RecordView, SearchInfo
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


def waiting(seconds: float) -> None:
    """Said when a refresh finds another one running and waits for it."""
    minutes = f" ({seconds / 60:g} min)" if seconds >= 120 else ""
    note(f"Another refresh is running on this KRATOMLIT_HOME; waiting up to {seconds:g} s"
         f"{minutes} for it to finish (--wait SECONDS to change).")


def print_json(data: Any) -> None:
    """Indented on a terminal; one line otherwise, so cron can append JSON lines."""
    import json  # here, not at the top: --help and most commands print no JSON

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
    if not err.is_terminal:  # cron, pipes: no bar, and no rich.progress import (~25 ms)
        yield lambda name, done, total: None
        return
    from rich.progress import (  # only commands that fetch need it (not --help)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=err)
    task = bar.add_task("", total=None)

    def update(name: str, done: int, total: int) -> None:
        bar.update(task, description=escape(name), completed=done, total=total)

    with bar:
        yield update


def local_time(iso: str | None) -> str:
    """A stored UTC ISO time as a local, readable one ('4 Dec 2026 15:06'); JSON output
    keeps the ISO form. Text that is not an ISO time is returned as it is."""
    from datetime import datetime

    if not iso:
        return ""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is not None:
        when = when.astimezone()
    return f"{when.day} {when:%b %Y %H:%M}"


def date_range(mindate: str, maxdate: str) -> str:
    return f"{mindate or '…'} to {maxdate or '…'}" if mindate or maxdate else "any date"


def search_summary(summary: SearchSummary) -> None:
    title = Text(f"Search {summary.search_id}: {summary.name or summary.term} "
                 f"({date_range(summary.mindate, summary.maxdate)})")  # [tiab]: not markup
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
    for col in ("search", "status", "hits", "new to library", "new to search", "updated",
                "requests", "note"):
        table.add_column(col, justify="left" if col in ("search", "status", "note")
                         else "right", overflow="fold")
    for s in summary.searches:
        table.add_row(s.name, s.status, str(s.hits), str(s.new), str(s.new_to_search),
                      str(s.updated), str(s.requests), Text(s.error or s.notes))
    out.print(table)
    revisions = (f"revised records refetched: {summary.revised} (modified in PubMed since "
                 f"{local_time(summary.revisions_since)})" if summary.revisions_since
                 else "revisions: nothing to compare yet (first run of these searches)")
    out.print(Text(f"{revisions}; labelled: {summary.labelled}; network requests: "
                   f"{summary.requests}"))
    out.print(Text("new to library: records stored for the first time; new to search: "
                   "records the search found for the first time (some already held from "
                   "another search), which 'kratomlit new' lists."), style="dim")
    if summary.digest:
        out.print(Text(f"new records written to {summary.digest}"))


def digest_table(items: Sequence[NewRecord], since: str | None) -> None:
    """New to each saved search (what ``new`` lists), marking those new to the library."""
    when = local_time(since) if since else "the library began"
    fresh = sum(i.new_to_library for i in items)
    title = (f"{len(items)} records new to their saved search since {when} ({fresh} of "
             "them new to the library, marked *)")
    table = Table(title=Text(title), header_style="bold")
    for col in ("search", "pmid", "year", "title", "topics"):
        table.add_column(col, overflow="fold")
    for item in items:
        rec = item.record
        pmid = f"{rec.pmid}{'*' if item.new_to_library else ''}"
        table.add_row(*(Text(v) for v in (item.search, pmid, str(rec.pub_year or ""),
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


def record_list(listing: Listing) -> None:
    """One line per record, fitted to the terminal's width: the other columns keep their
    width (up to a cap) and the title gets what is left, shortened with an ellipsis."""
    more = f" (newest {len(listing.rows)} shown)" if len(listing.rows) < listing.matched else ""
    cols = ["pmid", "year", "first author", "title", "topics",
            *(["design", "n"] if listing.designs_known else [])]
    rows = []
    for row in listing.rows:
        topics = "—" if row.topics is None else ", ".join(row.topics)
        cells = [str(row.pmid), str(row.year or ""), row.first_author, row.title, topics]
        if listing.designs_known:
            cells += [row.design or "", "" if row.n is None else str(row.n)]
        rows.append([" ".join(c.split()) for c in cells])  # one line each
    caps = {"first author": 18, "topics": 20, "design": 16}
    table = Table(title=Text(f"{listing.matched} records{more}"), header_style="bold",
                  box=None, pad_edge=False, expand=True)
    for i, col in enumerate(cols):
        if col == "title":
            table.add_column(col, ratio=1)
            continue
        width = max([len(col), *(len(r[i]) for r in rows)])
        table.add_column(col, no_wrap=True, overflow="ellipsis",
                         width=min(width, caps.get(col, width)),
                         justify="right" if col in ("pmid", "year", "n") else "left")
    for cells in rows:
        table.add_row(*(Text(c, no_wrap=True, overflow="ellipsis") for c in cells))
    out.print(table)


def _highlighted(sentence: str, phrases: Sequence[str]) -> RichText:
    """The sentence with each case-insensitive occurrence of the phrases in bold yellow."""
    import re

    text = Text(sentence)
    for phrase in phrases:
        if phrase.strip():
            text.highlight_regex(
                "(?i)" + r"\s+".join(re.escape(w) for w in phrase.split()), style="bold yellow")
    return text


def _by_sentence(evidence: Sequence[Any]) -> dict[tuple[str, str], list[str]]:
    """(source, sentence) -> the phrases that fired in it, strongest first, each once."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for ev in evidence:
        phrases = grouped.setdefault((ev.source, ev.sentence or ev.phrase), [])
        if ev.phrase not in phrases:
            phrases.append(ev.phrase)
    return grouped


def record_view(view: RecordView) -> None:
    """The record as a reviewer reads it: citation, links, abstract by section, topics with
    evidence, design, the searches that found it and its history in the library."""
    from kratomlit.models import correction_text

    rec, lab = view.record, view.labels
    if view.deleted_at:
        out.print(Text(f"PubMed deleted this record on {local_time(view.deleted_at)}; the "
                       "library keeps its last copy and leaves it out of exports.",
                       style="bold red"))
    if rec.retracted:
        out.print(Text("RETRACTED", style="bold red"))
    for c in rec.corrections:
        out.print(Text(correction_text(c), style="bold red" if "Retraction" in c["type"]
                       else "bold"))
    out.print(Text(rec.title or "(no title)", style="bold"))
    out.print(Text(", ".join(rec.author_names) or "(no authors)"))
    where = rec.volume + (f"({rec.issue})" if rec.issue else "")
    where += (":" if where and rec.pages else "") + rec.pages
    cite = ", ".join(x for x in (rec.journal, rec.pub_date or str(rec.pub_year or ""), where)
                     if x)
    out.print(Text(cite, style="italic"))
    ids = [f"PMID {rec.pmid}", *([f"DOI {rec.doi}"] if rec.doi else []),
           *([rec.pmcid] if rec.pmcid else []), rec.url]
    out.print(Text("  ".join(ids), style="dim"))
    if rec.publication_types:
        out.print(Text("Type: " + "; ".join(rec.publication_types), style="dim"))
    out.print()
    _abstract(rec.abstract_sections, rec.abstract)
    _topics(lab)
    if view.design is not None:
        d = view.design.extraction
        out.print(Text(f"\nDesign: {d.design or 'unknown'} (confidence "
                       f"{d.design_confidence:.2f}); n = "
                       f"{'not stated' if d.n is None else d.n}", style="bold"))
        if d.doses:
            out.print(Text("Doses: " + d.doses_text))
    _history(view)


def _abstract(sections: Sequence[Any], abstract: str) -> None:
    if not sections:
        out.print(Text(abstract or "(no abstract)"))
        return
    for s in sections:
        text = Text()
        if s["label"]:
            text.append(f"{s['label']}: ", style="bold")
        text.append(s["text"])
        out.print(text)


def _topics(lab: Any) -> None:
    out.print()
    if lab is None:
        out.print(Text("Topics: not classified yet (run 'kratomlit classify').", style="dim"))
        return
    assigned = ", ".join(lab.topics) or "none"
    out.print(Text(f"Topics: {assigned}  (classifier {lab.version})", style="bold"))
    for topic, score in sorted(lab.scores.items(), key=lambda kv: -(kv[1] or 0)):
        mark = "✓" if topic in lab.topics else " "
        out.print(Text(f" {mark} {topic:<11} {score:.2f}"))
        if topic not in lab.topics:
            continue
        for (source, sentence), phrases in _by_sentence(lab.evidence.get(topic, [])).items():
            line = Text(f"     {source}: ", style="dim")
            line.append_text(_highlighted(sentence, phrases))
            line.append(f"  [{'; '.join(phrases)}]", style="dim")
            out.print(line)


def _history(view: RecordView) -> None:
    out.print()
    out.print(Text("Found by", style="bold"))
    for h in view.hits:
        what = h.name or h.term
        out.print(Text(f"  search {h.search_id} ({what}): first {local_time(h.first_seen)}, "
                       f"last {local_time(h.last_seen)}"))
    if not view.hits:
        out.print(Text("  (no search: stored as a revision only)", style="dim"))
    rec = view.record
    revised = f"PubMed revised {rec.date_revised}; " if rec.date_revised else ""
    out.print(Text(f"{revised}first stored {local_time(view.first_stored)}, last fetched "
                   f"{local_time(view.last_fetched)}", style="dim"))


def searches_table(infos: Sequence[SearchInfo]) -> None:
    table = Table(title=Text(f"{len(infos)} searches (the id is what 'export --search' and "
                             "'list --search' take; count: PubMed's at the last run)"),
                  header_style="bold")
    for col in ("id", "saved name", "term", "dates", "runs", "last run", "count", "held"):
        table.add_column(col, overflow="fold", no_wrap=col not in ("saved name", "term"),
                         min_width=12 if col == "term" else None,
                         justify="right" if col in ("id", "runs", "count", "held")
                         else "left")
    for s in infos:
        last = local_time(s.last_run) if s.last_run else "never"
        if s.last_status not in (None, "complete"):
            last += f" ({s.last_status})"
        table.add_row(*(Text(v) for v in (
            str(s.id), s.name or "", s.term, date_range(s.mindate, s.maxdate), str(s.runs),
            last, "" if s.count is None else str(s.count), str(s.held))))
    out.print(table)
