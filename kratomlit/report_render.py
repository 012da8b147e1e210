"""The report in a terminal: counts, the flow, topics per year with a text bar chart."""

from __future__ import annotations

import pandas as pd
from rich.table import Table
from rich.text import Text

from kratomlit.classify import TOPICS
from kratomlit.render import out
from kratomlit.report import ReportData, when

BAR_WIDTH = (8, 30)  # characters for the year with the most records: least, most


def show_report(data: ReportData) -> None:
    """Print the summary ``kratomlit report`` shows without ``--output``."""
    scope = f"saved searches {', '.join(data.saved)}" if data.saved else "the whole library"
    since = f", first stored since {data.since}" if data.since else ""
    refresh = when(data.last_refresh) if data.last_refresh else "never"
    out.print(Text(f"{data.records:,} records from {scope}{since} (latest refresh: "
                   f"{refresh})", style="bold"))
    out.print(_flow_table(data))
    out.print(_years_table(data.topics_by_year))
    out.print(_searches_table(data))


def _flow_table(data: ReportData) -> Table:
    table = Table(title="Flow", header_style="bold")
    table.add_column("stage")
    table.add_column("count", justify="right")
    for stage, n in data.flow.rows():
        table.add_row(stage, f"{n:,}")
    return table


def _years_table(years: pd.DataFrame) -> Table:
    """Topic × year counts, with each year's records as a bar."""
    table = Table(title="Records by publication year and topic", header_style="bold")
    table.add_column("year")
    for col in ("records", *TOPICS):
        table.add_column(col, justify="right")
    table.add_column("", no_wrap=True)
    top = int(years["records"].max()) if len(years) else 0
    width = min(max(out.width - 66, BAR_WIDTH[0]), BAR_WIDTH[1])  # the rest fits 80 columns
    for row in years.itertuples(index=False):
        values = row._asdict()
        year = "unknown" if pd.isna(values["year"]) else str(values["year"])
        table.add_row(year, *(f"{int(values[c]):,}" for c in ("records", *TOPICS)),
                      Text(bar(int(values["records"]), top, width), style="cyan"))
    return table


def bar(n: int, top: int, width: int) -> str:
    """``n`` of ``top`` as a bar of block characters (eighths), at least a sliver when n > 0."""
    if top <= 0 or n <= 0:
        return ""
    eighths = max(1, round(n / top * width * 8))
    return "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]


def _searches_table(data: ReportData) -> Table:
    table = Table(title="Searches", header_style="bold")
    for col in ("search", "identified", "last complete run"):
        table.add_column(col, justify="right" if col == "identified" else "left",
                         overflow="fold")
    for s in data.searches:
        table.add_row(Text(s.name), f"{s.identified:,}",
                      when(s.last_run) if s.last_run else "never completed")
    return table
