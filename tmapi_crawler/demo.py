"""``make demo``: crawl one category of the bundled simulator, two days running.

Starts the simulator on a free loopback port at day 0, runs ``scrapy crawl
category`` against it with a demo token (the simulator spends no credit),
the whole category (``split=price``: it holds more than the API's 2000-result
cap), into ``out/`` and the catalog store ``out/catalog.sqlite``; then the
same at day 1, when some prices have changed, some listings have gone and
new ones appeared; and prints what changed, as ``tmapi-store`` reads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tmapi_crawler.simulator.process import SimulatorProcess
from tmapi_crawler.store.changes import KINDS, count, summary_line
from tmapi_crawler.store.db import open_store

CATEGORY = "1031922"  # the documentation's example category
OUT = Path("out")
STORE = OUT / "catalog.sqlite"
EXAMPLES = 3  # rows shown per kind of change


def crawl(day: int) -> int:
    """One day's crawl; its exit code."""
    before = set(OUT.glob("*.jsonl"))
    with SimulatorProcess(latency=0.2, day=day) as simulator:
        print(
            f"\nday {day}: simulator {simulator.url} (200 ms a call, as the real API)"
        )
        command = [
            sys.executable, "-m", "scrapy", "crawl", "category",
            "-a", f"cat_id={CATEGORY}", "-a", "split=price",
            "-s", f"TMAPI_BASE_URL={simulator.url}",
            "-s", f"TMAPI_STORE=sqlite:///{STORE}",
        ]  # fmt: skip
        env = {**os.environ, "TMAPI_TOKEN": "demo-token"}
        result = subprocess.run(command, env=env, check=False)
        calls = len(simulator.calls())
    written = sorted(
        set(OUT.glob("*.jsonl")) - before - set(OUT.glob("*.failed.jsonl"))
    )
    if result.returncode != 0 or not written:
        print(f"demo crawl failed (exit code {result.returncode})", file=sys.stderr)
        return result.returncode or 1
    for path in written:
        with path.open(encoding="utf-8") as lines:
            items = sum(1 for _ in lines)
        print(
            f"\nday {day}: {items} items of category {CATEGORY} in {path} "
            f"({calls} API calls)"
        )
    return 0


def show_changes() -> None:
    store = open_store(f"sqlite:///{STORE}")
    try:
        run = store.runs()[-1]["run_id"]
        changes = store.changes(run)
    finally:
        store.close()
    print(
        f"\nWhat changed from day 0 to day 1 (run {run}): "
        f"{summary_line(count(changes))}"
    )
    for kind in KINDS:
        shown = [c for c in changes if c["change"] == kind][:EXAMPLES]
        for c in shown:
            prices = f"{c['old_price'] or '-'} -> {c['new_price'] or '-'} CNY"
            print(f"  {kind:5}  {c['item_id']}  {prices:24}  {c['title']}")
    print(f"\nThe store: {STORE}. Read it back: tmapi-store --store sqlite:///{STORE} "
          "changes | runs | history ITEM_ID")  # fmt: skip


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for leftover in OUT.glob(STORE.name + "*"):  # the last demo's store
        leftover.unlink()
    for day in (0, 1):
        if code := crawl(day):
            return code
    show_changes()
    return 0


if __name__ == "__main__":
    sys.exit(main())
