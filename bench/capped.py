"""Benchmark 2: under an unknown concurrency cap.

The simulator answers 503 above 4 calls in flight, 200 ms a call; the crawl is
configured for 32. The limit is 4 calls per 200 ms (20 pages/s). Baseline: a
plain Scrapy spider with the same fan-out and Scrapy's own RetryMiddleware
(bench/baseline_spider.py ``-a follow=all``), 32 requests in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    CallLog,
    Row,
    Section,
    baseline_argv,
    check,
    count_lines,
    crawl_argv,
    interleaved,
    median_of,
    ok_pages,
    run_process,
    share,
    span,
)
from tmapi_crawler.simulator.process import SimulatorProcess

FIRST_CAT = 9001
ITEMS_PER_CAT = 2000
THROUGHPUT_TARGET, SHARE_TARGET = 0.8, 0.05


@dataclass(frozen=True)
class Params:
    categories: int
    cap: int
    latency: float
    concurrency: int
    repeat: int


SIZES = {
    "tiny": Params(categories=1, cap=2, latency=0.02, concurrency=8, repeat=1),
    "quick": Params(categories=2, cap=4, latency=0.2, concurrency=32, repeat=2),
    "full": Params(categories=3, cap=4, latency=0.2, concurrency=32, repeat=5),
}


def run(size: str, workdir: Path, repeat: int | None = None) -> Section:
    p = SIZES[size]
    repeat = repeat or p.repeat
    cat_ids = ",".join(str(FIRST_CAT + n) for n in range(p.categories))
    pages = p.categories * ITEMS_PER_CAT // 20
    limit = p.cap / p.latency  # pages per second
    sim = SimulatorProcess(
        request_log=workdir / "capped-simulator.jsonl",
        latency=p.latency,
        max_concurrency=p.cap,
        size=[f"{FIRST_CAT + n}={ITEMS_PER_CAT}" for n in range(p.categories)],
    ).start()
    calls = CallLog(sim.request_log)

    def figures(answered: list[dict], delivered: int) -> dict[str, float]:
        throughput = ok_pages(answered) / span(answered)
        start = min(c["t"] for c in answered)
        early = sum(c["status"] == 503 and c["t"] < start + 1 for c in answered)
        return {
            "pages/s": throughput,
            "limit": throughput / limit,
            "503": share(answered, 503),
            "503 early": early,
            "503 later": sum(c["status"] == 503 for c in answered) - early,
            "calls": len(answered),
            "lost": pages - delivered,
        }

    def crawler() -> dict[str, float]:
        output = workdir / "capped-crawler.jsonl"
        settings = {"TMAPI_BASE_URL": sim.url, "CONCURRENT_REQUESTS": p.concurrency}
        calls.mark()
        run = run_process(
            crawl_argv(output, {"cat_id": cat_ids}, settings),
            log=workdir / "capped-crawler.log",
        )
        answered = calls.since_mark()
        check(run.returncode == 0, f"crawler exited {run.returncode}", run)
        check(ok_pages(answered) == pages, "crawler missed pages", run)
        check(count_lines(output) == pages * 20, "crawler missed items", run)
        return figures(answered, pages)

    def plain() -> dict[str, float]:
        output = workdir / "capped-plain.jsonl"
        argv = baseline_argv(output, sim.url, cat_ids, "all", p.concurrency)
        calls.mark()
        run = run_process(argv, cwd=workdir, log=workdir / "capped-plain.log")
        check(run.returncode == 0, f"plain spider exited {run.returncode}", run)
        return figures(calls.since_mark(), count_lines(output) // 20)

    try:
        base, ours = interleaved(repeat, plain, crawler)
    finally:
        sim.stop()

    of_limit = median_of(ours, "limit")
    throttled = median_of(ours, "503")
    section = Section(
        number=2,
        title="Under an unknown concurrency cap",
        setup=(
            f"Simulator `--max-concurrency {p.cap}`, latency "
            f"{p.latency * 1000:.0f} ms; {p.categories} categories of 100 pages "
            f"({pages} pages); `CONCURRENT_REQUESTS={p.concurrency}`, everything "
            f"else as on main (adaptive window from 4). Limit = {p.cap} calls per "
            f"{p.latency:g} s = {limit:g} pages/s. Throughput = distinct pages "
            "answered with items / span of the run's calls; 503 share = calls "
            f"answered 503 / all calls, from the request log. {repeat} runs each, "
            "interleaved."
        ),
        baseline=(
            "bench/baseline_spider.py `-a follow=all`: the same fan-out in a plain "
            "`scrapy.Spider`, Scrapy's RetryMiddleware as shipped (2 retries, "
            f"503 retried at once), `CONCURRENT_REQUESTS={p.concurrency}`."
        ),
        reproduce="python -m bench --only 2",
    )
    section.rows = [
        Row.compared("throughput, pages delivered/s", ours, base, "pages/s"),
        Row(
            f"fraction of the limit ({limit:g} pages/s)",
            of_limit.show(),
            median_of(base, "limit").show(),
            "-",
            f"≥ {THROUGHPUT_TARGET}",
            of_limit.median >= THROUGHPUT_TARGET,
        ),
        Row(
            "503 share of calls",
            throttled.show(),
            median_of(base, "503").show(),
            "-",
            f"< {SHARE_TARGET:.0%}",
            throttled.median < SHARE_TARGET,
        ),
        Row(
            "calls made",
            median_of(ours, "calls").show(),
            median_of(base, "calls").show(),
        ),
        Row(
            f"pages lost (of {pages})",
            median_of(ours, "lost").show(),
            median_of(base, "lost").show(),
        ),
    ]
    early, later = median_of(ours, "503 early"), median_of(ours, "503 later")
    section.notes.append(
        "Where the 503s come from (the request log): slow start doubles the "
        f"window from 4 to 8 once, a burst of {early.show()} 503s in the first "
        "second; after that the window probes one call more after "
        "`TMAPI_CONCURRENCY_PROBE_AFTER` (32) successes, and each probe that "
        "meets the limit doubles the successes before the next (32, 64, 128, "
        f"...): {later.show()} 503s in the rest of the crawl. A page answered "
        "503 is retried after the backoff (`TMAPI_BACKOFF_BASE` 1 s with "
        "jitter), so the crawl's last pages may wait about a second at the end."
    )
    return section
