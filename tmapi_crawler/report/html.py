"""The run report as one self-contained HTML file. Free of Scrapy.

:func:`render` turns a :class:`~tmapi_crawler.report.data.RunData` into a
page that opens offline: its style inline, its plots inline SVG
(:mod:`.plots`), no script, nothing fetched but the listings' images (the
1688 image server's, shown when online, left blank offline). Each figure a
user reads is marked for checking: ``data-figure`` on the run's figures,
``data-count`` on the counts of changes, ``data-item`` on each listing row,
and each plot's numbers in a ``<script type="application/json">`` beside it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import Any

from tmapi_crawler.contract.report import format_duration
from tmapi_crawler.report import plots
from tmapi_crawler.report.data import (
    RENDER_STEPS,
    TOP,
    Coverage,
    Listing,
    RunData,
    Step,
    quiet,
)
from tmapi_crawler.store.changes import summary_line

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1080px;
 padding:16px 24px;color:#1f2328}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;
 border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px}
td,th{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:left;
 vertical-align:middle}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dt{color:#59636e}dd{margin:0}
.ok{color:#1a7f37}.no{color:#cf222e}.muted{color:#59636e}
.down{color:#1a7f37}.up{color:#cf222e}
img.thumb{width:40px;height:40px;object-fit:cover;border-radius:3px;background:#eaeef2}
figure{margin:8px 0 20px}figure svg{max-width:100%;height:auto}
figcaption{color:#59636e;font-size:13px}
.counts span{display:inline-block;margin-right:18px;font-size:16px}
"""
MISSING = "not in the store"


def render(data: RunData, generated: datetime | None = None, step: Step = quiet) -> str:
    """The whole page; *step* is told each of :data:`RENDER_STEPS`."""
    when = (generated or datetime.now(UTC)).isoformat(timespec="seconds")
    run_id = escape(data.run_id)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Run report {run_id}</title>",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Run report <code>{run_id}</code></h1>",
        f'<p class="muted">Written {escape(when)} from the catalog store.</p>',
        *run_section(data),
        *coverage_section(data),
        *changes_section(data),
        *plots_section(data, step),
        *missing_section(data),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def figure_row(name: str, title: str, value: Any) -> str:
    shown = MISSING if value is None else escape(str(value))
    css = ' class="muted"' if value is None else ""
    return f'<dt>{title}</dt><dd data-figure="{name}"{css}>{shown}</dd>'


def run_section(data: RunData) -> list[str]:
    run = data.run
    summary = data.facts.summary or {}
    totals = summary.get("totals") or {}
    cost = summary.get("estimated_cost")
    duration = summary.get("elapsed_seconds")
    if duration is None and run.get("finished_at"):
        started = datetime.fromisoformat(str(run["started_at"]))
        duration = (
            datetime.fromisoformat(str(run["finished_at"])) - started
        ).total_seconds()
    rows = [
        figure_row("finish_reason", "finish reason", run.get("finish_reason")),
        figure_row("job", "job", run.get("job") or "this run alone"),
        figure_row("started_at", "started", run.get("started_at")),
        figure_row("finished_at", "finished", run.get("finished_at") or "not yet"),
        figure_row(
            "duration", "duration", None if duration is None else fmt_seconds(duration)
        ),
        figure_row("observations", "listings observed", run.get("observations")),
        figure_row("calls", "calls", summary.get("calls")),
        figure_row(
            "cost",
            "estimated cost",
            f"{cost['amount']} {cost['currency']}" if cost else None,
        ),
        figure_row("pages", "pages done", totals.get("done")),
        figure_row("pages_failed", "pages failed", totals.get("failed")),
        figure_row("pages_left", "pages left", totals.get("left")),
        figure_row("items", "items exported", summary.get("items_exported")),
    ]
    return ["<h2>The run</h2>", "<dl>", *rows, "</dl>"]


def fmt_seconds(seconds: float) -> str:
    return f"{format_duration(seconds)} ({float(seconds):.1f} s)"


def coverage_section(data: RunData) -> list[str]:
    pages = {
        row["label"]: row for row in (data.facts.summary or {}).get("categories", [])
    }
    head = (
        "<tr><th>category</th><th>gone judged</th><th>price bands: listings "
        "reported</th><th>delivered</th><th>pages done</th><th>failed</th>"
        "<th>gaps</th></tr>"
    )
    body = [coverage_row(c, pages.get(c.label)) for c in data.coverage]
    if not body:
        return ["<h2>Coverage</h2>", "<p>No category query in this run.</p>"]
    return ["<h2>Coverage</h2>", "<table>", head, *body, "</table>"]


def coverage_row(coverage: Coverage, pages: dict[str, Any] | None) -> str:
    if coverage.complete is None:
        judged = '<span class="muted">not yet (the run is open)</span>'
    elif coverage.complete:
        judged = '<span class="ok">complete</span>'
    else:
        judged = f'<span class="no">no: {escape(coverage.reason or "?")}</span>'
    bands = "<br>".join(
        f"{escape(band.label)}: {band.total_count}" for band in coverage.bands
    )
    gaps = "<br>".join(escape(gap) for gap in coverage.gaps) or "none"
    done = "?" if pages is None else pages.get("done")
    failed = coverage.failed_pages
    return (
        f'<tr data-category="{escape(coverage.label)}"><td>{escape(coverage.label)}'
        f"</td><td>{judged}</td><td>{bands}</td>"
        f'<td class="n" data-figure="delivered">{coverage.delivered}</td>'
        f'<td class="n">{done}</td><td class="n">{failed}</td><td>{gaps}</td></tr>'
    )


