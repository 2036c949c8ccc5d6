"""Benchmark 2: under an unknown concurrency cap.

The simulator answers 503 above 4 calls in flight, 200 ms a call; the crawl is
configured for 32. The limit is 4 calls per 200 ms (20 pages/s). Each case is
one reading of when the 503 comes back (``--cap-answer``: at once, or after
the call's latency; API.md leaves it open) and one crawl size (one category
of 60 pages, three of 100). Baseline: a plain Scrapy spider with the same
fan-out and Scrapy's own RetryMiddleware (bench/baseline_spider.py
``-a follow=all``), 32 requests in flight, against the same simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    SAME_PAGES,
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
from tmapi_crawler.simulator.server import CAP_ANSWERS

FIRST_CAT = 9001
PAGES_PER_CAT = 100  # a category at the 2000-result cap, 20 a page
THROUGHPUT_TARGET, SHARE_TARGET = 0.85, 0.03


@dataclass(frozen=True)
class Params:
    crawls: tuple[int, ...]  # pages per crawl, one case each (and per 503 timing)
    cap: int
    latency: float
    concurrency: int
    repeat: int


SIZES = {
    "tiny": Params(crawls=(6, 12), cap=2, latency=0.02, concurrency=8, repeat=1),
    "quick": Params(crawls=(60, 300), cap=4, latency=0.2, concurrency=32, repeat=2),
    "full": Params(crawls=(60, 300), cap=4, latency=0.2, concurrency=32, repeat=5),
}


def categories(pages: int) -> dict[int, int]:
    """Category id -> catalog size for a crawl of *pages* pages."""
    count = -(-pages // PAGES_PER_CAT)
    return {FIRST_CAT + n: pages * 20 // count for n in range(count)}


def run(size: str, workdir: Path, repeat: int | None = None) -> Section:
    p = SIZES[size]
    repeat = repeat or p.repeat
    limit = p.cap / p.latency  # pages per second
    section = Section(
        number=2,
        title="Under an unknown concurrency cap",
        setup=(
            f"Simulator `--max-concurrency {p.cap}`, latency "
            f"{p.latency * 1000:.0f} ms, the 503 over the cap answered at once "
            "or after the call's latency (`--cap-answer`); crawls of "
            + " and ".join(f"{n} pages" for n in p.crawls)
            + f" (categories of at most {PAGES_PER_CAT} pages); "
            f"`CONCURRENT_REQUESTS={p.concurrency}`, everything else the "
            f"defaults. Limit = {p.cap} calls per {p.latency:g} s = {limit:g} "
            "pages/s. Throughput = distinct pages answered with items / span of "
            "the run's calls; 503 share = calls answered 503 / all calls, from "
            f"the request log. {repeat} runs each, interleaved, per case."
        ),
        baseline=(
            "bench/baseline_spider.py `-a follow=all`: the same fan-out in a plain "
            "`scrapy.Spider`, Scrapy's RetryMiddleware as shipped (2 retries, "
            f"503 retried at once), `CONCURRENT_REQUESTS={p.concurrency}`."
        ),
        reproduce="python -m bench --only 2",
    )
    early_503s = []
    for mode in CAP_ANSWERS:
        for pages in p.crawls:
            base, ours = measure(p, workdir / f"{mode}-{pages}", mode, pages, repeat)
            section.rows += rows(f"{mode}, {pages} pages", ours, base, pages, limit)
            early_503s.append(
                f"{mode}, {pages} pages: {median_of(ours, '503 early').show()} "
                f"in the first second, {median_of(ours, '503 later').show()} after"
            )
    section.notes.append(
        "Where the 503s come from (the request log, medians): "
        + "; ".join(early_503s)
        + ". A page answered 503 is retried after the backoff "
        "(`TMAPI_BACKOFF_BASE` 1 s with jitter), so the crawl's last pages may "
        "wait about a second at the end."
    )
    return section


def measure(
    p: Params, workdir: Path, mode: str, pages: int, repeat: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """The plain spider's runs and the crawler's, against one simulator."""
    workdir.mkdir(parents=True)
    sizes = categories(pages)
    cat_ids = ",".join(map(str, sizes))
    limit = p.cap / p.latency
    sim = SimulatorProcess(
        request_log=workdir / "capped-simulator.jsonl",
        latency=p.latency,
        max_concurrency=p.cap,
        cap_answer=mode,
        size=[f"{cat}={items}" for cat, items in sizes.items()],
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
        settings = {
            "TMAPI_BASE_URL": sim.url,
            "CONCURRENT_REQUESTS": p.concurrency,
            **SAME_PAGES,
        }
        calls.mark()
        # a run of its own: nothing remembered from the runs before it
        env: dict[str, str | None] = {
            "XDG_CACHE_HOME": str(workdir / f"cache-{len(ours)}")
        }
        run = run_process(
            crawl_argv(output, {"cat_id": cat_ids}, settings),
            env=env,
            log=workdir / "capped-crawler.log",
        )
        answered = calls.since_mark()
        check(run.returncode == 0, f"crawler exited {run.returncode}", run)
        check(ok_pages(answered) == pages, "crawler missed pages", run)
        check(count_lines(output) == pages * 20, "crawler missed items", run)
        result = figures(answered, pages)
        ours.append(result)
        return result

    def plain() -> dict[str, float]:
        output = workdir / "capped-plain.jsonl"
        argv = baseline_argv(output, sim.url, cat_ids, "all", p.concurrency)
        calls.mark()
        run = run_process(argv, cwd=workdir, log=workdir / "capped-plain.log")
        check(run.returncode == 0, f"plain spider exited {run.returncode}", run)
        return figures(calls.since_mark(), count_lines(output) // 20)

    ours: list[dict[str, float]] = []
    try:
        base, _ = interleaved(repeat, plain, crawler)
    finally:
        sim.stop()
    return base, ours


def rows(
    case: str,
    ours: list[dict[str, float]],
    base: list[dict[str, float]],
    pages: int,
    limit: float,
) -> list[Row]:
    of_limit = median_of(ours, "limit")
    throttled = median_of(ours, "503")
    return [
        Row.compared(f"throughput, pages delivered/s - {case}", ours, base, "pages/s"),
        Row(
            f"fraction of the limit ({limit:g} pages/s) - {case}",
            of_limit.show(),
            median_of(base, "limit").show(),
            "-",
            f"≥ {THROUGHPUT_TARGET}",
            of_limit.median >= THROUGHPUT_TARGET,
        ),
        Row(
            f"503 share of calls - {case}",
            throttled.show(),
            median_of(base, "503").show(),
            "-",
            f"< {SHARE_TARGET:.0%}",
            throttled.median < SHARE_TARGET,
        ),
        Row(
            f"calls made - {case}",
            median_of(ours, "calls").show(),
            median_of(base, "calls").show(),
        ),
        Row(
            f"pages lost (of {pages}) - {case}",
            median_of(ours, "lost").show(),
            median_of(base, "lost").show(),
        ),
    ]
