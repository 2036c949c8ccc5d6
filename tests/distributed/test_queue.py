"""The leased queue on a real Redis: as the Redis scheduler uses it, and as
scrapy-redis's own scheduler would."""

from __future__ import annotations

import threading
import time

import pytest
import scrapy
from scrapy_redis.scheduler import Scheduler as ScrapyRedisScheduler

from tests.crawlers import project_crawler
from tmapi_crawler.distributed.connection import connect
from tmapi_crawler.distributed.queue import CrawlKeys, LeasedQueue
from tmapi_crawler.meta import REDELIVERED


class Spider(scrapy.Spider):
    name = "s"

    def parse_page(self, response):
        pass

    def page_failed(self, failure):
        pass


def spider(**settings) -> Spider:
    return Spider.from_crawler(project_crawler(Spider, settings))


def page(n: int) -> scrapy.Request:
    return scrapy.Request(f"http://127.0.0.1/p{n}", priority=-n)


def test_keys():
    assert CrawlKeys.of("category").queue == "tmapi:category:queue"
    assert CrawlKeys.of("category").dupefilter == "tmapi:category:dupefilter"


def test_a_request_survives_the_round_trip_through_redis(redis_server):
    worker = spider()
    queue = LeasedQueue(connect(redis_server.url), worker, "tmapi:unit")
    request = scrapy.Request(
        "http://127.0.0.1/1688/category/items/v2?cat_id=5&page=2",
        callback=worker.parse_page,
        errback=worker.page_failed,
        priority=-2,
        headers={"X-Binary": b"\xff\x00"},
        body=b"\x80raw",
        meta={"tmapi": {"page": 2, "last": 9}, "tmapi_answer": object()},
    )
    assert queue.push(request)
    back = queue.pop()
    assert back is not None
    assert (back.url, back.priority, back.body) == (request.url, -2, b"\x80raw")
    assert back.headers[b"X-Binary"] == b"\xff\x00"
    assert back.meta == {"tmapi": {"page": 2, "last": 9}}  # the parsed page stays
    assert back.callback == worker.parse_page and back.errback == worker.page_failed


def test_the_leased_queue_as_the_redis_scheduler_uses_it(redis_server):
    client = connect(redis_server.url)
    one = LeasedQueue(client, spider(TMAPI_LEASE_SECONDS=0.3), "tmapi:unit")
    two = LeasedQueue(client, spider(TMAPI_LEASE_SECONDS=0.3), "tmapi:unit")

    assert [one.push(page(1), "fp1"), one.push(page(2), "fp2")] == [True, True]
    assert not one.push(page(1), "fp1")  # seen before: not queued twice
    assert len(one) == len(two) == 2
    first, second = one.pop(), one.pop()
    assert [first.url, second.url] == ["http://127.0.0.1/p1", "http://127.0.0.1/p2"]
    assert two.pop() is None  # nothing left for another worker
    assert (len(one), one.state().leased) == (0, 2)

    one.ack([first])  # page 1 done
    time.sleep(0.4)  # page 2's lease runs out: its worker is gone
    assert two.requeue_expired() == 1
    again = two.pop()
    assert again.url == "http://127.0.0.1/p2"
    assert again.meta[REDELIVERED] is True  # its items may need delivering again

    del two.held[again]  # the answer of that pop lost with the connection...
    assert two.release_orphans() == 1  # ...so Redis's word is taken for it
    taken = two.pop()
    assert not one.clear(only_if_finished=True)  # a lease is still out
    assert two.release([taken]) == 1  # given back unprocessed
    assert not one.clear(only_if_finished=True)  # queued again
    two.ack([two.pop()])
    assert one.clear(only_if_finished=True)  # nothing left: the seen-set forgotten
    assert one.push(page(1), "fp1")


def test_a_pop_with_a_timeout_waits_for_a_request(redis_server):
    client = connect(redis_server.url)
    queue = LeasedQueue(client, spider(TMAPI_POLL_INTERVAL=0.05), "tmapi:unit")
    assert queue.pop(timeout=0.2) is None
    later = threading.Timer(0.3, lambda: queue.push(page(1)))
    later.start()
    try:
        assert queue.pop(timeout=10).url == "http://127.0.0.1/p1"
    finally:
        later.join()


# scrapy-redis's own scheduler passes spider= to the stats (README, "Distributed
# crawling"): the Redis scheduler does not.
@pytest.mark.filterwarnings("ignore:Passing a 'spider' argument")
def test_scrapy_redis_scheduler_runs_on_the_leased_queue(redis_server):
    crawler = project_crawler(
        Spider,
        {
            "REDIS_URL": redis_server.url,
            "SCHEDULER_QUEUE_CLASS": "tmapi_crawler.distributed.queue.LeasedQueue",
            "SCHEDULER_QUEUE_KEY": "tmapi:%(spider)s",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            "SCHEDULER_IDLE_BEFORE_CLOSE": 1,
        },
    )
    scheduler = ScrapyRedisScheduler.from_crawler(crawler)
    scheduler.open(Spider.from_crawler(crawler))
    assert scheduler.enqueue_request(page(2)) and scheduler.enqueue_request(page(1))
    assert not scheduler.enqueue_request(page(1))  # its dupefilter's request_seen
    assert len(scheduler) == 2 and scheduler.has_pending_requests()
    assert scheduler.next_request().url == "http://127.0.0.1/p1"
    assert scheduler.next_request().url == "http://127.0.0.1/p2"
    assert scheduler.next_request() is None  # after SCHEDULER_IDLE_BEFORE_CLOSE
    assert not scheduler.has_pending_requests()
    client = redis_server.client()
    assert client.zcard("tmapi:s:leases") == 2  # popped: leased, not lost
    scheduler.close("finished")  # SCHEDULER_PERSIST off: flushed
    assert client.keys("*") == []


def test_only_json_requests_are_queued(redis_server):
    with pytest.raises(TypeError, match="JSON"):
        LeasedQueue(connect(redis_server.url), spider(), "tmapi:unit", serializer=1)
