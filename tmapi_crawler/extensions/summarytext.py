"""The run summary in words: the table and the lines under it, and the JSON.

:mod:`.summary` collects the run's figures and the summary as data
(:meth:`~tmapi_crawler.extensions.summary.RunSummary.summary`); this module
renders them, and nothing else: a table per category query, plain text
(:func:`text_table`) for the log or `rich <https://rich.readthedocs.io>`_
(:func:`rich_table`) for a terminal, the headline and the lines under the
table (:func:`summary_lines`), and the JSON of ``TMAPI_SUMMARY_FILE``
(:func:`summary_json`). For a dry run, the plan's columns (:data:`PLAN_COLUMNS`).
Free of Scrapy: it reads only the figures and the summary's data.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.table import Table

from tmapi_crawler.contract.cost import calls_within
from tmapi_crawler.contract.report import CategoryRow, RunFigures
from tmapi_crawler.store.changes import summary_line

if TYPE_CHECKING:
    from tmapi_crawler.contract.cost import CallCost

PLAN_COLUMNS = (
    ("total_count", "reported"),
    ("pages", "pages"),
    ("calls_needed", "calls needed"),
    ("cost_needed", "cost"),
)


def summary_json(summary: dict[str, Any]) -> str:
    """The summary file's text."""
    return json.dumps(summary, indent=2, ensure_ascii=False) + "\n"


def summary_title(dry_run: bool) -> str:
    return "Dry run: the plan" if dry_run else "Run summary"


def summary_lines(
    figures: RunFigures,
    summary: dict[str, Any],
    cost: CallCost | None,
    max_spend: CallCost | None,
    result_cap: int,
) -> list[str]:
    """The headline and the lines under the table."""
    lines = [headline(figures, summary, cost, max_spend)]
    if before := summary["resumed"]:
        lines.append(
            f"Resumed: {before['pages_done_before']} pages done and "
            f"{before['items_before']} items delivered by earlier runs; "
            f"{before['pages_left_before']} pages were left, "
            f"{before['pages_in_flight_before']} of them in flight."
        )
        lines.append(
            f"Recovered: {before['spooled_items_uploaded']} spooled items "
            "a killed run left, uploaded; "
            f"{before['pages_in_flight_before']} pages in flight fetched "
            f"again; {before.get('items_already_delivered', 0)} of their "
            "items already delivered, not written twice."
        )
    if any(row.capped for row in figures.rows):
        lines.append(
            f"(cap): the API reports at most {result_cap} results per query; "
            "the category may hold more than any crawl of it can see."
        )
    if limit := summary["concurrency"]:
        started = limit["started_from"] or "the default start (nothing remembered)"
        ended = limit["ended_at"] or "nothing learnt"
        lines.append(
            f"Calls in flight: started from {started}, ended at {ended}; "
            f"kept in {limit['kept_in']}."
        )
    if size := summary["page_size"]:
        lines.append(page_size_line(size))
    for uri, feed in summary["feed_items"].items():
        if feed["not_written"] or feed["refused"]:
            lines.append(
                f"Feed {uri}: {feed['written']} items written, "
                f"{feed['not_written']} not written, {feed['refused']} its "
                "writer could not hold (quarantined, if a quarantine feed is set)."
            )
    if summary["changes"]:  # the catalog store's (TMAPI_STORE)
        lines.append("Changes: " + summary_line(summary["changes"]))
    if alerts := summary["alerts"]:
        lines.append(
            f"Alerts: {alerts.get('sent', 0)} sent, {alerts.get('failed', 0)} "
            "failed (see the log; tmapi-store alerts --run ID sends them again)"
        )
    lines += [f"Next: {step}" for step in summary["next_steps"]]
    if "summary_file" in summary:
        lines.append(f"Summary file: {summary['summary_file']}")
    return lines


