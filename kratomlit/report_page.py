"""Write a report folder: CSV tables, PNG charts and one self-contained ``index.html``.

The page must open offline, from a file or an e-mail attachment, so it loads nothing:
style is inline, charts are embedded as PNG data URIs (and also written beside it), and
the only outside addresses are plain links to PubMed. Every string that comes from a
record or a search is escaped with ``html.escape``.

The folder is built in a temporary folder beside it and swapped in by renaming, so a
half-written report never replaces a good one. A marker file identifies a folder as a
report; a non-empty folder without it is refused, never deleted.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Collection, Iterable, Sequence
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from kratomlit import __version__
from kratomlit.errors import ExportError
from kratomlit.models import TOPICS
from kratomlit.report import ReportData, when

MARKER = ".kratomlit-report"  # present in every folder this module wrote


def write_report(data: ReportData, folder: Path) -> list[Path]:
    """Write the report into ``folder`` (created, or replacing an earlier report) and
    return the files written. A symlink is followed: the report replaces its target."""
    folder = folder.resolve() if folder.is_symlink() else folder
    check_target(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part",
                                    dir=folder.parent))
    except OSError as exc:
        raise ExportError(f"Cannot write the report to {folder}: {exc.strerror or exc}.") \
            from exc
    try:
        names = _fill(tmp, data)
        _swap(tmp, folder)
    except OSError as exc:
        raise ExportError(f"Cannot write the report to {folder}: {exc.strerror or exc}. "
                          "Any earlier report there is unchanged.") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [folder / n for n in names]


def check_target(folder: Path) -> None:
    """Refuse a ``folder`` that is a file, or holds files but is not an earlier report
    (call before long work, e.g. a refresh, so it fails fast)."""
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"Cannot write the report to {folder}: it is a file, not a folder.")
    if folder.is_dir() and not (folder / MARKER).exists() and any(folder.iterdir()):
        raise ExportError(f"{folder} is not empty and is not a kratomlit report, so it was "
                          "left untouched. Give a new or empty folder.")


def _fill(tmp: Path, data: ReportData) -> list[str]:
    """Write every file into ``tmp``; return their names."""
    from kratomlit import report_charts as charts

    tables = {"topics_by_year.csv": data.topics_by_year, "flow.csv": data.flow.table(),
              "added_per_refresh.csv": data.refreshes}
    pngs = {"records_by_year.png": charts.records_by_year(data.topics_by_year),
            "added_per_refresh.png": charts.added_per_refresh(data.refreshes)}
    if data.designs_by_year is not None:
        tables["designs_by_year.csv"] = data.designs_by_year
        pngs["designs_by_year.png"] = charts.designs_by_year(data.designs_by_year)
    for name, table in tables.items():
        table.to_csv(tmp / name, index=False, lineterminator="\n")
    for name, png in pngs.items():
        (tmp / name).write_bytes(png)
    (tmp / "index.html").write_text(page(data, pngs), encoding="utf-8")
    (tmp / MARKER).write_text(f"kratomlit {__version__} report, made {data.made_at}\n",
                              encoding="utf-8")
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; a report is meant to be shared
    return ["index.html", *tables, *pngs]


def _swap(tmp: Path, folder: Path) -> None:
    """Put ``tmp`` where ``folder`` is: the old report is moved aside, the new one renamed
    in, then the old one removed (restored if the rename fails)."""
    if not folder.exists():
        os.rename(tmp, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
    os.replace(folder, old)  # onto the empty folder mkdtemp made
    try:
        os.rename(tmp, folder)
    except OSError:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- the page ---------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;
 margin:0 auto;max-width:1100px;padding:24px;color:#1a1a1a;line-height:1.45;font-size:16px}
h1{font-size:28px;margin:0 0 4px}h2{font-size:21px;margin:32px 0 8px;
 border-bottom:2px solid #e5e5e5;padding-bottom:4px}
.meta{color:#444;margin:0 0 16px}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d0d0d0;border-radius:6px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:28px}.card span{color:#444}
table{border-collapse:collapse;margin:8px 0}th,td{border-bottom:1px solid #e0e0e0;
 padding:4px 10px;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;border:1px solid #eee}figure{margin:16px 0}
figcaption{color:#444;font-size:14px}a{color:#0b57a4}.note{color:#444;font-size:14px}
"""


