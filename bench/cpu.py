"""Benchmark 3: CPU cost per page, at zero latency, through the full pipeline.

Many categories of 2000 items (100 pages of 20), no latency, no cap: the
crawl is bound by CPU. The crawler runs with every item pipeline on main and
the JSON Lines feed export; the baseline is a bare aiohttp client
(bench/bare_client.py) that fetches the same pages at the same concurrency,
parses the JSON and writes the same lines. Two plain Scrapy spiders
(bench/baseline_spider.py) place Scrapy itself between the two: one yields the
same items into the same feed, one yields none (Scrapy's request path alone,
the most any Scrapy spider can do here).
"""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    BENCH_TOKEN,
    ROOT,
    SAME_PAGES,
    CallLog,
    ProcessRun,
    Row,
    Section,
    baseline_argv,
    check,
    count_lines,
    crawl_argv,
    interleaved,
    median_of,
    paired,
    run_process,
    span,
)
from tmapi_crawler.settings import ASYNCIO_EVENT_LOOP as LOOP
from tmapi_crawler.settings import CONCURRENT_ITEMS
from tmapi_crawler.simulator.process import SimulatorProcess

FIRST_CAT = 8001
ONE_PAGE_CAT = 7999  # a category of one page: what starting a crawl costs
ITEMS_PER_CAT = 2000
TARGET = 0.5


@dataclass(frozen=True)
class Params:
    categories: int
    concurrency: int
    repeat: int
    items_per_cat: int = ITEMS_PER_CAT  # a smoke test's categories can be smaller


