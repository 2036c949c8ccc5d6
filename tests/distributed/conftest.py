"""In-process crawls for the distributed components: Scrapy's real engine, with
a real Redis and simulator, in the test's own process.

Scrapy's default reactor (asyncio) is installed as soon as these tests are
collected, before anything could install another, and is marked running when
the first in-process crawl starts: Twisted's timers, sockets and threads then
work whenever a test drives the asyncio loop, and one process runs crawl
after crawl (as ``CrawlerRunner`` does), each until its Deferred fires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scrapy.crawler import Crawler
from scrapy.utils.reactor import (
    install_reactor,
    is_asyncio_reactor_installed,
    is_reactor_installed,
)

from tests.conftest import SENTINEL_TOKEN, json_lines
from tests.crawlers import project_crawler
from tmapi_crawler import settings as project

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

if not is_reactor_installed():
    install_reactor(ASYNCIO_REACTOR, project.ASYNCIO_EVENT_LOOP)


@pytest.fixture(scope="session")
def event_loop_running() -> Iterator[asyncio.AbstractEventLoop]:
    """The asyncio loop under the running reactor; stopped with the session."""
    if not is_asyncio_reactor_installed():
        pytest.fail(f"in-process crawls need {ASYNCIO_REACTOR} installed first")
    from twisted.internet import reactor

    loop = asyncio.get_event_loop()
    reactor.startRunning(installSignalHandlers=False)  # type: ignore[attr-defined]
    yield loop
    reactor.stop()  # type: ignore[attr-defined]
    loop.run_forever()  # until the reactor's shutdown is done


@dataclass
class InProcessWorker:
    """One ``category`` worker of a distributed crawl, in this process."""

    crawler: Crawler
    output: Path
    loop: asyncio.AbstractEventLoop

    def run(self, **arguments: Any) -> None:
        """Crawl with these spider arguments, to the end."""
        done = self.crawler.crawl(**arguments)
        self.loop.run_until_complete(done.asFuture(self.loop))

    @property
    def stats(self) -> dict[str, Any]:
        assert self.crawler.stats is not None
        return self.crawler.stats.get_stats()

    @property
    def items(self) -> list[dict[str, Any]]:
        return json_lines(self.output)


@pytest.fixture
def worker(tmp_path: Path, event_loop_running: asyncio.AbstractEventLoop) -> Any:
    """``worker(sim_url, redis_url, **settings)``: an in-process worker, quick
    to notice the end of the crawl, writing its items to its own file."""
    made = 0

    def make(sim_url: str, redis_url: str, **settings: Any) -> InProcessWorker:
        nonlocal made
        made += 1
        output = tmp_path / f"worker-{made}.jsonl"
        crawler = project_crawler(
            settings={
                "TMAPI_BASE_URL": sim_url,
                "TMAPI_TOKEN": SENTINEL_TOKEN,
                "REDIS_URL": redis_url,
                "FEEDS": {str(output): {"format": "jsonl"}},
                "TMAPI_FAILED_PAGES_FILE": str(tmp_path / f"failed-{made}.jsonl"),
                "TMAPI_IDLE_CLOSE": 0.2,
                "TMAPI_POLL_INTERVAL": 0.05,
                "CONCURRENT_REQUESTS": 4,
                **settings,
            }
        )
        return InProcessWorker(crawler, output, event_loop_running)

    return make
