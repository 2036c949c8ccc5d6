"""The Redis scheduler in an in-process crawl: when it acknowledges a page, what
it gives back, what it takes over from a dead worker, how it rides out Redis."""

from __future__ import annotations

import json
import logging
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from scrapy import signals

from tmapi_crawler.contract.stats import (
    PAGES_REDELIVERED,
    PAGES_UNSENT,
    REDIS_LEASES_RECOVERED,
    REDIS_OUTAGES,
)
from tmapi_crawler.distributed.connection import connect
from tmapi_crawler.distributed.queue import CrawlKeys, LeasedQueue
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.spiders.category import CategorySpider

KEYS = CrawlKeys.of("category")  # the spider's name: no TMAPI_CRAWL_ID


def page_of(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["page"][0])


def pages(client, key: str) -> list[int]:
    """The pages of the entries in the zset *key* (the queue or the leases)."""
    entries = client.zrange(key, 0, -1)
    return sorted(
        page_of(json.loads(client.hget(KEYS.requests, e))["url"]) for e in entries
    )


def expected_ids(cat_id: int, size: int) -> list[int]:
    return sorted(p.item_id for p in Catalog(sizes={cat_id: size}).expected(cat_id))


def crawl_keys(client) -> list[bytes]:
    """The crawl's keys in Redis (the account's window and learned limit,
    ``tmapi:account:*`` and ``tmapi:limits``, outlive a crawl on purpose)."""
    return client.keys(f"{KEYS.prefix}:*")


def test_a_page_is_acknowledged_only_once_its_items_are_through(
    simulator, redis_server, worker
):
    sim = simulator(size="5=60")  # 3 pages
    client = redis_server.client()
    crawl = worker(sim.url, redis_server.url)
    leased_while_scraped = []

    def item_scraped(item, response, spider):
        leased_while_scraped.append(item.page in pages(client, KEYS.leases))

    crawl.crawler.signals.connect(item_scraped, signal=signals.item_scraped)
    crawl.run(cat_id="5")

    assert crawl.stats["finish_reason"] == "finished"
    assert sorted(i["item_id"] for i in crawl.items) == expected_ids(5, 60)
    # while a page's items went through the pipelines, the page stayed leased
    assert leased_while_scraped == [True] * 60
    # ...and then it was acknowledged: no lease was left, so the crawl was
    # complete and its keys were forgotten
    assert crawl_keys(client) == []
    assert Counter(c["page"] for c in sim.calls()) == {1: 1, 2: 1, 3: 1}


def test_requests_the_crawl_did_not_send_go_back_to_the_queue(
    simulator, redis_server, worker
):
    sim = simulator(size="6=60")
    crawl = worker(sim.url, redis_server.url, TMAPI_MAX_CALLS=1)
    crawl.run(cat_id="6")

    assert crawl.stats["finish_reason"] == "tmapi_budget_exhausted"
    assert [c["page"] for c in sim.calls()] == [1]
    assert crawl.stats[PAGES_UNSENT] >= 1  # handed to the engine, refused
    client = redis_server.client()
    # not acknowledged: given back, for the crawl's next run
    assert pages(client, KEYS.queue) == [2, 3]
    assert client.zcard(KEYS.leases) == 0


def test_the_leases_of_a_dead_worker_are_requeued_once_they_expire(
    simulator, redis_server, worker, event_loop_running
):
    sim = simulator(size="7=60")
    settings = {"TMAPI_LEASE_SECONDS": 1}
    # A worker queued page 1, leased it and died (SIGKILL): it never renews,
    # acknowledges or gives back its lease.
    dead = worker(sim.url, redis_server.url, **settings).crawler
    spider = CategorySpider.from_crawler(dead, cat_id="7")
    first = event_loop_running.run_until_complete(anext(spider.start()))
    queue = LeasedQueue(connect(redis_server.url), spider, KEYS.prefix)
    assert queue.push(first, dead.request_fingerprinter.fingerprint(first).hex())
    assert queue.pop() is not None

    crawl = worker(sim.url, redis_server.url, **settings)
    crawl.run(cat_id="7")

    assert crawl.stats["finish_reason"] == "finished"
    assert crawl.stats["dupefilter/filtered"] == 1  # its own page 1: seen
    assert crawl.stats[REDIS_LEASES_RECOVERED] == 1
    assert crawl.stats[PAGES_REDELIVERED] == 1
    assert sorted(i["item_id"] for i in crawl.items) == expected_ids(7, 60)
    assert Counter(c["page"] for c in sim.calls()) == {1: 1, 2: 1, 3: 1}
    assert crawl_keys(redis_server.client()) == []


def test_a_redis_outage_keeps_new_requests_until_redis_is_back(
    simulator, redis_server, worker, caplog
):
    from twisted.internet import reactor

    caplog.set_level(logging.INFO, logger="tmapi_crawler.distributed")
    sim = simulator(size="8=60")
    crawl = worker(sim.url, redis_server.url)

    def response_received(response, request, spider):
        if page_of(request.url) == 1:  # before its answer queues pages 2 and 3
            redis_server.stop()
            reactor.callLater(1.0, redis_server.start)

    crawl.crawler.signals.connect(response_received, signal=signals.response_received)
    crawl.run(cat_id="8")

    assert crawl.stats["finish_reason"] == "finished"
    assert crawl.stats[REDIS_OUTAGES] == 1
    assert "is unavailable" in caplog.text and "is back after" in caplog.text
    # pages 2 and 3 waited in the worker and were queued once Redis was back
    assert sorted(i["item_id"] for i in crawl.items) == expected_ids(8, 60)
    assert Counter(c["page"] for c in sim.calls()) == {1: 1, 2: 1, 3: 1}
    assert crawl_keys(redis_server.client()) == []
