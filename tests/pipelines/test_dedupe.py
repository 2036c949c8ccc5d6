"""The item dedupe in-process (:class:`DedupePipeline`): what a resumed job
delivered before counts as seen; with ``REDIS_URL`` (a real Redis) workers
share the seen ids, a page taken back from a dead worker goes through once
more, the last worker of a run clears them, and a Redis that fails keeps the
item. Its repeats within one run: tests/crawls/test_dedupe.py."""

from __future__ import annotations

import json
import logging

import pytest
from redis import Redis, RedisError
from scrapy import Request

from tests.crawlers import project_crawler
from tmapi_crawler.contract.api import Page
from tmapi_crawler.contract.endpoints import ITEMS
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.exceptions import DuplicateItem
from tmapi_crawler.meta import REDELIVERED, TMAPI
from tmapi_crawler.pipelines.dedupe import DedupePipeline
from tmapi_crawler.signals import answer_read, items_delivered_before
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE

pytestmark = pytest.mark.timeout(60)

SAMPLE = json.loads(SAMPLE_RESPONSE.read_text("utf-8"))["data"]["items"][0]
KEY = "category:seen_items"  # TMAPI_DEDUPE_KEY for the category spider


def item(item_id: int, language: str = "en") -> ProductItem:
    return ProductItem.model_validate(
        {**SAMPLE, "item_id": item_id, "language": language}
    )


def kept(pipeline: DedupePipeline, *items: ProductItem) -> list[int]:
    """The ids of *items* the pipeline lets through."""
    through = []
    for one in items:
        try:
            through.append(pipeline.process_item(one).item_id)
        except DuplicateItem:
            continue
    return through


def worker(**settings) -> tuple[DedupePipeline, object]:
    crawler = project_crawler(settings=settings)
    pipeline = DedupePipeline.from_crawler(crawler)
    pipeline.open_spider()
    return pipeline, crawler


def test_what_a_resumed_job_delivered_before_is_seen_in_its_language():
    pipeline, crawler = worker()
    crawler.signals.send_catch_log(
        items_delivered_before,
        items=[
            {"item_id": "7", "language": "en"},  # as read back from a feed
            {"item_id": 8, "language": "zh"},
            {"title": "no id"},  # skipped, not fatal
            {"item_id": "x7", "language": "en"},
        ],
    )
    assert kept(pipeline, item(7), item(8), item(7, "zh"), item(8, "zh")) == [8, 7]
    assert crawler.stats.get_value("tmapi/items/duplicate") == 2
    pipeline.close_spider()


def seen_keys(client: Redis) -> list[bytes]:
    return sorted(k for k in client.keys(f"{KEY}:*") if b":worker:" not in k)


def test_workers_share_seen_ids_and_the_last_to_close_clears_them(redis_server):
    client = Redis.from_url(redis_server.url)
    client.sadd(f"{KEY}:en:0", 999)  # what a killed run left, no worker alive
    first, _ = worker(REDIS_URL=redis_server.url)
    assert seen_keys(client) == []  # the first worker of a fresh run forgot it
    second, second_crawler = worker(REDIS_URL=redis_server.url)
    assert kept(first, item(1), item(2)) == [1, 2]
    assert kept(second, item(2), item(3), item(999)) == [3, 999]
    assert second_crawler.stats.get_value("tmapi/items/duplicate") == 1

    # a page the first worker delivered, taken back after it "died": its
    # ids go through once more, then count as seen again
    request = Request(
        "http://127.0.0.1:9/items",
        meta={TMAPI: {"query": {"cat_id": 5, "language": "en"}}, REDELIVERED: True},
    )
    page = Page(1, 20, 2, False, [{"item_id": 1}, {"item_id": "2"}])
    second_crawler.signals.send_catch_log(
        answer_read, request=request, endpoint=ITEMS, answer=page
    )
    assert second_crawler.stats.get_value("tmapi/pages/redelivered") == 1
    assert kept(second, item(1), item(2), item(1)) == [1, 2]

    first.close_spider()
    assert seen_keys(client) != []  # the second is still crawling
    second.close_spider()
    assert seen_keys(client) == [] and client.keys(f"{KEY}:worker:*") == []


def test_persisted_seen_ids_outlive_the_run(redis_server):
    settings = {"REDIS_URL": redis_server.url, "TMAPI_DEDUPE_PERSIST": True}
    today, _ = worker(**settings)
    assert kept(today, item(1)) == [1]
    today.close_spider()
    tomorrow, _ = worker(**settings)
    assert kept(tomorrow, item(1), item(2)) == [2]
    tomorrow.close_spider()


def test_a_redis_that_fails_keeps_the_item(redis_server, caplog):
    pipeline, crawler = worker(REDIS_URL=redis_server.url)
    assert kept(pipeline, item(1)) == [1]
    redis_server.stop()
    with caplog.at_level(logging.ERROR):
        assert kept(pipeline, item(1), item(2)) == [1, 2]  # unchecked, not lost
    assert crawler.stats.get_value("tmapi/dedupe/errors") == 2
    assert "kept unchecked" in caplog.text
    pipeline.close_spider()  # the seen ids cannot be cleared: said, not raised
    with pytest.raises(RedisError):  # a Redis away at the start: nothing sent
        worker(REDIS_URL=redis_server.url)
