"""How long the run report of a large store takes, and how much it weighs.

    python -m bench.run_report [--observations 100000] [--runs 10]

Builds a SQLite store of *observations* observations (``--runs`` runs of the
same listings in 5 categories, prices moving between runs, the changes made
by the store's own writes, gone judged), then times the report of its last
run as the crawl writes it (read from the store, plotted, rendered), with
the crawl's own figures: its pace sampled every half second over two hours
and an image per listing. Not a test: no time is asserted; the figures go
to the report of issue 33 and docs/store.md.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tmapi_crawler.report.data import CrawlFacts, Sample, read_run
from tmapi_crawler.report.html import render
from tmapi_crawler.store.changes import QueryCrawl
from tmapi_crawler.store.db import open_store

CATEGORIES = (11, 12, 13, 14, 15)


def build(path: Path, observations: int, runs: int) -> tuple[str, int]:
    """The store; its last run and the listings it saw."""
    store = open_store(f"sqlite:///{path}")
    size = observations // runs
    rng = random.Random(33)
    prices = {n: Decimal(rng.randint(50, 50_000)) / 100 for n in range(size)}
    start = datetime(2026, 12, 1, tzinfo=UTC)
    run_id = ""
    for run in range(runs):
        run_id = store.open_run(None)
        store.join(run_id, "bench")
        when = (start + timedelta(days=run)).isoformat()
        rows = []
        for n in range(size):
            if rng.random() < 0.05:
                prices[n] = max(Decimal("0.10"), prices[n] * Decimal(
                    rng.choice(("0.8", "0.9", "1.1", "1.25"))
                ).quantize(Decimal("0.01")))  # fmt: skip
            item_id = 600_000_000_000 + n
            url = f"https://detail.1688.com/offer/{item_id}.html"
            rows.append((item_id, "en", CATEGORIES[n % 5], f"listing {n}",
                         prices[n], "CNY", f"shop {n % 97}", n % 7 == 0, 3,
                         rng.randint(0, 5000), url, when))  # fmt: skip
        for first in range(0, len(rows), 1000):
            store.write(run_id, rows[first : first + 1000])
        shares = [
            QueryCrawl(f"cat_id={cat}", cat, "en", f"category {cat} (en)", True,
                       {f"cat_id={cat}": size // 5}, (), 0, size // 5)
            for cat in CATEGORIES
        ]  # fmt: skip
        store.settle(run_id, "bench", shares, "finished")
        store.finish_run(run_id, "finished", True)
    store.close()
    return run_id, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite"
        began = time.monotonic()
        run_id, size = build(path, args.observations, args.runs)
        print(f"store of {args.observations} observations built in "
              f"{time.monotonic() - began:.1f} s")  # fmt: skip
        samples = [Sample(n / 2, n * 3, n * 60) for n in range(2 * 3600 * 2)]
        images = {
            (600_000_000_000 + n, "en"): f"https://cbu01.alicdn.com/img/{n}.jpg"
            for n in range(size)
        }
        store = open_store(f"sqlite:///{path}")
        began = time.monotonic()
        data = read_run(store, run_id, CrawlFacts(None, samples, images))
        read = time.monotonic() - began
        page = render(data)
        total = time.monotonic() - began
        store.close()
        out = Path(tmp) / "report.html"
        out.write_text(page, encoding="utf-8")
        print(f"report of run {run_id}: read {read:.2f} s, read and rendered "
              f"{total:.2f} s, {out.stat().st_size} bytes "
              f"({data.counts})")  # fmt: skip


if __name__ == "__main__":
    main()
