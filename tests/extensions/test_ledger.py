"""The ledger, in process: one owner of what each category and page did, fed
by the signals the spider, the error contract and Scrapy send."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import signals
from scrapy.http import Request, TextResponse

from tests.crawlers import project_crawler
from tmapi_crawler import signals as tmapi_signals
from tmapi_crawler.contract.api import CategoryQuery, Page
from tmapi_crawler.contract.endpoints import ITEMS
from tmapi_crawler.exceptions import DuplicateItem, InvalidItemDropped
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.meta import NOT_SENT
from tmapi_crawler.spiders.category import CategorySpider


@pytest.fixture
def crawl():
    """A crawler with its extensions built and its spider made, not started."""
    crawler = project_crawler(
        CategorySpider, {"TMAPI_TOKEN": "a-token-of-length", "TMAPI_PROGRESS": False}
    )
    crawler.spider = crawler._create_spider(cat_id="7")
    return crawler


def page(number: int, items: int, total: int | None = 45, more: bool = True) -> Page:
    rows = [{"item_id": number * 100 + i} for i in range(items)]
    return Page(number, 20, total, more, rows)


def send(crawler, signal, **kwargs):
    crawler.signals.send_catch_log(signal, **kwargs)


def answered(crawler: Any, request: Any, answer: Page) -> None:
    """The error contract read *answer*, a page of the items endpoint."""
    send(
        crawler,
        tmapi_signals.answer_read,
        request=request,
        endpoint=ITEMS,
        answer=answer,
    )


def test_the_ledger_keeps_plan_answers_calls_and_items_of_a_category(crawl):
    ledger = CrawlLedger.of(crawl)
    spider = crawl.spider
    query = CategoryQuery(cat_id=7)
    first = spider.page_request(query, 1, planned_last=1)  # says page_requested
    send(crawl, signals.request_left_downloader, request=first, spider=spider)
    answered(crawl, first, page(1, 20))
    following = [spider.page_request(query, n, planned_last=3) for n in (2, 3)]
    send(
        crawl,
        tmapi_signals.page_parsed,
        request=first,
        page=page(1, 20),
        plan=None,
        followed=range(2, 4),
    )
    response = TextResponse(first.url, request=first, body=b"{}")
    send(crawl, signals.item_scraped, item={}, response=response, spider=spider)
    for exception in (DuplicateItem("dup"), InvalidItemDropped("bad")):
        send(
            crawl,
            signals.item_dropped,
            item={},
            response=response,
            exception=exception,
            spider=spider,
        )
    # page 2: a retry (two calls), then the last page
    for _ in range(2):
        send(
            crawl, signals.request_left_downloader, request=following[0], spider=spider
        )
    answered(crawl, following[0], page(2, 5, more=False))
    # page 3: turned back by the budget, never sent; then past the end
    unsent = following[1].replace()
    unsent.meta[NOT_SENT] = True
    send(crawl, signals.request_left_downloader, request=unsent, spider=spider)
    assert ledger.past_end(following[1])
    send(crawl, tmapi_signals.request_settled, request=following[1], outcome="past_end")

    (category,) = ledger.progress.categories.values()
    assert (category.planned, category.end, category.pages) == (3, 2, 2)
    assert list(category.done) == [1, 2] and category.left == 0
    assert (category.total_count, category.items) == (45, 25)
    assert (category.calls, category.retries) == (3, 1)
    assert (category.delivered, category.duplicates, category.invalid) == (1, 1, 1)


def test_a_failed_page_is_recorded_with_its_reason_and_in_the_coverage(crawl):
    ledger = CrawlLedger.of(crawl)
    request = crawl.spider.page_request(CategoryQuery(cat_id=7), 1, planned_last=1)
    send(
        crawl,
        tmapi_signals.request_settled,
        request=request,
        outcome="failed",
        reason="gave up after 4 attempts: 500",
    )
    (category,) = ledger.progress.categories.values()
    assert category.failed == {1: "gave up after 4 attempts: 500"}
    (coverage,) = ledger.coverage.categories.values()
    assert coverage.failed_pages == 1 and not coverage.complete


def test_the_ledger_survives_a_snapshot_and_a_restore(crawl):
    ledger = CrawlLedger.of(crawl)
    request = crawl.spider.page_request(CategoryQuery(cat_id=7), 1, planned_last=1)
    send(crawl, signals.request_left_downloader, request=request, spider=crawl.spider)
    answered(crawl, request, page(1, 20))
    snapshot = ledger.snapshot()
    again = project_crawler(CategorySpider, {"TMAPI_TOKEN": "a-token-of-length"})
    restored = CrawlLedger.of(again)
    restored.restore(snapshot)
    restored.restore_end(request.meta["tmapi"]["query"], 1)
    (before,) = ledger.progress.categories.values()
    (after,) = restored.progress.categories.values()
    assert after.to_data() == {**before.to_data(), "end": 1}
    assert after.query == before.query and after.past_end(2)


def test_a_component_without_the_ledger_is_a_wiring_error():
    crawler = project_crawler(
        CategorySpider,
        {
            "TMAPI_TOKEN": "a-token-of-length",
            "EXTENSIONS": {"tmapi_crawler.extensions.ledger.CrawlLedger": None},
        },
    )
    with pytest.raises(RuntimeError, match="CrawlLedger is not enabled"):
        CrawlLedger.of(crawler)


def test_requests_that_are_not_pages_are_not_counted(crawl):
    ledger = CrawlLedger.of(crawl)
    other = Request("http://127.0.0.1:1/robots.txt")
    send(crawl, signals.request_left_downloader, request=other, spider=crawl.spider)
    assert ledger.category_of(other) is None and not ledger.progress.categories
