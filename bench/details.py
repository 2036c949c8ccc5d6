"""Benchmark 8: item details, the calls chosen and the window they share.

Two parts (issue 32's targets). First, the calls: one category crawled
with ``-a details=new,price`` and a SQLite catalog store on the simulator's
day 0, then on day 1 (a new simulator, the same catalog size, the same
store); also with ``details=all`` and with no details. Figures from the
simulator's request log: listing calls and detail calls apart, each item's
detail calls, and their cost at 0.002 USD a call (the documented example:
``TMAPI_COST_PER_CALL`` is unset by default). The listings chosen are computed
from the simulator's catalog (``Catalog.products`` of each day: new = listed
today and not yesterday, repriced = listed both days at another price).

Second, the window: the simulator capped at 4 calls in flight for every
endpoint together, 1 s a call, each reading of when the 503 over the cap
comes back; a category of 10 pages of 20 with ``details=all`` (210 calls),
``CONCURRENT_REQUESTS=32``. Figures: calls answered 200 / span of the run's
calls / (cap / latency), and the 503 share of all calls. Baseline: the same
crawler without details over a crawl of as many calls, pages only (210 pages
in three categories of 70), interleaved with it against the same simulator.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import (
    SAME_PAGES,
    CallLog,
    Row,
    Section,
    check,
    count_lines,
    crawl_argv,
    interleaved,
    median_of,
    run_process,
    share,
    span,
)
from tmapi_crawler.contract.api import ITEMS_PATH
from tmapi_crawler.contract.details import DETAIL_PATH
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.simulator.process import SimulatorProcess
from tmapi_crawler.simulator.server import CAP_ANSWERS

CAT = 8001  # the category detailed
FIRST_PAGES_CAT = 8101  # the pages-only baseline's categories
PAGE_SIZE = 20  # SAME_PAGES: the documented size, no probe
COST = Decimal("0.002")  # USD a call: the documented example
EARLY = 5  # a 503 in the first 5 calls' time is the opening's
LATER_503S = (
    "The 503s after the opening are the window's later probes, each one call "
    "one level above the limit it learned (tmapi_crawler/contract/"
    "concurrency.py: a probe waits for a number of successes, doubled after "
    "each 503), as many with details as with pages only: the call that "
    "probes is whichever is next, a page or an item's details."
)

# case -> (-a details=..., the simulator's day, with the catalog store)
CASES = {
    "day 0, no details": ("none", 0, False),
    "day 0, details=new,price": ("new,price", 0, True),
    "day 1, details=new,price": ("new,price", 1, True),
    "day 0, details=all": ("all", 0, False),
}


@dataclass(frozen=True)
class Params:
    items: int  # the category detailed (both parts)
    fast_latency: float  # the calls part's seconds a call
    cap: int  # the window part's account cap
    latency: float  # its seconds a call
    concurrency: int
    repeat: int
    readings: tuple[str, ...] = CAP_ANSWERS  # of the 503 over the cap


SIZES = {
    # tiny (make test's check that it runs): one reading of the 503
    "tiny": Params(40, 0.01, 4, 0.05, 32, 1, readings=CAP_ANSWERS[:1]),
    "quick": Params(200, 0.05, 4, 1.0, 32, 1),
    "full": Params(200, 0.05, 4, 1.0, 32, 3),
}


def listed(items: int, day: int) -> dict[int, Decimal]:
    """Item id -> price of the category's listings on *day* (the simulator's
    catalog, seed 0)."""
    return {p.item_id: p.price for p in Catalog(0, {CAT: items}, day=day).products(CAT)}


def chosen(items: int, details: str, day: int) -> set[int]:
    """The listings *details* chooses on *day*, with a store that holds the
    day before (day 0: an empty store)."""
    today = listed(items, day)
    if details == "none":
        return set()
    if details == "all" or day == 0:
        return set(today)
    before = listed(items, day - 1)
    new = set(today) - set(before)
    repriced = {i for i in set(today) & set(before) if today[i] != before[i]}
    return new | repriced


def pages_of(items: int) -> int:
    return -(-items // PAGE_SIZE)


def baseline_categories(calls: int) -> dict[int, int]:
    """Category id -> size for a pages-only crawl of *calls* pages, at most
    100 pages (the 2,000-result cap) a category."""
    count = -(-calls // 100)
    return {FIRST_PAGES_CAT + n: calls * PAGE_SIZE // count for n in range(count)}


class Crawl:
    """``scrapy crawl category`` against one simulator, its calls read from
    the simulator's log; a fresh cache each run (nothing remembered)."""

    def __init__(self, sim: SimulatorProcess, workdir: Path, prefix: str) -> None:
        self.sim = sim
        self.calls = CallLog(sim.request_log)
        self.workdir = workdir
        self.prefix = prefix
        self.runs = 0

    def __call__(
        self,
        cat_ids: str,
        details: str,
        expected_items: int,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """The calls of one crawl and the lines of its details feed."""
        self.runs += 1
        name = f"{self.prefix}-{self.runs}"
        output = self.workdir / f"{name}.jsonl"
        details_feed = self.workdir / f"{name}.details.jsonl"
        chosen_settings = {
            "TMAPI_BASE_URL": self.sim.url,
            "TMAPI_DETAILS_FEED": str(details_feed),
            "TMAPI_COST_PER_CALL": f"{COST} USD",
            "TMAPI_PROGRESS": False,
            **SAME_PAGES,
            **(settings or {}),
        }
        env: dict[str, str | None] = {
            "XDG_CACHE_HOME": str(self.workdir / f"cache-{name}")
        }
        self.calls.mark()
        run = run_process(
            crawl_argv(
                output, {"cat_id": cat_ids, "details": details}, chosen_settings
            ),
            env=env,
            log=self.workdir / f"{name}.log",
        )
        made = self.calls.since_mark()
        check(run.returncode == 0, f"crawler exited {run.returncode}", run)
        items = count_lines(output)
        check(items == expected_items, f"{items} of {expected_items} items", run)
        summary = output.with_suffix(".summary.json")
        if summary.exists():  # the crawler's own count agrees with the log's
            counted = json.loads(summary.read_text("utf-8")).get("details") or {}
            if "detail_calls" in counted:
                detail_calls = sum(c["path"] == DETAIL_PATH for c in made)
                check(
                    counted["detail_calls"] == detail_calls,
                    f"summary: {counted['detail_calls']} detail calls, "
                    f"the simulator's log {detail_calls}",
                    run,
                )
        return made, count_lines(details_feed)


def detail_asks(made: list[dict[str, Any]], outcome: str | None = None) -> Counter:
    return Counter(
        c["item_id"]
        for c in made
        if c["path"] == DETAIL_PATH and (outcome is None or c["outcome"] == outcome)
    )


def run(size: str, workdir: Path, repeat: int | None = None) -> Section:
    p = SIZES[size]
    repeat = repeat or p.repeat
    pages = pages_of(p.items)
    window_calls = pages + p.items
    base_sizes = baseline_categories(window_calls)
    section = Section(
        number=8,
        title="Item details: calls chosen, and the window they share",
        setup=(
            f"Calls: one category of {p.items} listings ({pages} pages of "
            f"{PAGE_SIZE}, `TMAPI_PAGE_SIZE_PROBE=20`), simulator latency "
            f"{p.fast_latency * 1000:.0f} ms, no cap; each case's crawl: "
            + "; ".join(
                f"{case} (`-a details={d}`{', a SQLite store' if s else ''})"
                for case, (d, _, s) in CASES.items()
            )
            + ". Day 1 is a new simulator (`--day 1`, the same catalog size) "
            "and the store of the day-0 crawl with new,price (a fresh store "
            "each round). Calls from the simulator's request log; cost at "
            f"{COST} USD a call (`TMAPI_COST_PER_CALL` is unset by default; "
            f"this is the docs' example). {plural(repeat, 'round', 'rounds')}. "
            f"Window: simulator `--max-concurrency {p.cap}` (all endpoints "
            f"together), latency {p.latency:g} s, the 503 over the cap "
            "answered at once or after the latency (`--cap-answer`); the "
            f"category with `details=all`: {pages} pages + {p.items} details "
            f"= {window_calls} calls; `CONCURRENT_REQUESTS={p.concurrency}`. "
            f"Limit = {p.cap} calls per {p.latency:g} s. Fraction of the "
            "limit = calls answered 200 / span of the run's calls (first "
            "arrival to last answer) / limit; 503 share = calls answered 503 / "
            f"all calls. {plural(repeat, 'run', 'runs')} each, interleaved, per "
            "reading. A "
            "fresh XDG_CACHE_HOME every run."
        ),
        baseline=(
            "Calls: the listings chosen, computed from the simulator's catalog "
            "(detail calls), and the same crawler with no details over day 0 "
            "(listing calls, cost). Window: the same crawler without details "
            f"over a pages-only crawl of as many calls: {window_calls} pages "
            f"in {plural(len(base_sizes), 'category', 'categories')} of "
            f"{pages_of(next(iter(base_sizes.values())))} pages (a category "
            "stops at 100 pages, the result cap), against the same simulator."
        ),
        reproduce="python -m bench --only 8",
    )
    section.rows += calls_part(p, workdir / "calls", repeat)
    timelines: list[str] = []
    for mode in p.readings:
        rows, timeline = window_part(p, workdir / f"window-{mode}", mode, repeat)
        section.rows += rows
        timelines.append(timeline)
    section.notes.append(
        "Where the 503s come from (the request log, medians): "
        + "; ".join(timelines)
        + "."
    )
    section.notes.append(LATER_503S)
    section.notes.append(
        "The window's bound: page 1 has a round of its own (its items and "
        "the category's size are not known before it answers), then "
        f"{window_calls - 1} calls {p.cap} a round: at most "
        f"{bound(window_calls, 1, p.cap):.3f} of the limit with details; "
        f"pages only, {plural(len(base_sizes), 'first page', 'first pages')} "
        f"in the first round: at most "
        f"{bound(window_calls, len(base_sizes), p.cap):.3f}."
    )
    return section


def later_times(runs: list[dict[str, float]]) -> str:
    """When the 503s after the opening came, if any did."""
    if not any(r["503 later"] for r in runs):
        return ""
    first, last = median_of(runs, "first later 503"), median_of(runs, "last later 503")
    return f", the first of them {first.show(2)} s in, the last {last.show(2)} s"


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def bound(calls: int, first: int, cap: int) -> float:
    """The fraction of the limit a crawl of *calls* reaches at most when its
    *first* calls have a round of their own and the rest go *cap* a round."""
    return calls / (1 + -(-(calls - first) // cap)) / cap


def calls_part(p: Params, workdir: Path, repeat: int) -> list[Row]:
    """Detail calls = listings chosen: each case's calls, each round."""
    workdir.mkdir(parents=True)
    results: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
    for round_ in range(repeat):
        store = f"sqlite:///{workdir / f'catalog-{round_}.sqlite'}"
        for case, (details, day, with_store) in CASES.items():
            sim = SimulatorProcess(
                request_log=workdir / f"day{day}-{round_}-{details}.jsonl",
                size=f"{CAT}={p.items}",
                latency=p.fast_latency,
                day=day,
            ).start()
            try:
                crawl = Crawl(sim, workdir, f"{round_}-day{day}-{details}")
                settings = {"TMAPI_STORE": store} if with_store else {}
                today = listed(p.items, day)
                made, details_lines = crawl(str(CAT), details, len(today), settings)
            finally:
                sim.stop()
            want = chosen(p.items, details, day)
            asked = detail_asks(made)
            listing = sum(c["path"] == ITEMS_PATH for c in made)
            check(
                set(asked) == want,
                f"{case}: {len(asked)} items detailed, {len(want)} chosen; "
                f"{len(set(asked) - want)} not chosen, {len(want - set(asked))} "
                "chosen and not detailed",
            )
            check(details_lines == len(want), f"{case}: {details_lines} details")
            results[case].append(
                {
                    "listing": listing,
                    "detail": sum(asked.values()),
                    "chosen": len(want),
                    "most asks": max(asked.values(), default=0),
                    "cost": float((listing + sum(asked.values())) * COST),
                }
            )
    plain = results["day 0, no details"]
    rows: list[Row] = []
    for case, runs in results.items():
        detail = median_of(runs, "detail")
        each_once = all(r["most asks"] <= 1 for r in runs)
        equal = all(r["detail"] == r["chosen"] for r in runs)
        what = {"none": "0", "all": "one per listing"}.get(
            CASES[case][0], "listings new or repriced"
        )
        rows += [
            Row(
                f"detail calls - {case}",
                detail.show(),
                median_of(runs, "chosen").show(),
                "-",
                f"= {what}, each item asked once",
                equal and each_once,
            ),
            Row(
                f"listing calls - {case}",
                median_of(runs, "listing").show(),
                median_of(plain, "listing").show(),
            ),
            Row(
                f"cost at {COST} USD a call, USD - {case}",
                median_of(runs, "cost").show(),
                median_of(plain, "cost").show(),
            ),
        ]
    return rows


def window_part(
    p: Params, workdir: Path, mode: str, repeat: int
) -> tuple[list[Row], str]:
    """The crawl with details=all under the cap, and the pages-only crawl of
    as many calls, interleaved against one simulator."""
    workdir.mkdir(parents=True)
    pages = pages_of(p.items)
    base_sizes = baseline_categories(pages + p.items)
    base_items = sum(base_sizes.values())
    limit = p.cap / p.latency
    sim = SimulatorProcess(
        request_log=workdir / "requests.jsonl",
        latency=p.latency,
        max_concurrency=p.cap,
        cap_answer=mode,
        size=[f"{CAT}={p.items}"] + [f"{c}={n}" for c, n in base_sizes.items()],
    ).start()
    crawl = Crawl(sim, workdir, "crawl")
    settings = {"CONCURRENT_REQUESTS": p.concurrency}
    products = set(listed(p.items, 0))

    def figures(made: list[dict[str, Any]]) -> dict[str, float]:
        answered = sum(c["status"] == 200 for c in made)
        start = min(c["t"] for c in made)
        refused = [c for c in made if c["status"] == 503]
        early = sum(c["t"] < start + EARLY * p.latency for c in refused)
        later = [c["t"] - start for c in refused if c["t"] >= start + EARLY * p.latency]
        return {
            "limit": answered / span(made) / limit,
            "calls/s": answered / span(made),
            "503": share(made, 503),
            "503s": len(refused),
            "503 early": early,
            "503 later": len(refused) - early,
            "503 details": sum(c["path"] == DETAIL_PATH for c in refused),
            # when the later ones came, seconds after the first call
            "first later 503": min(later, default=0),
            "last later 503": max(later, default=0),
            "calls": len(made),
            "span": span(made),
        }

    def with_details() -> dict[str, float]:
        made, details_lines = crawl(str(CAT), "all", len(products), settings)
        ok = detail_asks(made, "ok")
        pages_ok = {
            c["page"] for c in made if c["path"] == ITEMS_PATH and c["outcome"] == "ok"
        }
        check(set(ok) == products, f"{len(set(ok))} of {len(products)} detailed")
        check(max(ok.values()) == 1, "an item's details answered twice")
        check(len(pages_ok) == pages, f"{len(pages_ok)} of {pages} pages")
        check(details_lines == len(products), f"{details_lines} details delivered")
        return figures(made)

    def pages_only() -> dict[str, float]:
        cat_ids = ",".join(map(str, base_sizes))
        made, details_lines = crawl(cat_ids, "none", base_items, settings)
        pages_ok = {
            (c["cat_id"], c["page"])
            for c in made
            if c["path"] == ITEMS_PATH and c["outcome"] == "ok"
        }
        check(len(pages_ok) == pages + p.items, f"{len(pages_ok)} pages answered")
        check(details_lines == 0, "details without details=")
        return figures(made)

    try:
        base, ours = interleaved(repeat, pages_only, with_details)
    finally:
        sim.stop()
    of_limit, base_limit = median_of(ours, "limit"), median_of(base, "limit")
    refused, base_refused = median_of(ours, "503"), median_of(base, "503")
    count, base_count = median_of(ours, "503s"), median_of(base, "503s")
    case = f"{mode}, {p.latency:g} s a call"
    rows = [
        Row.compared(f"calls answered 200 per s - {case}", ours, base, "calls/s"),
        Row(
            f"fraction of the limit ({limit:g} calls/s) - {case}",
            of_limit.show(),
            base_limit.show(),
            "-",
            "≥ 0.9",
            of_limit.median >= 0.9,
        ),
        Row(
            f"503 share of calls - {case}",
            refused.show(),
            base_refused.show(),
            "-",
            "≤ 2%",
            refused.median <= 0.02,
        ),
        Row(
            f"503 calls, with details against pages only - {case}",
            count.show(),
            base_count.show(),
            "-",
            "≤ the baseline's + 1",
            count.median <= base_count.median + 1,
        ),
        Row(
            f"calls made - {case}",
            median_of(ours, "calls").show(),
            median_of(base, "calls").show(),
        ),
        Row(
            f"span of the run's calls, s - {case}",
            median_of(ours, "span").show(),
            median_of(base, "span").show(),
        ),
    ]
    timeline = (
        f"{case}: with details {median_of(ours, '503 early').show()} in the "
        f"first {EARLY * p.latency:g} s, {median_of(ours, '503 later').show()} "
        f"after ({median_of(ours, '503 details').show()} of them detail calls"
        f"{later_times(ours)}); pages only {median_of(base, '503 early').show()} "
        f"and {median_of(base, '503 later').show()}{later_times(base)}"
    )
    return rows, timeline
