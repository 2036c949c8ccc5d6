"""``tmapi-store report`` and ``tmapi-store alerts``: a run's report, and its
alerts sent (again), on demand. Free of Scrapy.

    tmapi-store report [--run ID] [-o report.html] [--summary FILE]
    tmapi-store alerts --run ID [--rules JSON] [--report PATH]

``report`` writes what the store holds of the run (default: the last run);
the crawl's summary file (``--summary``) adds the calls, the cost and the
pages; the pace of the crawl and the images are only in the report the crawl
writes itself. ``alerts`` sends the run's messages of each rule
(``--rules``, else the ``TMAPI_ALERTS`` environment variable), e.g. after a
webhook failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from tmapi_crawler.alerts.rules import RuleError, parse
from tmapi_crawler.alerts.send import send_alerts
from tmapi_crawler.report.data import (
    READ_STEPS,
    RENDER_STEPS,
    CrawlFacts,
    Step,
    last_run_id,
    quiet,
    read_run,
)
from tmapi_crawler.store.db import Store

COMMANDS = ("report", "alerts")


def add_commands(commands: Any) -> None:
    """The two subcommands, on ``tmapi-store``'s parser."""
    report = commands.add_parser("report", help="a run's report, as one HTML file")
    report.add_argument("--run", help="default: the last run")
    report.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    report.add_argument("--summary", type=Path, help="the run's summary file")
    alerts = commands.add_parser("alerts", help="send a run's alerts (again)")
    alerts.add_argument("--run", required=True)
    alerts.add_argument(
        "--rules", default=os.environ.get("TMAPI_ALERTS"), help="TMAPI_ALERTS's JSON"
    )
    alerts.add_argument("--report", help="the report's path, for the messages")
    alerts.add_argument("--attempts", type=int, default=3)
    alerts.add_argument("--backoff", type=float, default=1.0)


@contextlib.contextmanager
def steps(total: int) -> Iterator[Step]:
    """On a terminal, a progress bar of *total* steps, each named as it
    starts (as the crawl's progress display); elsewhere nothing."""
    if not sys.stderr.isatty():
        yield quiet
        return
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("report", total=total)
        started = [False]

        def step(name: str) -> None:
            if started[0]:
                progress.advance(task)
            started[0] = True
            progress.update(task, description=f"report: {name}")

        yield step
        progress.update(task, completed=total)


def run_command(store: Store, args: argparse.Namespace) -> int:
    return report(store, args) if args.command == "report" else alerts(store, args)


def fail(message: str) -> int:
    print(f"tmapi-store: {message}", file=sys.stderr)
    return 1


def report(store: Store, args: argparse.Namespace) -> int:
    run_id = args.run or last_run_id(store)
    if run_id is None:
        return fail("no run in the store")
    summary = None
    if args.summary is not None:
        summary = json.loads(args.summary.read_text(encoding="utf-8"))
    started = time.monotonic()
    with steps(1 + len(READ_STEPS) + len(RENDER_STEPS)) as step:
        step("loading matplotlib")
        from tmapi_crawler.report.html import render, write

        try:
            data = read_run(store, run_id, CrawlFacts(summary=summary), step=step)
        except KeyError:
            return fail(f"no run {run_id} in the store")
        write(args.output, render(data, step=step))
    print(
        f"run {run_id}: report written to {args.output} "
        f"({args.output.stat().st_size} bytes, {time.monotonic() - started:.2f} s)"
    )
    return 0


def alerts(store: Store, args: argparse.Namespace) -> int:
    try:
        rules = parse(args.rules)
    except RuleError as exc:
        print(f"tmapi-store: {exc}", file=sys.stderr)
        return 2
    if not rules:
        return fail("no rule: give --rules JSON or set TMAPI_ALERTS")
    if not store.query("SELECT run_id FROM runs WHERE run_id = ?", (args.run,)):
        return fail(f"no run {args.run} in the store")
    outcomes = send_alerts(
        store,
        args.run,
        rules,
        args.report,
        attempts=args.attempts,
        backoff=args.backoff,
        secret=os.environ.get("TMAPI_TOKEN"),
    )
    for outcome in outcomes:
        state = (
            "nothing to send"
            if not outcome.count
            else ("sent" if outcome.sent else f"NOT sent: {outcome.error}")
        )
        print(f"{outcome.rule}: {outcome.count} listings, {state}")
    return 1 if any(o.error for o in outcomes) else 0
