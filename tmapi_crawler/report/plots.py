"""The report's plots, drawn by matplotlib as inline SVG. Free of Scrapy.

Each function returns a :class:`Plot`: the SVG (text kept as text, not
paths: smaller, and searchable in the page) and the numbers it draws, which
the page carries beside it (a ``<script type="application/json">``), so
what a plot shows can be checked against the store. Each series drawn is an
SVG group with an ``id`` (``history-<item_id>-<language>``, ...).
matplotlib's object API is used without pyplot: no global state, no GUI
backend.
"""

from __future__ import annotations

import bisect
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import matplotlib as mpl
from matplotlib import ticker
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from tmapi_crawler.report.data import Listing, Point, Sample

STYLE: Any = {  # matplotlib's rcParams, typed as literal names
    "svg.fonttype": "none",  # text as <text>, in the page's font
    "svg.hashsalt": "tmapi-report",  # the same ids for the same figure
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
WIDTH = 7.5  # inches; shown at the page's width
BINS = 24


@dataclass(frozen=True)
class Plot:
    name: str
    svg: str
    data: dict[str, Any]


def svg_of(figure: Figure) -> str:
    """The figure as an ``<svg>`` element (no XML prolog: it goes inline)."""
    out = io.StringIO()
    with mpl.rc_context(STYLE):
        FigureCanvasSVG(figure).print_svg(out, metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def new_figure(height: float) -> Figure:
    with mpl.rc_context(STYLE):
        return Figure(figsize=(WIDTH, height), layout="constrained")


def price_history(
    history: dict[tuple[int, str], list[Point]],
    listings: Sequence[Listing],
    runs: Sequence[dict[str, Any]],
) -> Plot:
    """The price of each listing in every run of the store that saw it."""
    order = {str(run["run_id"]): n for n, run in enumerate(runs)}
    with mpl.rc_context(STYLE):
        figure = new_figure(3.4)
        axes = figure.add_subplot()
        series: list[dict[str, Any]] = []
        for listing in listings:
            points = [p for p in history.get(listing.key, []) if p.price is not None]
            if not points:
                continue
            name = f"history-{listing.item_id}-{listing.language}"
            (line,) = axes.plot(
                [order[p.run_id] for p in points],
                [float(p.price) for p in points if p.price is not None],
                marker="o",
                markersize=3,
                label=short(listing.title, 32),
            )
            line.set_gid(name)
            series.append({
                "id": name,
                "item_id": listing.item_id,
                "language": listing.language,
                "runs": [p.run_id for p in points],
                "prices": [str(p.price) for p in points],
            })  # fmt: skip
        ticks = sorted({order[run] for s in series for run in s["runs"]})
        labels = [run_tick(runs[n]) for n in ticks]
        if len(set(labels)) < len(labels):  # runs in the same minute
            labels = [run_tick(runs[n], "%m-%d %H:%M:%S") for n in ticks]
        axes.set_xticks(ticks, labels)
        # a log scale: the same move in percent, the same slope at any price
        axes.set_yscale("log")
        price_ticks(axes.yaxis)
        axes.set_ylabel("price (log scale)")
        axes.set_xlabel("run (started)")
        if series:
            axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
        return Plot("history", svg_of(figure), {"series": series})


def run_tick(run: dict[str, Any], form: str = "%m-%d %H:%M") -> str:
    started = datetime.fromisoformat(str(run["started_at"]))
    return started.strftime(form)


def plain(value: float, _: Any = None) -> str:
    """A tick as a price (``0.5``, ``20``), not a power of ten."""
    return f"{value:g}"


def price_ticks(axis: Any) -> None:
    """A log axis of prices ticked at 1, 2 and 5 of each decade, plainly."""
    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(plain))
    axis.set_minor_formatter(ticker.NullFormatter())


def short(text: str | None, width: int) -> str:
    text = text or "?"
    return text if len(text) <= width else text[: width - 1] + "…"


def bin_edges(prices: Sequence[Decimal]) -> list[float]:
    """Edges spaced evenly on a log scale (prices span decades) over every
    price, or one bin around a single price."""
    positive = [float(p) for p in prices if p > 0]
    if not positive:
        return [0.0, 1.0]
    low, high = math.log10(min(positive)), math.log10(max(positive))
    if high - low < 1e-9:
        low, high = low - 0.05, high + 0.05
    step = (high - low) / BINS
    edges = [10 ** (low + step * n) for n in range(BINS + 1)]
    # the ends exactly the extreme prices (10 ** log10(x) may miss x)
    edges[0], edges[-1] = min(min(positive), edges[0]), max(max(positive), edges[-1])
    return edges


def counts_in(prices: Sequence[Decimal], edges: Sequence[float]) -> list[int]:
    """How many prices each bin holds (the last bin closed, as numpy's)."""
    counts = [0] * (len(edges) - 1)
    for price in prices:
        n = bisect.bisect_right(edges, float(price)) - 1
        if 0 <= n < len(counts):
            counts[n] += 1
        elif n == len(counts) and float(price) == edges[-1]:
            counts[-1] += 1
    return counts


def distributions(
    found: dict[str, tuple[list[Decimal], list[Decimal]]],
    last_runs: dict[str, str | None],
) -> Plot:
    """Per category, the prices of this run against the last run's."""
    with mpl.rc_context(STYLE):
        rows = max(1, math.ceil(len(found) / 2))
        figure = new_figure(2.2 * rows)
        series = []
        for n, (label, (this, last)) in enumerate(found.items()):
            axes = figure.add_subplot(rows, 2 if len(found) > 1 else 1, n + 1)
            edges = bin_edges([*this, *last])
            this_counts, last_counts = counts_in(this, edges), counts_in(last, edges)
            slug = f"distribution-{n}"
            for counts, name, color in (
                (last_counts, "last", "#9aa5b1"),
                (this_counts, "this", "#1f6feb"),
            ):
                bars: Any
                _, _, bars = axes.hist(
                    edges[:-1],
                    bins=edges,
                    weights=counts,
                    histtype="step" if name == "last" else "stepfilled",
                    alpha=1 if name == "last" else 0.45,
                    color=color,
                    linewidth=1.4,
                    label=f"{name} run ({sum(counts)})",
                )
                for bar in bars:
                    bar.set_gid(f"{slug}-{name}")
            axes.set_xscale("log")
            price_ticks(axes.xaxis)
            axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            axes.set_title(label, fontsize=9)
            axes.legend(fontsize=7)
            series.append({
                "id": slug,
                "label": label,
                "last_run": last_runs.get(label),
                "edges": edges,
                "this": this_counts,
                "last": last_counts,
            })  # fmt: skip
        figure.supxlabel("price (log scale)", fontsize=8)
        return Plot("distribution", svg_of(figure), {"categories": series})


def pace(samples: Sequence[Sample], points: int = 120) -> Plot:
    """Calls and items per minute through the run, from the counters sampled:
    each point the rate over its slice of the run (at most *points* slices;
    the samples kept are the plot's data)."""
    step = max(1, math.ceil((len(samples) - 1) / points))
    kept = list(samples[::step])
    if samples and kept[-1] != samples[-1]:
        kept.append(samples[-1])
    # a short run in seconds, a long one in minutes
    unit, scale = ("seconds", 1.0) if samples[-1].seconds < 180 else ("minutes", 60.0)
    times, calls, items = [], [], []
    for before, after in itertools.pairwise(kept):
        span = after.seconds - before.seconds
        if span <= 0:
            continue
        times.append(after.seconds / scale)
        calls.append((after.calls - before.calls) * 60 / span)
        items.append((after.items - before.items) * 60 / span)
    with mpl.rc_context(STYLE):
        figure = new_figure(2.8)
        axes = figure.add_subplot()
        # calls on the left, items (a page's worth a call) on the right
        lines = []
        for side, values, name, color in (
            (axes, calls, "calls", "#1f6feb"),
            (axes.twinx(), items, "items", "#d1242f"),
        ):
            (line,) = side.plot(times, values, marker="o", markersize=3,
                                color=color, label=f"{name} per minute")  # fmt: skip
            line.set_gid(f"pace-{name}")
            side.set_ylabel(f"{name} per minute", color=color)
            side.set_ylim(bottom=0)
            lines.append(line)
        axes.set_xlabel(f"{unit} into the run")
        axes.legend(handles=lines, fontsize=7, loc="lower right")
        data = {
            "samples": [[s.seconds, s.calls, s.items] for s in kept],
            "unit": unit,
            "times": times,
            "calls_per_minute": calls,
            "items_per_minute": items,
        }
        return Plot("pace", svg_of(figure), data)
