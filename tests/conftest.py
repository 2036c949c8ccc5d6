"""Shared fixtures: a real simulator process and real ``scrapy crawl`` runs;
real servers (Redis, S3); crawlers opened in this process for component tests.

Every fixture is safe in parallel (``make test`` runs pytest-xdist): servers
listen on free loopback ports, files go to the test's own ``tmp_path``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.crawlers import DOCUMENTED_PAGES, OpenedCrawler, install_asyncio_reactor
from tests.servers import RedisServer, S3Server
from tmapi_crawler.simulator.process import SimulatorProcess

# Before anything imports twisted.internet.reactor: the reactor of `scrapy crawl`.
install_asyncio_reactor()

ROOT = Path(__file__).resolve().parents[1]
SENTINEL_TOKEN = "tok-SENTINEL-5f3a9c"

# Property-based tests: a fixed seed and enough examples to mean something in CI;
# HYPOTHESIS_PROFILE=explore searches with fresh random examples.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=300,
    deadline=None,
    database=None,
    # a loaded CI machine must not turn slow example generation into a failure
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.register_profile("explore", max_examples=3000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _own_cache_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every crawl of the session, in this process or a child, keeps its
    learned limit of calls in flight in a cache of the session's, never the
    user's (~/.cache/tmapi-crawler); a test that looks at it sets its own."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    # matplotlib's font list (the run report), built once a session, not once
    # a crawl's own cache directory (~0.14 s of CPU each)
    os.environ["MPLCONFIGDIR"] = str(tmp_path_factory.mktemp("matplotlib"))


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Any]:
    """``simulator(**options)`` starts a simulator; all are stopped at teardown."""
    started: list[SimulatorProcess] = []

    def start(**options: Any) -> SimulatorProcess:
        log = tmp_path / f"simulator-{len(started)}.jsonl"
        started.append(SimulatorProcess(request_log=log, **options).start())
        return started[-1]

    yield start
    for process in started:
        process.stop()


@dataclass
class CrawlResult:
    returncode: int
    log: str
    output: Path

    @property
    def items(self) -> list[dict[str, Any]]:
        return json_lines(self.output)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every item of a JSON Lines feed (none if it was never written); a line
    that is not JSON fails the test."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def stat(log: str, name: str, *, required: bool = False) -> int:
    """A stat as Scrapy dumps it at the end of a crawl's log (0 when absent:
    Scrapy leaves out the counters never incremented; *required*: absent
    fails the test)."""
    found = re.search(rf"'{re.escape(name)}': (\d+)", log)
    assert found or not required, f"{name} not in the stats"
    return int(found.group(1)) if found else 0


def python_output(script: str) -> str:
    """What *script* prints, run by a fresh interpreter in the project (one
    whose imports this process has not made already)."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def run_crawl(
    workdir: Path,
    base_url: str,
    arguments: dict[str, Any],
    settings: dict[str, Any] | None = None,
    token: str | None = SENTINEL_TOKEN,
    output_name: str | None = "items.jsonl",
    timeout: float = 240,
    env: dict[str, str] | None = None,
) -> CrawlResult:
    """``scrapy crawl category`` in a child process, as a user runs it
    (with ``-O <workdir>/<output_name>`` unless *output_name* is None)."""
    output = workdir / (output_name or "items.jsonl")
    command = [sys.executable, "-m", "scrapy", "crawl", "category"]
    if output_name is not None:
        command += ["-O", str(output)]
    for name, value in arguments.items():
        command += ["-a", f"{name}={value}"]
    chosen = {"TMAPI_BASE_URL": base_url, **DOCUMENTED_PAGES, **(settings or {})}
    for name, value in chosen.items():
        command += ["-s", f"{name}={value}"]
    # what a run remembers for the next (the learned limit) stays in the test's
    # own cache directory, never the user's; *env* adds to the environment
    environ = {k: v for k, v in os.environ.items() if k != "TMAPI_TOKEN"}
    env = {**environ, "XDG_CACHE_HOME": str(workdir / "cache"), **(env or {})}
    if token is not None:
        env["TMAPI_TOKEN"] = token
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CrawlResult(result.returncode, result.stdout + result.stderr, output)


