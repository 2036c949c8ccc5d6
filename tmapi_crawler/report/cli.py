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
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tmapi_crawler.alerts.rules import RuleError, parse
from tmapi_crawler.alerts.send import send_alerts
from tmapi_crawler.report.data import CrawlFacts, last_run_id, read_run
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
    from tmapi_crawler.report.html import render, write  # matplotlib: ~0.5 s

    started = time.monotonic()
    try:
        data = read_run(store, run_id, CrawlFacts(summary=summary))
    except KeyError:
        return fail(f"no run {run_id} in the store")
    write(args.output, render(data))
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
