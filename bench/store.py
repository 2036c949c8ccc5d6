"""Benchmark 6: what the catalog store costs a crawl, and its size.

Categories of 2000 items (100 pages of 20) with no latency: the crawl is
bound by CPU, the store's worst case. The same crawl runs without a store,
with a SQLite file and with a PostgreSQL database (a cluster of its own on
a free loopback port, when initdb and pg_ctl are installed), each run into
a fresh store (every item inserted and reported new: the heaviest run). The
store's size per million observations is its size over its observations
(items, observations, changes and their indexes: a first run writes all
three for every item; later runs mostly add observations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.common import (
    CallLog,
    Row,
    Section,
    Spread,
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

FIRST_CAT = 9101
ITEMS_PER_CAT = 2000
TARGET = 0.9  # within 10% of the speed of a crawl without the store


@dataclass(frozen=True)
class Params:
    categories: int
    repeat: int


SIZES = {
    "tiny": Params(categories=1, repeat=1),
    "quick": Params(categories=5, repeat=2),
    "full": Params(categories=10, repeat=5),
}


def megabytes(sizes: list[float]) -> str:
    return Spread.of(size / 1e6 for size in sizes).show()


def postgres_server() -> object | None:
    from tests.postgres import started

    return started()


def run(size: str, workdir: Path, repeat: int | None = None) -> Section:
    p = SIZES[size]
    repeat = repeat or p.repeat
    cat_ids = list(range(FIRST_CAT, FIRST_CAT + p.categories))
    items = ITEMS_PER_CAT * p.categories
    pages = items // 20
    sim = SimulatorProcess(
        request_log=workdir / "store-simulator.jsonl",
        size=[f"{c}={ITEMS_PER_CAT}" for c in cat_ids],
    ).start()
    calls = CallLog(sim.request_log)
    server = postgres_server()
    sizes: dict[str, list[float]] = {"sqlite": [], "postgresql": [], "feed": []}
    runs = 0

    def crawl(
        name: str, store: Callable[[], tuple[str, Callable[[], int]]] | None
    ) -> Callable[[], dict[str, float]]:
        def one() -> dict[str, float]:
            nonlocal runs
            runs += 1
            output = workdir / f"store-{name}-{runs}.jsonl"
            settings = {"TMAPI_BASE_URL": sim.url, "LOG_LEVEL": "INFO"}
            measure = None
            if store is not None:
                settings["TMAPI_STORE"], measure = store()
            argv = crawl_argv(output, {"cat_id": ",".join(map(str, cat_ids))}, settings)
            calls.mark()
            done = run_process(argv, log=workdir / f"store-{name}.log")
            answered = calls.since_mark()
            check(done.returncode == 0, f"{name} exited {done.returncode}", done)
            check(count_lines(output) == items, f"{name} missed items", done)
            stored = f"'tmapi/store/observations': {items}" in done.output
            check(stored or store is None, f"{name} stored too few", done)
            if measure is not None:
                sizes[name].append(measure() / items * 1_000_000)
                sizes["feed"].append(output.stat().st_size / items * 1_000_000)
            return {
                "pages/s": pages / span(answered),
                "cpu ms/page": done.cpu * 1000 / pages,
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

    subjects = [crawl("none", None), crawl("sqlite", sqlite)]
    if server is not None:
        subjects.append(crawl("postgresql", postgresql))
    try:
        warm(sim.url, cat_ids)
        results = interleaved(repeat, *subjects)
    finally:
        sim.stop()
        if server is not None:
            server.destroy()  # type: ignore[attr-defined]
    bare, with_sqlite = results[0], results[1]
    section = Section(
        number=6,
        title="The catalog store's cost",
        setup=(
            f"Simulator without latency or cap; {p.categories} categories of "
            f"{ITEMS_PER_CAT} items ({pages} pages, {items:,} items); the crawler "
            "as configured on main, JSON Lines feed `-O`, with `TMAPI_STORE` a "
            "fresh SQLite file or PostgreSQL database each run (every item "
            "inserted, every item a `new` change: the heaviest run). Rates over "
            f"the simulator-logged span of the crawl; {repeat} runs each, "
            "interleaved."
        ),
        baseline="The same crawl without `TMAPI_STORE`.",
        reproduce="python -m bench --only 6",
    )

    def speed(store: str, runs: list[dict[str, float]]) -> Row:
        ratio = paired(runs, bare, "pages/s")
        return Row(
            f"pages/s with a {store} store",
            median_of(runs, "pages/s").show(),
            median_of(bare, "pages/s").show(),
            ratio.show(),
            f"≥ {TARGET}",
            ratio.median >= TARGET,
        )

    section.rows = [
        speed("SQLite", with_sqlite),
        Row.compared(
            "client CPU, ms per page, SQLite",
            with_sqlite,
            bare,
            "cpu ms/page",
            invert=True,
        ),
        Row(
            "SQLite store, MB per million observations (baseline: the JSON Lines feed)",
            megabytes(sizes["sqlite"]),
            megabytes(sizes["feed"]),
        ),
    ]
    if server is not None:
        section.rows += [
            speed("PostgreSQL", results[2]),
            Row(
                "PostgreSQL store, MB per million observations (baseline: the feed)",
                megabytes(sizes["postgresql"]),
                megabytes(sizes["feed"]),
            ),
        ]
    else:
        section.notes.append("PostgreSQL's initdb and pg_ctl are not installed here.")
    return section