def page(data: ReportData, pngs: dict[str, bytes]) -> str:
    """The whole ``index.html``."""
    title = "Kratom literature report"
    parts = [
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{title}</title><style>{CSS}</style></head><body>",
        f"<h1>{title}</h1>", _meta(data), _cards(data),
        "<h2>Flow</h2>", _flow(data),
        "<h2>Charts</h2>", *_figures(data, pngs),
        "<h2>Topics by publication year</h2>", _years(data.topics_by_year),
        f"<h2>Newest records</h2><p class=\"note\">The {len(data.newest)} most recently "
        "published (by year, then PubMed ID).</p>", _newest(data),
        "<h2>Searches</h2>", _searches(data),
        "<p class=\"note\">Data from PubMed (U.S. National Library of Medicine); NCBI's "
        "disclaimer and copyright notice apply (<code>kratomlit about</code>).</p>",
        "</body></html>\n"]
    return "\n".join(parts)


def _meta(data: ReportData) -> str:
    scope = ("records found by the saved searches " + ", ".join(
        f"<b>{escape(n)}</b>" for n in data.saved)) if data.saved else "every record in the library"
    since = f", first stored on or after <b>{escape(data.since)}</b>" if data.since else ""
    refresh = escape(when(data.last_refresh) if data.last_refresh else "never")
    return (f"<p class=\"meta\">Made <time datetime=\"{escape(data.made_at)}\">"
            f"{escape(when(data.made_at))}</time> by kratomlit "
            f"{escape(__version__)} from {scope}{since}. Latest refresh: {refresh}.</p>")


def _cards(data: ReportData) -> str:
    cards = [("records", data.records), ("identified", data.flow.identified),
             ("duplicates", data.flow.duplicates), ("labelled", data.flow.labelled)]
    return "<div class=\"cards\">" + "".join(
        f"<div class=\"card\" id=\"count-{k}\"><b>{v:,}</b><span>{k}</span></div>"
        for k, v in cards) + "</div>"


def _flow(data: ReportData) -> str:
    meaning = {"identified": "PMIDs listed by the searches, summed over searches",
               "duplicates": "found by more than one search (identified − unique)",
               "unique": "distinct records", "labelled": "records with topic labels"}
    rows = [(stage, n, meaning.get(stage, f"labelled {stage}")) for stage, n in data.flow.rows()]
    return _table(["stage", "count", "meaning"], rows, numeric={1}, table_id="flow")


def _figures(data: ReportData, pngs: dict[str, bytes]) -> list[str]:
    captions = {
        "records_by_year.png": ("Records per publication year, stacked by topic; the line "
                                "is every record of the year (a record with several topics "
                                "counts once per topic).", "topics_by_year.csv"),
        "added_per_refresh.png": (_refresh_caption(data), "added_per_refresh.csv"),
        "designs_by_year.png": ("Study designs per publication year.", "designs_by_year.csv"),
    }
    out = []
    for name, png in pngs.items():
        caption, csv = captions[name]
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        out.append(f"<figure><img src=\"{uri}\" alt=\"{escape(caption)}\"><figcaption>"
                   f"{escape(caption)} Numbers: <a href=\"{csv}\">{csv}</a>.</figcaption>"
                   "</figure>")
    if data.designs_by_year is None:
        out.append("<p class=\"note\">No study designs are extracted for these records yet.</p>")
    return out


def _refresh_caption(data: ReportData) -> str:
    text = "Selected records first stored during each refresh."
    if data.outside_refreshes:
        text += f" {data.outside_refreshes:,} more were stored by 'kratomlit search'."
    return text


def _years(table: pd.DataFrame) -> str:
    rows = [["unknown" if pd.isna(r[0]) else str(r[0]), *r[1:]]
            for r in table.itertuples(index=False)]
    return _table(["year", "records", *TOPICS], rows, numeric=set(range(1, 2 + len(TOPICS))),
                  table_id="years")


def _newest(data: ReportData) -> str:
    rows = [[f"<a href=\"{r.url}\">{r.pmid}</a>", escape(str(r.year or "")), escape(r.title),
             escape(r.journal), escape("not classified" if r.topics is None
                                       else ", ".join(r.topics) or "none")]
            for r in data.newest]
    return _table(["PMID", "year", "title", "journal", "topics"], rows, raw=True,
                  table_id="newest")


def _searches(data: ReportData) -> str:
    rows = [[s.name, "; ".join(s.terms), s.identified,
             when(s.last_run) if s.last_run else "never completed"]
            for s in data.searches]
    return _table(["search", "PubMed term", "identified", "last complete run"], rows,
                  numeric={2}, table_id="searches")


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], *,
           numeric: Collection[int] = (), raw: bool = False, table_id: str = "") -> str:
    """An HTML table; cells are escaped unless ``raw`` (the caller escaped them)."""
    def cell(tag: str, i: int, value: object) -> str:
        text = str(value) if raw else escape(_number(value))
        css = ' class="n"' if i in numeric else ""
        return f"<{tag}{css}>{text}</{tag}>"

    header = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table id=\"{table_id}\"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | np.integer) else str(value)
