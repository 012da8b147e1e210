"""The report's charts as PNG bytes, drawn with matplotlib's Agg canvas.

Figures are made with ``matplotlib.figure.Figure`` and an explicit Agg canvas, never
pyplot: no global figure state, no GUI backend, safe under cron. Colours are Okabe-Ito
(distinguishable with the common colour-vision deficiencies); text is 12 pt or larger.
matplotlib is imported here only, so nothing else pays for it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from kratomlit.models import TOPICS

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
             "purple": "#CC79A7", "grey": "#999999"}
TOPIC_COLOURS = dict(zip(TOPICS, (OKABE_ITO[c] for c in ("blue", "orange", "green", "purple")),
                         strict=True))
DESIGN_COLOURS = tuple(OKABE_ITO[c] for c in ("sky", "vermillion", "blue", "green", "orange",
                                              "purple", "yellow"))
UNKNOWN = "#cccccc"  # records whose design was not recognised
MAX_DESIGNS = len(DESIGN_COLOURS)  # the rest are drawn together as 'other'
STYLE: dict[Any, Any] = {  # rcParams for every chart
    "font.size": 12, "axes.titlesize": 14, "axes.labelsize": 12, "legend.fontsize": 11,
    "xtick.labelsize": 11, "ytick.labelsize": 11, "axes.spines.top": False,
    "axes.spines.right": False, "savefig.facecolor": "white"}
THOUSANDS = "{x:,.0f}"  # axis labels as 12,000
SIZE = (10, 4.8)  # inches, at DPI
DPI = 110


def records_by_year(table: pd.DataFrame) -> bytes:
    """Topic counts per publication year, stacked, with the year's record count as a line
    (a record with several topics counts once per topic, so stacks may pass the line)."""
    known = _every_year(table)
    with rc_context(STYLE):
        fig, ax = _figure("Records per publication year, by topic")
        if known.empty:
            return _empty(fig, ax, "No records with a publication year")
        years = known["year"].astype(int).to_numpy()
        top = _stack(ax, years, [(t, known[t], TOPIC_COLOURS[t]) for t in TOPICS])
        ax.plot(years, known["records"], color=OKABE_ITO["black"], marker="o",
                markersize=4, linewidth=1.5, label="records")
        ax.set_ylabel("records")
        _year_axis(ax)
        ax.legend(ncols=5, loc="upper left", frameon=False)
        ax.set_ylim(0, max(top, known["records"].max()) * 1.18 + 1)
        return _png(fig)


def added_per_refresh(refreshes: pd.DataFrame) -> bytes:
    """Records each refresh added, oldest refresh first."""
    with rc_context(STYLE):
        fig, ax = _figure("Records added per refresh")
        if refreshes.empty:
            return _empty(fig, ax, "No refresh has run yet")
        x = range(len(refreshes))
        bars = ax.bar(x, refreshes["added"], width=0.7, color=OKABE_ITO["blue"])
        if len(refreshes) <= 40:
            ax.bar_label(bars, padding=2, fontsize=10)
        labels = [f"#{r.refresh}\n{str(r.started)[:10]}" for r in refreshes.itertuples()]
        step = -(-len(labels) // 8)  # at most 8 labels: they are 10 characters wide
        ax.set_xticks(list(x)[::step], labels[::step])
        pad = max(0.75, (8 - len(refreshes)) / 2)  # a few bars stay bar-shaped
        ax.set_xlim(-pad, len(refreshes) - 1 + pad)
        ax.set_ylabel("records added")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
        ax.set_ylim(top=max(1, int(refreshes["added"].max())) * 1.15)
        return _png(fig)


def designs_by_year(table: pd.DataFrame) -> bytes:
    """Study designs per publication year, stacked; past the commonest few, 'other'."""
    known = _every_year(table)
    designs = [c for c in table.columns if c not in ("year", "unknown", "other")]  # commonest
    shown = designs[:MAX_DESIGNS]  # first; a design named 'other' joins the rest
    rest = [c for c in table.columns if c not in ("year", "unknown", *shown)]
    with rc_context(STYLE):
        fig, ax = _figure("Study designs per publication year")
        if known.empty:
            return _empty(fig, ax, "No study designs with a publication year")
        years = known["year"].astype(int).to_numpy()
        series = [(d, known[d], c) for d, c in zip(shown, DESIGN_COLOURS, strict=False)]
        if rest:
            series.append(("other", known[rest].sum(axis=1), OKABE_ITO["grey"]))
        if "unknown" in known:
            series.append(("unknown", known["unknown"], UNKNOWN))
        top = _stack(ax, years, series)
        ax.set_ylabel("records")
        _year_axis(ax)
        ax.legend(loc="upper left", frameon=False, ncols=min(4, len(series)))
        ax.set_ylim(0, top * 1.25 + 1)
        return _png(fig)


def _every_year(table: pd.DataFrame) -> pd.DataFrame:
    """Rows for every year from the first to the last (zeros where none), so lines and
    gaps do not skip years; rows without a year are left out."""
    known = table.dropna(subset=["year"])
    if known.empty:
        return known
    years = known["year"].astype(int)
    span = pd.RangeIndex(years.min(), years.max() + 1, name="year")
    return known.set_index(years).drop(columns="year").reindex(span, fill_value=0).reset_index()


def _stack(ax: Axes, x: np.ndarray, series: Sequence[tuple[str, pd.Series, str]],
           width: float = 0.8) -> float:
    """Stacked bars, one collection per series (``ax.bar`` makes a patch per bar, and
    60 years × 8 series took seconds); returns the highest stack."""
    bottom = np.zeros(len(x))
    left, right = x - width / 2, x + width / 2
    for name, values, colour in series:
        top = bottom + values.to_numpy(dtype=float)
        boxes = np.stack([np.column_stack(c) for c in ((left, bottom), (left, top),
                                                       (right, top), (right, bottom))], axis=1)
        ax.add_collection(PolyCollection(list(boxes), facecolors=colour, edgecolors="none",
                                         label=name))
        bottom = top
    ax.set_xlim(x.min() - 0.8, x.max() + 0.8)
    return float(bottom.max()) if len(bottom) else 0.0


def _figure(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=SIZE, dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.985, top=0.91, bottom=0.15)  # constrained
    # layout found the same margins at a third of a second per chart
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontweight="bold")
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _year_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=15))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_xlabel("publication year")


def _empty(fig: Figure, ax: Axes, message: str) -> bytes:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, color="#555555",
            transform=ax.transAxes)
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()