SIZES = {
    "tiny": Params(categories=2, concurrency=8, repeat=1, items_per_cat=200),
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
    items = p.items_per_cat * p.categories
    pages = items // 20
    sim = SimulatorProcess(
        request_log=workdir / "cpu-simulator.jsonl",
        size=[f"{c}={p.items_per_cat}" for c in cat_ids] + [f"{ONE_PAGE_CAT}=20"],
    ).start()
    calls = CallLog(sim.request_log)

    def measured(
        run: ProcessRun | None, output: Path, name: str, lines: int = items
    ) -> dict[str, float]:
        answered = calls.since_mark()
        assert run is not None
        check(run.returncode == 0, f"{name} exited {run.returncode}", run)
        check(count_lines(output) == lines, f"{name} missed items", run)
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
            **SAME_PAGES,
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

    def plain(yield_items: bool) -> dict[str, float]:
        name = "plain-scrapy" if yield_items else "scrapy-request-path"
        output = workdir / f"cpu-{name}.jsonl"
        argv = baseline_argv(
            output, sim.url, ",".join(map(str, cat_ids)), "all", p.concurrency,
            "-a", f"items={'all' if yield_items else 'none'}",
            "-s", "LOG_LEVEL=INFO",
        )  # fmt: skip
        calls.mark()
        run = run_process(argv, cwd=workdir, log=workdir / f"cpu-{name}.log")
        return measured(run, output, name, items if yield_items else 0)

    def item_path() -> dict[str, float]:
        """The plain spider's items through Scrapy alone: no pipeline, no
        feed, the crawler's event loop and CONCURRENT_ITEMS (the least CPU a
        page of 20 Scrapy items can cost here)."""
        argv = baseline_argv(
            None, sim.url, ",".join(map(str, cat_ids)), "all", p.concurrency,
            "-s", "LOG_LEVEL=INFO", "-s", f"CONCURRENT_ITEMS={CONCURRENT_ITEMS}",
            *(["-s", f"ASYNCIO_EVENT_LOOP={LOOP}"] if LOOP else []),
        )  # fmt: skip
        calls.mark()
        run = run_process(argv, cwd=workdir, log=workdir / "cpu-item-path.log")
        check(f"'item_scraped_count': {items}" in run.output, "items missing", run)
        return measured(run, workdir / "cpu-item-path.jsonl", "item path", 0)

    def one_page(name: str, argv: list[str]) -> dict[str, float]:
        """A crawl of one page of 20 items: what starting costs."""
        output = Path(argv[argv.index("-O") + 1])
        log = workdir / f"cpu-{name}-start.log"
        # the plain spider runs outside the project (Scrapy's defaults)
        cwd = workdir if "runspider" in argv else None
        run = run_process(argv, cwd=cwd, log=log)
        check(run.returncode == 0, f"{name} exited {run.returncode}", run)
        check(count_lines(output) == 20, f"{name} missed items", run)
        return {"cpu s": run.cpu}

    start_settings = {"TMAPI_BASE_URL": sim.url, "LOG_LEVEL": "INFO", **SAME_PAGES}
    crawler_start = crawl_argv(
        workdir / "cpu-crawler-start.jsonl", {"cat_id": ONE_PAGE_CAT}, start_settings
    )
    plain_start = baseline_argv(
        workdir / "cpu-plain-start.jsonl", sim.url, ONE_PAGE_CAT, "all", 1,
        "-s", "LOG_LEVEL=INFO",
    )  # fmt: skip
    try:
        warm(sim.url, [*cat_ids, ONE_PAGE_CAT])
        base, scrapy_items, scrapy_floor, scrapy_item_path, ours = interleaved(
            repeat, bare, lambda: plain(True), lambda: plain(False), item_path, crawler
        )
        scrapy_start, ours_start = interleaved(
            max(repeat, 3),
            lambda: one_page("plain-scrapy", plain_start),
            lambda: one_page("crawler", crawler_start),
        )
    finally:
        sim.stop()

    ratio = paired(ours, base, "pages/s")
    section = Section(
        number=3,
        title="CPU cost per page",
        setup=(
            f"Simulator without latency or cap; {p.categories} categories of "
            f"{p.items_per_cat} items ({pages} pages, {items:,} items); "
            f"{p.concurrency} calls in flight at most. The crawler runs as "
            "configured on main (every `ITEM_PIPELINES` entry, JSON Lines feed "
            "`-O`). Rates over the simulator-logged span of the crawl; CPU per page "
            f"is the client process's user+system time (start-up included). "
            f"{repeat} runs each, interleaved. Then a one-page crawl (a "
            f"category of 20 items) by the crawler and by the plain Scrapy "
            f"spider, {max(repeat, 3)} runs each, interleaved: what a crawl "
            "costs to start."
        ),
        baseline=(
            "bench/bare_client.py: aiohttp, one `TCPConnector(limit="
            f"{p.concurrency})`, page 1 of every category then all other pages, "
            "`json.loads`, the same context fields, `json.dumps` per line. "
            "Scrapy itself: bench/baseline_spider.py `-a follow=all` (the same "
            "pages; the same items into the same JSON Lines feed, with no "
            "validation, dedupe or error contract), and with `-a items=none` "
            "(each answer parsed, no item: Scrapy's request path alone); "
            "Scrapy's defaults, `LOG_LEVEL=INFO`."
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
        Row.compared("items/s", ours, base, "items/s"),
        Row.compared("client CPU, ms per page", ours, base, "cpu ms/page", invert=True),
        Row.compared(
            "pages/s - plain Scrapy spider, same items and feed (baseline: bare)",
            scrapy_items,
            base,
            "pages/s",
        ),
        Row.compared(
            "pages/s - Scrapy's request path alone, no item (baseline: bare)",
            scrapy_floor,
            base,
            "pages/s",
        ),
        Row.compared(
            "pages/s - crawler against the plain Scrapy spider",
            ours,
            scrapy_items,
            "pages/s",
        ),
        Row(
            "client CPU, ms per page - plain Scrapy spider; request path alone",
            median_of(scrapy_items, "cpu ms/page").show(),
            median_of(scrapy_floor, "cpu ms/page").show(),
        ),
        Row.compared(
            "client CPU, ms per page - Scrapy's item path alone: the plain "
            "spider's items, no pipeline, no feed, the crawler's event loop "
            "and CONCURRENT_ITEMS (baseline: the crawler)",
            scrapy_item_path,
            ours,
            "cpu ms/page",
        ),
        Row.compared(
            "client CPU of a one-page crawl (20 items), s: start-up, one call, "
            "the feed - crawler against the plain Scrapy spider",
            ours_start,
            scrapy_start,
            "cpu s",
        ),
    ]
    floor = paired(scrapy_floor, base, "pages/s").median
    section.notes.append(
        f"Scrapy's request path alone (no item at all) reaches {floor:.2f} of "
        "the bare client here: no Scrapy spider can meet the 0.5 target on this "
        "machine. The crawler reaches "
        f"{paired(ours, scrapy_items, 'pages/s').median:.2f} of a plain Scrapy "
        "spider that yields the same items into the same feed without "
        "validation, dedupe or the error contract."
    )
    section.notes.append(
        "Fixed after profiling (`python -m bench.profile_crawl`), 2026-12-01, "
        "from ~22 to ~9 ms of CPU a page: Scrapy's JSON Lines exporter asked "
        "itemadapter for every field's metadata and re-encoded each nested model "
        "(~400 us an item, half the CPU): typed items now go through pydantic's "
        "serializer (~5 us); Scrapy started 100 item workers for every answer "
        "(`CONCURRENT_ITEMS`, now 4); Scrapy's DEBUG line for every item and page "
        "was built though no handler took it (now only when one would); URLs were "
        "validated with urlsplit (now a regular expression for the usual shape); "
        "two spider middlewares of no use to an API (URL length, depth) and the "
        "meta-copy check were a layer each item passed through (now off). What "
        "is left is mostly Scrapy's own work per item and per request."
    )
    section.notes.append(
        "Fixed after profiling again, 2026-12-02 (issue 14): Scrapy sent "
        "`item_scraped` to four receivers, one asyncio task each per item (core "
        "stats, feed exporter, ledger, feed alert): one fan-out receiver now "
        "calls them in turn (tmapi_crawler/itemsignal.py); uvloop under the "
        "asyncio reactor (`ASYNCIO_EVENT_LOOP`); item validation takes a fast "
        "path for the values the API usually sends (22 to 16 us an item); the "
        "query key the ledger asks for several times a page is cached; the "
        "switched-off remote control is no longer loaded (its module imports "
        "aiohttp's web server at start). Tried, did not pay: "
        "`CONCURRENT_ITEMS=1`, orjson for the answer (~60 us less a page of ~5 "
        "ms), Scrapy's aiohttp download handler (no clear gain over "
        "Twisted's, within the noise)."
    )
    section.notes.append(
        "The simulator runs on the same 2 cores: it was warmed (page 1 of every "
        "category fetched once, so its catalogs are built and cached) and every "
        "client crawls the same simulator process, so its cost weighs on all."
    )
    return section
