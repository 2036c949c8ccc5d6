"""Benchmark 7: calls for the same items, at the page size the API serves.

One category of 2,000 items (the result cap) crawled with the crawler's
defaults against the simulator serving each reading of TMAPI's page size
(API.md leaves it open): it serves 50; it clamps to 20 quietly; it clamps to
20 echoing the size asked in ``page_size``; it refuses 50 with a 422. Figure:
calls the crawl made and items it delivered, from the simulator's log and the
feed. Baseline: the same crawler asking the documented 20 a page
(``TMAPI_PAGE_SIZE_PROBE=20``, what it asked before it learned the size
served), in the same invocation, against the same simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.common import (
    CallLog,
    Row,
    Section,
    check,
    count_lines,
    crawl_argv,
    interleaved,
    median_of,
    run_process,
)
from tmapi_crawler.simulator.process import SimulatorProcess

CAT = 7001
# reading: simulator options, the page size it serves
READINGS: dict[str, tuple[dict[str, object], int]] = {
    "serves 50": ({}, 50),
    "clamps to 20 quietly": ({"max_page_size": 20, "page_size_over": "clamp"}, 20),
    "clamps to 20, echoing 50": (
        {"max_page_size": 20, "page_size_over": "clamp-echo"},
        20,
    ),
    "refuses 50 (422)": ({"max_page_size": 20}, 20),
}


@dataclass(frozen=True)
class Params:
    items: int
    latency: float
    repeat: int


SIZES = {
    "tiny": Params(items=120, latency=0.01, repeat=1),
    "quick": Params(items=2000, latency=0.05, repeat=1),
    "full": Params(items=2000, latency=0.2, repeat=2),
}


def target_calls(items: int, served: int) -> int:
    """The issue's bound: a page of *served* items each, and one call more
    (the refused probe)."""
    return -(-items // served) + 1


def crawl(
    sim_url: str, calls: CallLog, probe: int, workdir: Path, expected: int
) -> dict[str, float]:
    """One crawl of the category asking *probe* items on its first page."""
    output = workdir / f"items-{probe}.jsonl"
    calls.mark()
    settings = {"TMAPI_BASE_URL": sim_url, "TMAPI_PAGE_SIZE_PROBE": probe}
    argv = crawl_argv(output, {"cat_id": CAT}, {**settings, "TMAPI_PROGRESS": False})
    result = run_process(argv, log=workdir / f"crawl-{probe}.log")
    made = calls.since_mark()
    items = count_lines(output)
    check(result.returncode == 0, f"exit {result.returncode}", result)
    check(items == expected, f"{items} of {expected} items", result)
    return {"calls": len(made), "lost": expected - items}


def run(size: str, workdir: Path, repeat: int | None = None) -> Section:
    p = SIZES[size]
    repeat = repeat or p.repeat
    section = Section(
        number=7,
        title="Calls for the same items: the page size served, learned",
        setup=(
            f"One category of {p.items:,} items, simulator latency "
            f"{p.latency * 1000:.0f} ms, each reading of the page size served "
            "(`--max-page-size 20 --page-size-over clamp|clamp-echo|refuse`, or "
            "50 served); the crawler's defaults (`TMAPI_PAGE_SIZE_PROBE=50`). "
            "Calls and items from the simulator's log and the feed; a fresh "
            f"cache each run (nothing remembered). {repeat} runs each."
        ),
        baseline=(
            "the same crawler asking the documented 20 a page "
            "(`-s TMAPI_PAGE_SIZE_PROBE=20`), same simulator, same invocation"
        ),
        reproduce="python -m bench --only 7",
    )
    for reading, (options, served) in READINGS.items():
        log = workdir / f"{len(section.rows)}-requests.jsonl"
        with SimulatorProcess(
            request_log=log, size=f"{CAT}={p.items}", latency=p.latency, **options
        ) as sim:
            calls = CallLog(log)
            subject, baseline = interleaved(
                repeat,
                partial(crawl, sim.url, calls, 50, workdir, p.items),
                partial(crawl, sim.url, calls, 20, workdir, p.items),
            )
        bound = target_calls(p.items, served)
        made, asked_20 = median_of(subject, "calls"), median_of(baseline, "calls")
        lost, lost_20 = median_of(subject, "lost"), median_of(baseline, "lost")
        ratio = f"{made.median / asked_20.median:.2f}"
        each, each_20 = (f"{m.median * 1000 / p.items:.1f}" for m in (made, asked_20))
        the_api = f"the API {reading}"
        section.rows += [
            Row(f"calls for {p.items:,} items, {the_api}", made.show(),
                asked_20.show(), ratio, f"≤ {bound}", made.high <= bound),
            Row(f"calls per 1,000 items, {the_api}", each, each_20),
            Row(f"items lost, {the_api}", lost.show(), lost_20.show(),
                target="0", met=lost.high == 0),
        ]  # fmt: skip
    section.notes.append(
        "Where the API serves 50, the same items cost 40% of the calls; where it "
        "serves 20, the same calls as asking 20, and one call more where it "
        "refuses 50 (the probe, once per token: the size is remembered)."
    )
    return section