def changes_section(data: RunData) -> list[str]:
    counts = " ".join(
        f'<span>{kind}: <b data-count="{kind}">{data.counts[kind]}</b></span>'
        for kind in data.counts
    )
    parts = [
        "<h2>Changes</h2>",
        f'<p class="counts">{counts}</p>',
        f'<p class="muted">{escape(summary_line(data.counts))}</p>',
    ]
    images = data.facts.images
    for title, listings, total in (
        ("Largest price drops", data.drops, len(data.drops)),
        ("Largest price rises", data.rises, len(data.rises)),
        ("New listings", data.changes["new"], data.counts["new"]),
        ("Back", data.changes["back"], data.counts["back"]),
        ("Gone", data.changes["gone"], data.counts["gone"]),
    ):
        parts.append(f"<h3>{title} ({total})</h3>")
        if not listings:
            parts.append('<p class="muted">none</p>')
            continue
        shown = listings[:TOP]
        parts += ["<table>", LISTING_HEAD]
        parts += [listing_row(item, images.get(item.key)) for item in shown]
        parts.append("</table>")
        if total > len(shown):
            parts.append(
                f'<p class="muted">and {total - len(shown)} more: '
                f"<code>tmapi-store changes {escape(data.run_id)}</code></p>"
            )
    return parts


LISTING_HEAD = (
    "<tr><th></th><th>listing</th><th>category</th><th>old price</th>"
    "<th>new price</th><th>change</th></tr>"
)


def price_text(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def listing_row(item: Listing, image: str | None) -> str:
    title = escape(item.title or str(item.item_id))
    link = (
        f'<a href="{escape(item.url)}" rel="noreferrer">{title}</a>'
        if item.url
        else title
    )
    picture = (
        f'<img class="thumb" src="{escape(image)}" alt="" loading="lazy" '
        'referrerpolicy="no-referrer">'
        if image
        else ""
    )
    percent = item.percent
    move = ""
    if percent is not None:
        css = "down" if percent < 0 else "up"
        move = f'<span class="{css}">{percent:+.1f}%</span>'
    return (
        f'<tr data-item="{item.item_id}-{escape(item.language)}" '
        f'data-change="{item.change}"><td>{picture}</td><td>{link}<br>'
        f'<span class="muted">{item.item_id} ({escape(item.language)})</span></td>'
        f'<td class="n">{item.cat_id or ""}</td>'
        f'<td class="n" data-figure="old_price">{price_text(item.old_price)}</td>'
        f'<td class="n" data-figure="new_price">{price_text(item.new_price)}</td>'
        f'<td class="n">{move}</td></tr>'
    )


def plot_block(plot: plots.Plot, caption: str) -> list[str]:
    numbers = json.dumps(plot.data, separators=(",", ":")).replace("</", "<\\/")
    return [
        f'<figure id="plot-{plot.name}">',
        plot.svg,
        f"<figcaption>{caption}</figcaption>",
        f'<script type="application/json" class="plot-data" '
        f'data-plot="{plot.name}">{numbers}</script>',
        "</figure>",
    ]


def plots_section(data: RunData, step: Step = quiet) -> list[str]:
    parts = ["<h2>Plots</h2>", "<h3>Price history of the listings that moved most</h3>"]
    step(RENDER_STEPS[0])
    moved = [item for item in [*data.drops, *data.rises] if item.key in data.history]
    if moved:
        caption = (
            f"The price of the {len(moved)} listings whose price fell or rose "
            f"most in this run, in every run of the store ({len(data.runs)}) "
            "that saw them."
        )
        history = plots.price_history(data.history, moved, data.runs)
        parts += plot_block(history, caption)
    else:
        parts.append('<p class="muted">No price changed in this run.</p>')
    step(RENDER_STEPS[1])
    parts.append("<h3>Prices per category: this run against the last</h3>")
    if data.distributions:
        left = (
            f" {data.categories_left_out} smaller categories are left out."
            if data.categories_left_out
            else ""
        )
        caption = (
            "How many listings each price band held, per category, in this run "
            "(filled) and in the last run before it with the category (line)." + left
        )
        drawn = plots.distributions(data.distributions, data.distribution_runs)
        parts += plot_block(drawn, caption)
    else:
        parts.append('<p class="muted">No priced listing observed in this run.</p>')
    step(RENDER_STEPS[2])
    parts.append("<h3>Calls and items per minute</h3>")
    if len(data.facts.samples) > 1:
        caption = "Calls sent and items delivered per minute, through the run."
        parts += plot_block(plots.pace(data.facts.samples), caption)
    else:
        parts.append(
            '<p class="muted" data-missing="pace">Not in the store: the crawl '
            "samples its pace while it runs and draws it in the report it "
            "writes at its end.</p>"
        )
    return parts


def missing_section(data: RunData) -> list[str]:
    missing: list[str] = []
    if data.facts.summary is None:
        missing.append(
            "the calls, the cost and the pages: the crawl's summary file has them "
            "(tmapi-store report --summary FILE)"
        )
    if not data.facts.samples:
        missing.append("the pace of the crawl")
    if not data.facts.images:
        missing.append("the listings' images: the store keeps no image")
    elif data.counts["gone"]:
        missing.append("the images of gone listings: this run did not see them")
    if not missing:
        return []
    return [
        "<h2>Not shown</h2>",
        "<ul>",
        *(f"<li>{escape(m)}</li>" for m in missing),
        "</ul>",
    ]


def write(path: Any, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