@pytest.fixture
def crawl(tmp_path: Path) -> Any:
    """``crawl(url, {"cat_id": 5}, settings)`` runs one crawl to completion."""

    def run(
        base_url: str,
        arguments: dict[str, Any],
        settings: dict[str, Any] | None = None,
        **options: Any,
    ) -> CrawlResult:
        return run_crawl(tmp_path, base_url, arguments, settings, **options)

    return run


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free loopback port (never 6379), no persistence;
    ``.url``, ``.stop()`` and ``.start()`` (same port, empty again)."""
    server = RedisServer(tmp_path / "redis.log").start()
    yield server
    server.stop()


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[Any]:
    """``s3_server(authenticated_after=None)`` starts moto's S3 endpoint on loopback."""
    started: list[S3Server] = []

    def start(authenticated_after: int | None = None) -> S3Server:
        log = tmp_path / f"moto-{len(started)}.log"
        started.append(S3Server(log, authenticated_after))
        started[-1].start()
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Any]:
    """``redis_factory(appendonly=False)`` starts a Redis (persistent on demand:
    ``.restart()`` keeps the data); all stop at teardown."""
    started: list[RedisServer] = []

    def start(appendonly: bool = False) -> RedisServer:
        directory = tmp_path / f"redis-{len(started)}"
        log = tmp_path / f"redis-{len(started)}.log"
        started.append(RedisServer(log, directory, appendonly).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def reactor_loop() -> asyncio.AbstractEventLoop:
    """The asyncio loop under the reactor, for the tests that drive it
    themselves (``loop.run_until_complete``): Twisted's timers and Scrapy's
    coroutines run on it whenever a test does. The reactor is not marked
    running: crawlers opened in-process send nothing (no DNS, no threads)."""
    return asyncio.get_event_loop()


@pytest.fixture
def open_crawler(
    tmp_path: Path, reactor_loop: asyncio.AbstractEventLoop
) -> Iterator[Any]:
    """``open_crawler(settings, cat_id="5")``: an :class:`OpenedCrawler` of the
    category spider with the project's settings, the token as a setting, its
    files in ``tmp_path``, an API no call is ever sent to; closed at teardown."""
    opened: list[OpenedCrawler] = []

    def start(settings: dict[str, Any] | None = None, **arguments: Any) -> Any:
        defaults = {
            "TMAPI_BASE_URL": "http://127.0.0.1:9",  # never called: nothing is sent
            "TMAPI_TOKEN": SENTINEL_TOKEN,
            "FEEDS": {str(tmp_path / "items.jsonl"): {"format": "jsonlines"}},
            "TMAPI_FAILED_PAGES_FILE": str(tmp_path / "failed.jsonl"),
            "TMAPI_PROGRESS": False,
        }
        arguments.setdefault("cat_id", "5")
        crawler = OpenedCrawler.open(
            reactor_loop, {**defaults, **(settings or {})}, **arguments
        )
        opened.append(crawler)
        return crawler

    yield start
    for crawler in opened:
        crawler.close()


# --- PostgreSQL, for the catalog store (tests/postgres.py) -----------------------


def _postgres_server() -> Iterator[Any]:
    """A started cluster, destroyed afterwards; the test skipped without the
    binaries."""
    from tests.postgres import started

    server = started()
    if server is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """One cluster for the session (``initdb`` takes seconds); each test gets
    its own database from ``postgres``; skipped without the binaries."""
    yield from _postgres_server()


@pytest.fixture
def postgres(postgres_cluster: Any) -> str:
    """The URL of a new, empty database on the session's PostgreSQL."""
    return postgres_cluster.database()


@pytest.fixture
def postgres_server() -> Iterator[Any]:
    """A PostgreSQL cluster of the test's own, to stop and start mid-crawl."""
    yield from _postgres_server()


# --- Order under pytest-xdist ---------------------------------------------------

# The longest tests (``--durations``), longest first, started first; a name
# missing here only starts later, as a test using servers.
LONGEST = (
    "tests/test_bench.py::test_store_benchmark_runs",
    "tests/test_bench.py::test_capped_benchmark_runs",
    "tests/test_bench.py::test_scaleout_benchmark_runs",
    "tests/test_bench.py::test_fanout_benchmark_runs",
    "tests/crawls/test_store_safety.py::test_three_sigkills",
    "tests/crawls/test_store.py::test_a_failed_page_or_a_capped_category",
    "tests/crawls/test_store.py::test_three_workers_on_postgresql",
    "tests/crawls/test_resume_feeds.py::test_sigkill_three_times",
    "tests/crawls/test_distributed_feeds.py::test_a_killed_worker",
    "tests/crawls/test_distributed.py::test_three_workers_share",
    "tests/contract/test_concurrency.py::test_a_steady_cap",
    "tests/crawls/test_report.py::test_the_alerts_of_two_days",  # and the module's
)
SERVERS = {
    "simulator", "crawl", "redis_server", "redis_factory", "s3_server",
    "postgres", "postgres_server", "two_days",
}  # fmt: skip


def _weight(item: pytest.Item) -> int:
    """2 and more for the longest (longer first), 1 for a test with servers."""
    for rank, name in enumerate(LONGEST):
        if item.nodeid.startswith(name):
            return 2 + len(LONGEST) - rank
    return int(bool(SERVERS & set(getattr(item, "fixturenames", ()))))


def _module_scoped(item: pytest.Item) -> bool:
    """Whether the test shares a module-scoped fixture with its neighbours
    (split over two workers, the fixture would be built twice)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {}) or {}
    return any(d.scope == "module" for found in defs.values() for d in found)


def pytest_collection_modifyitems(config: pytest.Config, items: list[Any]) -> None:
    """Under pytest-xdist (``make test``), the long tests first on every
    worker, so that none of them is left for the end while the others idle.
    ``--dist worksteal`` gives each worker one part of the collection in turn,
    then moves tests from the end of one's queue to another: each part is
    ordered longest first, and a module's tests that share a module-scoped
    fixture stay in one part."""
    if not hasattr(config, "workerinput") or len(items) < 2:
        return
    count = max(int(config.workerinput.get("workercount", 2)), 1)
    groups: dict[str, list[Any]] = {}
    for item in items:  # a module-scoped fixture's tests: one group
        key = item.module.__name__ if _module_scoped(item) else item.nodeid
        groups.setdefault(key, []).append(item)
    ranked = sorted(
        groups.values(), key=lambda group: -max(_weight(item) for item in group)
    )  # stable: the collection's order within a weight
    parts: list[list[Any]] = [[] for _ in range(count)]
    weights = [0] * count
    for group in ranked:
        weight = max(_weight(item) for item in group)
        if weight:  # the lightest part so far in weight, then in count
            side = min(range(count), key=lambda s: (weights[s], len(parts[s])))
        else:  # light tests: the shortest part in count
            side = min(range(count), key=lambda s: len(parts[s]))
        parts[side] += group
        weights[side] += weight * len(group)
    items[:] = [item for part in parts for item in part]
