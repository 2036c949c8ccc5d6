"""In-process crawlers for component tests, built as Scrapy's own tests build
them (``scrapy.utils.test.get_crawler``), but with the project's settings:
every default in ``tmapi_crawler.settings`` and the add-on that wires the
components.

:class:`OpenedCrawler` goes one step further: Scrapy's engine opens the
spider, so every component is built and wired as in ``scrapy crawl`` (the
downloader middlewares, the extensions, the scheduler), but the engine does
not run: nothing is sent, the test hands requests and answers to the
components itself, on the reactor ``scrapy crawl`` uses (asyncio's).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.utils.reactor import install_reactor, is_reactor_installed
from scrapy.utils.test import get_crawler

from tmapi_crawler import settings as project
from tmapi_crawler.spiders.category import CategorySpider

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

T = TypeVar("T")


def install_asyncio_reactor() -> None:
    """Scrapy's default reactor, installed once per process before any crawler
    is built (a crawler built first would pick a reactor-less mode)."""
    if not is_reactor_installed():
        install_reactor(ASYNCIO_REACTOR, project.ASYNCIO_EVENT_LOOP)


# The suite's crawls were written for the API's documented 20 items a page
# (their page and call counts); tests/crawls/test_page_size.py crawls at the
# size the crawler probes by default, and learns what is served.
DOCUMENTED_PAGES = {"TMAPI_PAGE_SIZE_PROBE": 20}


def project_settings(**overrides: Any) -> dict[str, Any]:
    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    return {**values, **overrides}


def project_crawler(
    spidercls: type = CategorySpider, settings: dict[str, Any] | None = None
) -> Crawler:
    """A crawler of *spidercls* with the project's settings and *settings*.
    Scrapy's test crawler chooses its download handlers (aiohttp, without a
    reactor); the project's token handler wraps the one it chose."""
    # in-process crawls of one session must not start from each other's
    # learned limit (kept in the user's cache directory otherwise)
    chosen = {
        "DOWNLOAD_HANDLERS": {},
        "TMAPI_REMEMBER_LIMIT": False,
        **DOCUMENTED_PAGES,
        **(settings or {}),
    }
    return get_crawler(spidercls, project_settings(**chosen))


class OpenedCrawler:
    """A crawler whose spider the engine has opened (see the module doc)."""

    def __init__(self, crawler: Crawler, loop: asyncio.AbstractEventLoop) -> None:
        self.crawler = crawler
        self.loop = loop
        self.finish_reason: asyncio.Future[str] = loop.create_future()
        crawler.signals.connect(self._closed, signal=signals.spider_closed)

    @classmethod
    def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        settings: dict[str, Any],
        spidercls: type = CategorySpider,
        **arguments: Any,
    ) -> OpenedCrawler:
        crawler = project_crawler(spidercls, settings)
        opened = cls(crawler, loop)
        crawler.spider = crawler._create_spider(**arguments)
        crawler.engine = crawler._create_engine()
        opened.run(crawler.engine.open_spider_async, close_if_idle=False)
        opened.run(crawler.signals.send_catch_log_async, signals.engine_started)
        return opened

    def _closed(self, spider: Any, reason: str) -> None:
        if not self.finish_reason.done():
            self.finish_reason.set_result(reason)

    def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)`` called inside the event loop (as Scrapy
        calls its components) and awaited if it returns an awaitable: what it
        returns, or the exception it raises."""

        async def inside() -> Any:
            result = function(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return self.loop.run_until_complete(asyncio.wait_for(inside(), 30))

    @property
    def spider(self) -> Any:
        return self.crawler.spider

    def start_requests(self) -> list[Request]:
        """Every request the spider's ``start()`` yields."""

        async def collect() -> list[Request]:
            return [request async for request in self.spider.start()]

        return self.run(collect)

    def scraped(self, item: Any, response: Any = None) -> None:
        """*item* delivered as Scrapy delivers it past every item pipeline
        (``item_scraped``: the feeds, the ledger, the job's sinks)."""
        self.run(
            self.crawler.signals.send_catch_log_async,
            signal=signals.item_scraped,
            item=item,
            response=response,
            spider=self.spider,
        )

    def downloader_middleware(self, cls: type[T]) -> T:
        """The instance of *cls* the add-on wired into the downloader."""
        engine = self.crawler.engine
        assert engine is not None
        (found,) = [
            m for m in engine.downloader.middleware.middlewares if isinstance(m, cls)
        ]
        return found

    @property
    def scheduler(self) -> Any:
        engine = self.crawler.engine
        assert engine is not None and engine._slot is not None
        return engine._slot.scheduler

    @property
    def stats(self) -> dict[str, Any]:
        assert self.crawler.stats is not None
        return self.crawler.stats.get_stats()

    def closed(self) -> str:
        """The finish reason, once the spider has closed (waits for it)."""
        return self.run(asyncio.wait_for, self.finish_reason, 10)

    def close(self) -> None:
        """Close the spider if it is still open (or wait for a close under way),
        then the engine."""
        engine = self.crawler.engine
        assert engine is not None

        async def close() -> None:
            if engine.spider is not None:  # looked at in the loop: no race
                await engine.close_spider_async(reason="finished")
            await self.crawler.signals.send_catch_log_async(signals.engine_stopped)

        self.run(close)
