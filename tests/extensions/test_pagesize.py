"""The page size served in-process (:class:`PageSizeServed`), as the add-on
wires it: the spider asks it the size of each new query, the error contract's
``answer_read`` teaches it what page 1 shows, and it alone keeps the size,
its stats and what the summary says. The same in real crawls against each
reading of the API: tests/crawls/test_page_size.py."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from twisted.python.failure import Failure

from tests.answers import a_page, answer
from tests.conftest import SENTINEL_TOKEN
from tmapi_crawler.contract import api, limits
from tmapi_crawler.contract.credentials import token_key
from tmapi_crawler.contract.stats import (
    PAGE_SIZE_ASKED,
    PAGE_SIZE_REFUSED,
    PAGE_SIZE_REMEMBERED,
    PAGE_SIZE_SERVED,
)
from tmapi_crawler.downloadermiddlewares.errors import TMAPIErrorMiddleware
from tmapi_crawler.exceptions import PageFailed
from tmapi_crawler.extensions.pagesize import PageSizeServed
from tmapi_crawler.extensions.summary import RunSummary

pytestmark = pytest.mark.timeout(60)

KEY = token_key(SENTINEL_TOKEN)


def probing(tmp_path: Path, **more: object) -> dict[str, object]:
    """The default probe (the suite's crawlers ask 20), remembered in a file."""
    return {
        "TMAPI_PAGE_SIZE_PROBE": 50,
        "TMAPI_REMEMBER_LIMIT": True,
        "TMAPI_LIMITS_FILE": str(tmp_path / "limits.json"),
        **more,
    }


def page_size_asked(request) -> int:
    return int(parse_qs(urlsplit(request.url).query)["page_size"][0])


def query(cat_id: int) -> api.CategoryQuery:
    return api.CategoryQuery(cat_id=cat_id)


def test_a_query_waits_for_the_probes_answer_which_the_owner_learns_and_keeps(
    open_crawler, tmp_path
):
    crawler = open_crawler(probing(tmp_path))
    served = PageSizeServed.of(crawler.crawler)
    assert crawler.spider.page_size is served  # the spider asks, it owns nothing
    middleware = crawler.downloader_middleware(TMAPIErrorMiddleware)
    (page_1,) = crawler.start_requests()
    assert page_size_asked(page_1) == 50  # the probe
    assert crawler.stats[PAGE_SIZE_ASKED] == 50
    # in a callback, where nothing waits: the documented size
    assert served.size_now(query(6)).page_size == api.DEFAULT_PAGE_SIZE

    async def another_query_then_the_answer() -> api.CategoryQuery:
        waiting = asyncio.ensure_future(served.size_for(query(7)))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the probe's answer is pending
        read = middleware.process_response(page_1, a_page(page_1))
        if inspect.isawaitable(read):
            await read
        return await waiting

    assert crawler.run(another_query_then_the_answer).page_size == 50
    # the sample page holds 20 of 2,000 with more to come: 20 served, 50 asked
    assert crawler.stats[PAGE_SIZE_SERVED] == 20
    assert limits.read_limit(tmp_path / "limits.json", KEY, "page_size") == 50
    assert served.summary() == {
        "asked": 50,
        "served": 20,
        "remembered": None,
        "refused": 0,
    }
    summary = crawler.crawler.get_extension(RunSummary)
    assert summary.page_size() == served.summary()  # read from its owner


def test_the_next_run_asks_the_size_kept(open_crawler, tmp_path):
    limits.write_limit(tmp_path / "limits.json", KEY, 50, field="page_size")
    crawler = open_crawler(probing(tmp_path))
    (page_1,) = crawler.start_requests()
    assert page_size_asked(page_1) == 50
    served = PageSizeServed.of(crawler.crawler)
    assert served.size_now(query(6)).page_size == 50  # nothing pending
    assert crawler.stats[PAGE_SIZE_REMEMBERED] == 50


def test_a_refused_probe_asks_page_1_again_at_the_documented_size(
    open_crawler, tmp_path
):
    crawler = open_crawler(probing(tmp_path))
    served = PageSizeServed.of(crawler.crawler)
    middleware = crawler.downloader_middleware(TMAPIErrorMiddleware)
    (page_1,) = crawler.start_requests()
    with pytest.raises(PageFailed) as refused:
        crawler.run(middleware.process_response, page_1, answer(page_1, 422))
    failure = Failure(refused.value)
    failure.request = page_1  # type: ignore[attr-defined]
    (again,) = list(crawler.spider.page_failed(failure))
    assert page_size_asked(again) == api.DEFAULT_PAGE_SIZE
    stats = crawler.stats
    assert stats[PAGE_SIZE_REFUSED] == 1 and stats[PAGE_SIZE_SERVED] == 20
    assert served.size_now(query(6)).page_size == api.DEFAULT_PAGE_SIZE
    assert limits.read_limit(tmp_path / "limits.json", KEY, "page_size") == 20
    # a refusal of the documented size is no probe's: nothing asked again
    assert served.refused(20, 422, user_query=True) is None


def test_a_page_size_given_is_sent_as_given_and_nothing_is_learned(
    open_crawler, tmp_path
):
    crawler = open_crawler(probing(tmp_path), page_size="30")
    served = PageSizeServed.of(crawler.crawler)
    middleware = crawler.downloader_middleware(TMAPIErrorMiddleware)
    (page_1,) = crawler.start_requests()
    assert page_size_asked(page_1) == 30
    crawler.run(middleware.process_response, page_1, a_page(page_1))
    assert served.summary() is None
    assert not any(name.startswith("tmapi/page_size/") for name in crawler.stats)
    assert not (tmp_path / "limits.json").exists() or (
        limits.read_limit(tmp_path / "limits.json", KEY, "page_size") is None
    )
