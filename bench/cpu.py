"""Benchmark 3: CPU cost per page, at zero latency, through the full pipeline.

Many categories of 2000 items (100 pages of 20), no latency, no cap: the
crawl is bound by CPU. The crawler runs with every item pipeline on main and
the JSON Lines feed export; the baseline is a bare aiohttp client
(bench/bare_client.py) that fetches the same pages at the same concurrency,
parses the JSON and writes the same lines.
"""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    BENCH_TOKEN,
    ROOT,
    CallLog,
    ProcessRun,
    Row,
    Section,
    check,
    count_lines,
    crawl_argv,
    interleaved,
    median_of,
    paired,
    run_process,
    span,
)
from tmapi_crawler.simulator.process import SimulatorProcess

FIRST_CAT = 8001
ITEMS_PER_CAT = 2000
TARGET = 0.5


@dataclass(frozen=True)
class Params:
    categories: int
    concurrency: int
    repeat: int


SIZES = {
    "tiny": Params(categories=2, concurrency=8, repeat=1),
    "quick": Params(categories=10, concurrency=16, repeat=2),
    "full": Params(categories=20, concurrency=16, repeat=5),
}


def warm(url: str, cat_ids: list[int]) -> None:
    """Ask page 1 of each category once, so the simulator has built its
    catalogs before anything is timed (both clients then find them cached)."""
    for cat_id in cat_ids:
        query = f"cat_id={cat_id}&page=1&apiToken={BENCH_TOKEN}"
        with urllib.request.urlopen(f"{url}/1688/category/items/v2?{query}") as r:
            r.read()


def run(size: str, workdir: Path, repeat: int | None = None) -> Section:
    p = SIZES[size]
    repeat = repeat or p.repeat
    cat_ids = list(range(FIRST_CAT, FIRST_CAT + p.categories))
    items = ITEMS_PER_CAT * p.categories
    pages = items // 20
    sim = SimulatorProcess(
        request_log=workdir / "cpu-simulator.jsonl",
        size=[f"{c}={ITEMS_PER_CAT}" for c in cat_ids],
    ).start()
    calls = CallLog(sim.request_log)

    def measured(run: ProcessRun | None, output: Path, name: str) -> dict[str, float]:
        answered = calls.since_mark()
        assert run is not None
        check(run.returncode == 0, f"{name} exited {run.returncode}", run)
        check(count_lines(output) == items, f"{name} missed items", run)
        check(len(answered) == pages, f"{name} made {len(answered)} calls", run)
        seconds = span(answered)
        return {
            "pages/s": pages / seconds,
            "items/s": items / seconds,
            "cpu ms/page": run.cpu * 1000 / pages,
        }

    def crawler() -> dict[str, float]:
        output = workdir / "cpu-crawler.jsonl"
        settings = {
            "TMAPI_BASE_URL": sim.url,
            "CONCURRENT_REQUESTS": p.concurrency,
            "LOG_LEVEL": "INFO",
        }
        argv = crawl_argv(output, {"cat_id": ",".join(map(str, cat_ids))}, settings)
        calls.mark()
        run = run_process(argv, log=workdir / "cpu-crawler.log")
        return measured(run, output, "crawler")

    def bare() -> dict[str, float]:
        output = workdir / "cpu-bare.jsonl"
        argv = [
            sys.executable, str(ROOT / "bench" / "bare_client.py"), sim.url,
            ",".join(map(str, cat_ids)), str(p.concurrency), str(output),
        ]  # fmt: skip
        calls.mark()
        run = run_process(argv, log=workdir / "cpu-bare.log")
        return measured(run, output, "bare client")

    try:
        warm(sim.url, cat_ids)
        base, ours = interleaved(repeat, bare, crawler)
    finally:
        sim.stop()

    ratio = paired(ours, base, "pages/s")
    section = Section(
        number=3,
        title="CPU cost per page",
        setup=(
            f"Simulator without latency or cap; {p.categories} categories of "
            f"{ITEMS_PER_CAT} items ({pages} pages, {items:,} items); "
            f"{p.concurrency} calls in flight at most. The crawler runs as "
            "configured on main (every `ITEM_PIPELINES` entry, JSON Lines feed "
            "`-O`). Rates over the simulator-logged span of the crawl; CPU per page "
            f"is the client process's user+system time (start-up included). "
            f"{repeat} runs each, interleaved."
        ),
        baseline=(
            "bench/bare_client.py: aiohttp, one `TCPConnector(limit="
            f"{p.concurrency})`, page 1 of every category then all other pages, "
            "`json.loads`, the same context fields, `json.dumps` per line."
        ),
        reproduce="python -m bench --only 3",
    )
    section.rows = [
        Row(
            "pages/s",
            median_of(ours, "pages/s").show(),
            median_of(base, "pages/s").show(),
            ratio.show(),
            f"≥ {TARGET}",
            ratio.median >= TARGET,
        ),
        Row(
            "items/s",
            median_of(ours, "items/s").show(),
            median_of(base, "items/s").show(),
            paired(ours, base, "items/s").show(),
        ),
        Row(
            "client CPU, ms per page",
            median_of(ours, "cpu ms/page").show(),
            median_of(base, "cpu ms/page").show(),
            paired(ours, base, "cpu ms/page", invert=True).show(),
        ),
    ]
    section.notes.append(
        "The simulator runs on the same 2 cores: it was warmed (page 1 of every "
        "category fetched once, so its catalogs are built and cached) and both "
        "clients crawl the same simulator process, so its cost weighs on both."
    )
    return section
