"""TMAPI_MAX_CALLS in-process: the call budget as the add-on wires it, last
before the download handler, with every request passed through the whole
downloader middleware chain as the downloader passes it; the "call" is an
answer built by hand. The same budget in real crawls, with the resume that
follows: tests/crawls/test_operating.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scrapy import Request, signals
from scrapy.http import Response

from tests.answers import a_page, another, answer
from tmapi_crawler.contract.outcome import BUDGET_EXHAUSTED
from tmapi_crawler.downloadermiddlewares.budget import CallBudget
from tmapi_crawler.exceptions import CrawlStopped
from tmapi_crawler.meta import NOT_SENT

pytestmark = pytest.mark.timeout(60)


class Downloader:
    """The downloader middleware chain of an opened crawler; ``calls``: the
    requests that reached the download handler (each one a paid call)."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        engine = crawler.crawler.engine
        self.chain = engine.downloader.middleware
        self.calls: list[Request] = []
        self.answers: asyncio.Queue[None] | None = None  # None: answer at once

    async def _call(self, request: Request) -> Response:
        self.calls.append(request)
        if self.answers is not None:
            await self.answers.get()
        return a_page(request)

    def fetching(self, request: Request) -> asyncio.Task[Any]:
        """``fetch`` started and left running (the test drives the loop)."""
        download = self.chain.download_async(self._call, request)
        return self.crawler.loop.create_task(download)

    def fetch(self, request: Request) -> Any:
        """*request* through every downloader middleware, and the call if they
        let it through: the answer, or what a middleware raised."""
        return self.crawler.run(self.chain.download_async, self._call, request)


def page_requests(crawler: Any, count: int) -> list[Request]:
    (page_1,) = crawler.start_requests()
    return [page_1] + [another(page_1, n) for n in range(2, count + 1)]


def test_exactly_the_allowed_calls_are_sent_and_the_crawl_closes(open_crawler):
    crawler = open_crawler({"TMAPI_MAX_CALLS": 3})
    downloader = Downloader(crawler)
    requests = page_requests(crawler, 5)
    for request in requests[:3]:
        assert downloader.fetch(request).status == 200
    for request in requests[3:]:
        with pytest.raises(CrawlStopped, match="TMAPI_MAX_CALLS=3 reached"):
            downloader.fetch(request)
        assert request.meta[NOT_SENT] is True
    assert downloader.calls == requests[:3]
    assert not any(request.meta.get(NOT_SENT) for request in requests[:3])
    assert crawler.crawler.engine.paused  # no more requests from the scheduler
    assert crawler.closed() == BUDGET_EXHAUSTED
    assert crawler.stats["tmapi/pages/unsent"] == 2
    assert crawler.stats["tmapi/budget/max_calls"] == 3


def test_a_retry_is_a_call_like_any_other(open_crawler):
    settings = {"TMAPI_MAX_CALLS": 2, "TMAPI_BACKOFF_BASE": 0.01}
    crawler = open_crawler(settings)
    downloader = Downloader(crawler)
    (page_1,) = crawler.start_requests()
    chain, calls = downloader.chain, downloader.calls

    async def busy(request: Request) -> Response:
        calls.append(request)
        return answer(request, 503)

    retry = crawler.run(chain.download_async, busy, page_1)
    assert isinstance(retry, Request)
    downloader.fetch(retry)
    with pytest.raises(CrawlStopped):
        downloader.fetch(another(page_1, 2))
    assert calls == [page_1, retry]


def test_requests_that_are_not_tmapi_calls_are_not_counted(open_crawler):
    crawler = open_crawler({"TMAPI_MAX_CALLS": 1})
    budget = crawler.downloader_middleware(CallBudget)
    for n in range(5):
        assert budget.process_request(Request(f"http://127.0.0.1:9/{n}")) is None
    (page_1,) = crawler.start_requests()
    assert budget.process_request(page_1) is None  # the one call allowed
    with pytest.raises(CrawlStopped):
        crawler.run(budget.process_request, another(page_1, 2))
    assert budget.process_request(Request("http://127.0.0.1:9/after")) is None


def test_a_refused_request_frees_its_place_among_the_calls_in_flight(open_crawler):
    # One call in flight at a time: the next requests wait at the error
    # contract's call gate. Those the budget turns back must each free their
    # place there as a call's answer would, or the ones behind never leave.
    crawler = open_crawler({"TMAPI_MAX_CALLS": 2, "TMAPI_CONCURRENCY_START": 1})
    downloader = Downloader(crawler)
    downloader.answers = asyncio.Queue()
    left: list[Request] = []
    crawler.crawler.signals.connect(
        lambda request, spider: left.append(request),
        signal=signals.request_left_downloader,
        weak=False,
    )
    requests = page_requests(crawler, 5)
    fetches = [downloader.fetching(request) for request in requests]
    for _ in range(2):  # the two calls allowed, answered one after the other
        downloader.answers.put_nowait(None)
    results = crawler.run(asyncio.gather, *fetches, return_exceptions=True)
    assert [getattr(result, "status", None) for result in results[:2]] == [200, 200]
    assert all(isinstance(result, CrawlStopped) for result in results[2:])
    assert downloader.calls == requests[:2]
    assert left == requests[2:]  # each refused request left the downloader


def test_without_a_budget_there_is_no_budget_middleware(open_crawler):
    engine = open_crawler().crawler.engine
    wired = engine.downloader.middleware.middlewares
    assert not any(isinstance(middleware, CallBudget) for middleware in wired)
