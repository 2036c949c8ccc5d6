"""Benchmark 6: what the catalog store costs a crawl, and its size.

Categories of 2000 items (100 pages of 20) with no latency: the crawl is
bound by CPU, the store's worst case; then two of them at 200 ms a call, a
crawl bound by the API's latency as a real one is. The same crawl runs without a store,
with a SQLite file and with a PostgreSQL database (a cluster of its own on
a free loopback port, when initdb and pg_ctl are installed), each run into
a fresh store (every item inserted and reported new: the heaviest run). The
store's size per million observations is its size over its observations
(items, observations, changes and their indexes: a first run writes all
three for every item; later runs mostly add observations).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from bench.common import (
    SAME_PAGES,
    CallLog,
    Row,
    Section,
    Spread,
    bracketed,
    check,
    count_lines,
    crawl_argv,
    interleaved,
    median_of,
    paired,
    run_process,
    span,
)
from bench.cpu import warm
from tmapi_crawler.simulator.process import SimulatorProcess
from tmapi_crawler.store.db import open_store

FIRST_CAT = 9101
ITEMS_PER_CAT = 2000
TARGET = 0.9  # within 10% of the speed of a crawl without the store


LATENCY = 0.2  # seconds a call, in the latency-bound crawl


@dataclass(frozen=True)
class Params:
    categories: int
    repeat: int
    latency_categories: int
    # a smoke test's crawls and writes can be smaller than the measured ones
    items_per_cat: int = ITEMS_PER_CAT
    rows: int = 20_000  # observations each run of the store's writes alone


SIZES = {
    "tiny": Params(
        categories=1, repeat=1, latency_categories=1, items_per_cat=200, rows=2000
    ),
    "quick": Params(categories=5, repeat=2, latency_categories=2),
    "full": Params(categories=10, repeat=7, latency_categories=2),
}


def megabytes(sizes: list[float]) -> str:
    return Spread.of(size / 1e6 for size in sizes).show()


def writes(uri: str, way: str, rows: int = 20_000) -> dict[str, float]:
    """The CPU this process spends writing *rows* new observations into a fresh
    store at *uri*, in batches of 1000, by ``Store.<way>``: ``write`` (each
    change read back, for a changes feed) or ``write_counted`` (counted only);
    and the time a batch takes (PostgreSQL: mostly the server's work)."""
    store = open_store(uri)
    run = store.open_run(None)
    at = datetime.now(UTC)
    batch = [
        (10**9 + n, "en", 9101, f"title {n}", Decimal("12.50"), "CNY", "co", True,
         5, 120, f"https://detail.1688.com/offer/{n}.html", at)
        for n in range(rows)
    ]  # fmt: skip
    started, wall = time.process_time(), time.perf_counter()
    for first in range(0, rows, 1000):
        getattr(store, way)(run, batch[first : first + 1000])
    cpu = time.process_time() - started
    wall = time.perf_counter() - wall
    store.close()
    return {"us/row": cpu / rows * 1e6, "ms/batch": wall / rows * 1000 * 1000}


def postgres_server() -> object | None:
    from tests.postgres import started

    return started()


@dataclass
class Crawl:
    """One simulator and the crawl the store is measured on."""

    sim: SimulatorProcess
    calls: CallLog
    cat_ids: list[int]
    items_per_cat: int

    @property
    def items(self) -> int:
        return self.items_per_cat * len(self.cat_ids)

    @property
    def pages(self) -> int:
        return self.items // 20


def simulated(
    workdir: Path, name: str, cat_ids: list[int], items_per_cat: int, **options: Any
) -> Crawl:
    sim = SimulatorProcess(
        request_log=workdir / f"store-simulator-{name}.jsonl",
        size=[f"{c}={items_per_cat}" for c in cat_ids],
        **options,
    ).start()
    warm(sim.url, cat_ids)
    return Crawl(sim, CallLog(sim.request_log), cat_ids, items_per_cat)


def run(size: str, workdir: Path, repeat: int | None = None) -> Section:
    p = SIZES[size]
    repeat = repeat or p.repeat
    cat_ids = list(range(FIRST_CAT, FIRST_CAT + p.categories))
    items = p.items_per_cat * p.categories
    pages = items // 20
    server = postgres_server()
    sizes: dict[str, list[float]] = {"sqlite": [], "postgresql": [], "feed": []}
    runs = 0

    def crawl(
        name: str,
        store: Callable[[], tuple[str, Callable[[], int]]] | None,
        on: Crawl,
    ) -> Callable[[], dict[str, float]]:
        def one() -> dict[str, float]:
            nonlocal runs
            runs += 1
            output = workdir / f"store-{name}-{runs}.jsonl"
            settings = {
                "TMAPI_BASE_URL": on.sim.url,
                "LOG_LEVEL": "INFO",
                **SAME_PAGES,
            }
            measure = None
            if store is not None:
                settings["TMAPI_STORE"], measure = store()
                # the store alone: the run report (matplotlib, ~1.5 s of CPU
                # at the close) has its own benchmark, bench/run_report.py
                settings["TMAPI_REPORT"] = "false"
            cats = ",".join(map(str, on.cat_ids))
            argv = crawl_argv(output, {"cat_id": cats}, settings)
            on.calls.mark()
            done = run_process(argv, log=workdir / f"store-{name}.log")
            answered = on.calls.since_mark()
            check(done.returncode == 0, f"{name} exited {done.returncode}", done)
            check(count_lines(output) == on.items, f"{name} missed items", done)
            stored = f"'tmapi/store/observations': {on.items}" in done.output
            check(stored or store is None, f"{name} stored too few", done)
            if measure is not None:
                sizes[name].append(measure() / on.items * 1_000_000)
                sizes["feed"].append(output.stat().st_size / on.items * 1_000_000)
            return {
                "pages/s": on.pages / span(answered),
                "cpu ms/page": done.cpu * 1000 / on.pages,
            }

        return one

    def sqlite() -> tuple[str, Callable[[], int]]:
        path = workdir / f"store-{runs}.sqlite"
        return f"sqlite:///{path}", lambda: sum(
            f.stat().st_size for f in path.parent.glob(path.name + "*")
        )

    def postgresql() -> tuple[str, Callable[[], int]]:
        assert server is not None
        url = server.database()  # type: ignore[attr-defined]

        def measure() -> int:
            """The database's size over an empty one's (template1)."""
            with psycopg.connect(url) as connection:
                size = connection.execute(
                    "SELECT pg_database_size(current_database()) "
                    "- pg_database_size('template1')"
                ).fetchone()
            assert size is not None
            return int(size[0])

        return url, measure

    def stores(on: Crawl) -> list[Callable[[], dict[str, float]]]:
        found = [crawl("sqlite", sqlite, on)]
        if server is not None:
            found.append(crawl("postgresql", postgresql, on))
        return found

    def written(way: str, kind: str) -> Callable[[], dict[str, float]]:
        def one() -> dict[str, float]:
            nonlocal runs
            runs += 1
            uri = sqlite()[0] if kind == "sqlite" else postgresql()[0]
            return writes(uri, way, p.rows)

        return one

    kinds = ["sqlite"] + (["postgresql"] if server is not None else [])
    write_costs = [
        interleaved(repeat, written("write", kind), written("write_counted", kind))
        for kind in kinds
    ]
    fast = simulated(workdir, "cpu", cat_ids, p.items_per_cat)
    slow_cats = cat_ids[: p.latency_categories]
    slow = None
    try:
        bare, results = bracketed(repeat, crawl("none", None, fast), *stores(fast))
        fast.sim.stop()
        slow = simulated(
            workdir, "latency", slow_cats, p.items_per_cat, latency=LATENCY
        )
        slow_bare, latency_bound = bracketed(
            repeat, crawl("none", None, slow), *stores(slow)
        )
    finally:
        fast.sim.stop()
        if slow is not None:
            slow.sim.stop()
        if server is not None:
            server.destroy()  # type: ignore[attr-defined]
    assert slow is not None
    slow_pages = slow.pages
    section = Section(
        number=6,
        title="The catalog store's cost",
        setup=(
            f"Simulator without latency or cap; {p.categories} categories of "
            f"{p.items_per_cat} items ({pages} pages, {items:,} items): the crawl "
            "is bound by the CPU (the crawler's, the simulator's and the "
            "database's share 2 cores), the store's worst case. Then "
            f"{LATENCY * 1000:.0f} ms a call (API.md reports about 2 s on the "
            f"real API), {len(slow_cats)} categories ({slow_pages} pages), "
            "16 calls in flight at most. The crawler "
            "as configured on main, JSON Lines feed `-O`, with `TMAPI_STORE` a "
            "fresh SQLite file or PostgreSQL database each run, its run report "
            "off (`TMAPI_REPORT=false`: it is timed by bench/run_report.py) "
            "(every item "
            "inserted, every item a `new` change: the heaviest run). Rates over "
            f"the simulator-logged span of the crawl; {repeat} runs of each "
            "store, each between two runs without a store and compared with "
            "their mean (the machine's speed drifts over a minute)."
        ),
        baseline="The same crawl without `TMAPI_STORE`.",
        reproduce="python -m bench --only 6",
    )

    def speed(
        store: str,
        measured: tuple[list[dict[str, float]], list[dict[str, float]]],
        bare: list[dict[str, float]] = bare,
        where: str = "",
    ) -> Row:
        runs, brackets = measured
        ratio = paired(runs, brackets, "pages/s")
        return Row(
            f"pages/s with a {store} store{where}",
            median_of(runs, "pages/s").show(),
            median_of(bare, "pages/s").show(),
            ratio.show(),
            f"≥ {TARGET}",
            ratio.median >= TARGET,
        )

    def cpu(store: str, measured: tuple[list[dict[str, float]], ...]) -> Row:
        runs, brackets = measured
        return Row.compared(
            f"client CPU, ms per page, {store}",
            runs,
            bare,
            "cpu ms/page",
            invert=True,
            pairs=brackets,
        )

    section.rows = [
        speed("SQLite", results[0]),
        cpu("SQLite", results[0]),
        Row(
            "SQLite store, MB per million observations (baseline: the JSON Lines feed)",
            megabytes(sizes["sqlite"]),
            megabytes(sizes["feed"]),
        ),
    ]
    if server is not None:
        section.rows += [
            speed("PostgreSQL", results[1]),
            cpu("PostgreSQL", results[1]),
            Row(
                "PostgreSQL store, MB per million observations (baseline: the feed)",
                megabytes(sizes["postgresql"]),
                megabytes(sizes["feed"]),
            ),
        ]
    else:
        section.notes.append("PostgreSQL's initdb and pg_ctl are not installed here.")
    section.rows += [
        Row.compared(
            f"the store's writes alone, {name}: the crawler's CPU, us per "
            "observation, changes counted (baseline: each read back, as for a "
            "changes feed)",
            counted,
            read_back,
            "us/row",
            invert=True,
        )
        for name, (read_back, counted) in zip(
            ("SQLite", "PostgreSQL"), write_costs, strict=False
        )
    ]
    section.rows += [
        Row.compared(
            f"the store's writes alone, {name}: a batch of 1000 observations, "
            "ms, changes counted (baseline: each read back)",
            counted,
            read_back,
            "ms/batch",
            invert=True,
        )
        for name, (read_back, counted) in zip(
            ("SQLite", "PostgreSQL"), write_costs, strict=False
        )
    ]
    at = f", {LATENCY * 1000:.0f} ms a call"
    section.rows += [
        speed(name, measured, slow_bare, at)
        for name, measured in zip(("SQLite", "PostgreSQL"), latency_bound, strict=False)
    ]
    return section