def headline(
    figures: RunFigures,
    summary: dict[str, Any],
    cost: CallCost | None,
    max_spend: CallCost | None,
) -> str:
    spent = f", estimated cost {figures.cost_text}" if figures.cost_text else ""
    total = figures.total
    if summary["dry_run"]:
        needed = f" ({cost.format(total.pages)})" if cost else ""
        details = summary["details_estimate"]
        plus, planned = "", total.pages  # the calls the full crawl makes
        if details and details["calls"] is not None:
            priced = f" ({cost.format(details['calls'])})" if cost else ""
            plus = f" Plus {details['text']}{priced}."
            planned += details["calls"]
        elif details:
            plus = f" Item details: not estimated ({details['unknown'][0]})."
        return (
            f"The full crawl needs {total.pages} pages: {total.pages} calls"
            f"{needed} without retries.{plus}{fits(planned, cost, max_spend)} "
            f"This dry run made {figures.calls} calls{spent} and exported no items."
        )
    job_dir = summary["job_dir"]
    scope = f" The table counts every run of the job in {job_dir}." if job_dir else ""
    details = summary["details"]
    detailed = f", {details.get('items', 0)} item details" if details else ""
    return (
        f"Finish reason: {summary['finish_reason']}. This run: {figures.calls} "
        f"calls{figures.calls_split()}{spent}, {summary['items_exported']} "
        f"items exported{detailed}, "
        f"{figures.elapsed:.1f} s. Pages planned but not fetched: "
        f"{total.left}.{scope}"
    )


def fits(calls: int, cost: CallCost | None, max_spend: CallCost | None) -> str:
    """Whether *calls* fit the spend cap (TMAPI_MAX_SPEND), as a sentence."""
    if max_spend is None or cost is None:
        return ""
    cap = f"TMAPI_MAX_SPEND={max_spend.format(1)}"
    if cost.of(calls) <= max_spend.amount:
        return f" It fits {cap}."
    return (
        f" It does not fit {cap}: that stops the crawl after "
        f"{calls_within(max_spend, cost)} calls (resumable with JOBDIR)."
    )


def page_size_line(size: dict[str, Any]) -> str:
    served = size["served"] or "not learnt yet"
    origin = (
        f"asking {size['remembered']} (remembered for this token)"
        if size["remembered"]
        else f"probed at {size['asked']}"
    )
    refused = (
        f"; {size['refused']} page 1 refused (422) and asked again at 20"
        if size["refused"]
        else ""
    )
    return f"Page size: {origin}, served {served}{refused}."


def cell(row: CategoryRow, name: str, cost: CallCost | None = None) -> str:
    """One table cell; ``calls_needed`` and ``cost_needed`` are the plan's."""
    if name == "calls_needed":
        return str(row.pages)
    if name == "cost_needed":
        return cost.format(row.pages) if cost else "-"
    value = getattr(row, name)
    if value is None:
        return "?"
    text = str(value)
    if name == "total_count" and row.capped and row.label != "total":
        text += " (cap)"
    return text


def text_table(
    rows: list[CategoryRow],
    columns: tuple[tuple[str, str], ...],
    cost: CallCost | None = None,
) -> str:
    header = ["category", *(title for _, title in columns)]
    body = [[row.label, *(cell(row, n, cost) for n, _ in columns)] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (
            text.rjust(width) for text, width in zip(cells[1:], widths[1:], strict=True)
        )
        return "  ".join([first, *rest])

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *map(line, body[:-1]), rule, line(body[-1])])


def rich_table(
    rows: list[CategoryRow],
    columns: tuple[tuple[str, str], ...],
    title: str,
    cost: CallCost | None = None,
) -> Table:
    table = Table(title=title, show_footer=False)
    table.add_column("category")
    for _, name in columns:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(
            row.label,
            *(cell(row, name, cost) for name, _ in columns),
            end_section=row is rows[-2] if len(rows) > 1 else False,
            style="bold" if row is rows[-1] else None,
        )
    return table
