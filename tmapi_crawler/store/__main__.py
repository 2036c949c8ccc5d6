"""``tmapi-store``: read the catalog store back (``python -m tmapi_crawler.store``).

    tmapi-store runs                          every run: when, how it ended
    tmapi-store changes [RUN_ID]              a run's changes (default: the last run),
                                              its variants' too
    tmapi-store history ITEM_ID [-l LANG]     an item's price and sales, run by
                                              run, and its variants' (detailed)
    tmapi-store load FILE                     what a crawl could not store, once
    tmapi-store report [--run ID] [-o FILE]   a run's report, one HTML file
    tmapi-store alerts --run ID               send a run's alerts (again)

The store is ``--store URI``, else ``TMAPI_STORE``, else the demo's
``sqlite:///out/catalog.sqlite``. ``--json`` prints JSON Lines, the records
of the changes feed for ``changes``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from tmapi_crawler.report import cli as report_cli
from tmapi_crawler.store.changes import (
    ALL_KINDS,
    QueryCrawl,
    count,
    summary_line,
)
from tmapi_crawler.store.db import Store, open_store, store_problems
from tmapi_crawler.store.variants import (
    iter_variant_changes,
    observed_row,
    variant_history,
)

DEFAULT_STORE = "sqlite:///out/catalog.sqlite"
LOAD_BATCH = 1000  # observations a transaction


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tmapi-store", description=__doc__.splitlines()[0])
    p.add_argument("--store", default=os.environ.get("TMAPI_STORE") or DEFAULT_STORE)
    p.add_argument("--json", action="store_true", help="JSON Lines")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("runs", help="every run")
    changes = commands.add_parser("changes", help="a run's changes")
    changes.add_argument("run_id", nargs="?", help="default: the last run")
    history = commands.add_parser("history", help="an item's observations")
    history.add_argument("item_id", type=int)
    history.add_argument("-l", "--language")
    load = commands.add_parser("load", help="write observations kept in a file")
    load.add_argument("file", type=Path)
    report_cli.add_commands(commands)  # report, alerts
    return p


def show(rows: Sequence[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        return
    names = list(rows[0])
    cells = [[("" if r[n] is None else str(r[n])) for n in names] for r in rows]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def last_run(store: Store) -> str | None:
    runs = store.runs()
    return runs[-1]["run_id"] if runs else None


def load(store: Store, path: Path) -> int:
    """What a crawl kept in a file because the store did not answer at its
    close: its observations written to their run, each once, then the run's
    close (the crawl's share, the judgement of what is gone) as the crawl
    would have written it. Loading a file twice changes nothing."""
    by_run: dict[str, list[list[Any]]] = {}
    closes = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if "close" in record:
                closes.append(record["close"])
                continue
            by_run.setdefault(record["run_id"], []).append(observed_row(record))
    made = dict.fromkeys(ALL_KINDS, 0)
    jobs = {close["run_id"]: close.get("job") for close in closes}
    for run_id in {*by_run, *jobs}:
        store.ensure_run(run_id, jobs.get(run_id))
    total = sum(map(len, by_run.values()))
    with progress("load: observations", total) as advance:
        for run_id, rows in by_run.items():
            for start in range(0, len(rows), LOAD_BATCH):
                batch = rows[start : start + LOAD_BATCH]
                for kind, number in store.write_counted(run_id, batch).items():
                    made[kind] += number
                advance(len(batch))
    for close in closes:
        shares = [share_from(share) for share in close["shares"]]
        judged = store.settle(
            close["run_id"], close["worker"], shares, close["reason"], close["final"]
        )
        store.finish_run(close["run_id"], close["reason"], close["final"])
        for judgement in judged:
            made["gone"] += len(judgement.gone)
            if judgement.why is not None and not judgement.waiting:
                print(f"{judgement.label}: not judged which listings are gone: "
                      f"{judgement.why}")  # fmt: skip
    print(f"{sum(map(len, by_run.values()))} observations loaded"
          f"{', the run closed' if closes else ''}: {summary_line(made)} made "
          "now (nothing already stored is written twice)")  # fmt: skip
    return 0


@contextlib.contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """On a terminal, a bar of *total* steps (as the crawl's progress
    display); elsewhere nothing. Yields the function that advances it."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.advance(task, done)


@contextlib.contextmanager
def working(label: str) -> Iterator[None]:
    """On a terminal, a spinner while one long query runs; elsewhere nothing."""
    if not sys.stderr.isatty():
        yield
        return
    with Console(stderr=True).status(label):
        yield


def share_from(data: dict[str, Any]) -> QueryCrawl:
    return QueryCrawl(**{**data, "gaps": tuple(data["gaps"])})


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if problems := store_problems(args.store):
        print("tmapi-store: " + "; ".join(problems), file=sys.stderr)
        return 2
    store = open_store(args.store)
    try:
        if args.command == "runs":
            show(store.runs(), args.json)
        elif args.command == "changes":
            run_id = args.run_id or last_run(store)
            if run_id is None:
                print("tmapi-store: no run in the store", file=sys.stderr)
                return 1
            changes = store.changes(run_id)
            skus = list(iter_variant_changes(store, run_id))
            if not args.json:
                counts = count(changes)
                for change in skus:
                    counts[change["change"]] = counts.get(change["change"], 0) + 1
                print(f"run {run_id}: {summary_line(counts)}")
            show(changes, args.json)
            if skus and not args.json:
                print("\nvariants:")
            show(skus, args.json)
        elif args.command in report_cli.COMMANDS:
            return report_cli.run_command(store, args)
        elif args.command == "history":
            with working(f"history: reading item {args.item_id}'s observations"):
                rows = store.history(args.item_id, args.language)
                skus = variant_history(store, args.item_id, args.language)
            show(rows, args.json)
            if skus and not args.json:
                print("\nvariants:")
            show(skus, args.json)
        else:
            return load(store, args.file)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
