"""``tmapi-store``: read the catalog store back (``python -m tmapi_crawler.store``).

    tmapi-store runs                          every run: when, how it ended
    tmapi-store changes [RUN_ID]              a run's changes (default: the last run)
    tmapi-store history ITEM_ID [-l LANG]     an item's price and sales, run by run
    tmapi-store load FILE                     write observations the crawl could not
    tmapi-store report [--run ID] [-o FILE]   a run's report, one HTML file
    tmapi-store alerts --run ID               send a run's alerts (again)

The store is ``--store URI``, else ``TMAPI_STORE``, else the demo's
``sqlite:///out/catalog.sqlite``. ``--json`` prints JSON Lines, the records
of the changes feed for ``changes``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from tmapi_crawler.report import cli as report_cli
from tmapi_crawler.store.changes import OBSERVED, count, summary_line
from tmapi_crawler.store.db import Store, open_store, store_problems

DEFAULT_STORE = "sqlite:///out/catalog.sqlite"


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
    """Observations a crawl kept in a file (the store was unreachable): written
    to their run, each once, with the changes they make."""
    by_run: dict[str, list[tuple[Any, ...]]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record.get("price") is not None:
                record["price"] = Decimal(record["price"])
            run_id = record.get("run_id") or store.open_run(None)
            by_run.setdefault(run_id, []).append(tuple(record[n] for n in OBSERVED))
    changes = []
    for run_id, rows in by_run.items():
        changes += store.write(run_id, rows)
    print(f"{sum(map(len, by_run.values()))} observations loaded: "
          f"{summary_line(count(changes))}")  # fmt: skip
    return 0


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
            if not args.json:
                print(f"run {run_id}: {summary_line(count(changes))}")
            show(changes, args.json)
        elif args.command in report_cli.COMMANDS:
            return report_cli.run_command(store, args)
        elif args.command == "history":
            show(store.history(args.item_id, args.language), args.json)
        else:
            return load(store, args.file)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
