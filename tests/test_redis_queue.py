"""The Redis integration's parts: requests as JSON, jobs, keys, the leased queue."""

from __future__ import annotations

import time

import pytest
import scrapy

from tmapi_crawler.distributed.connection import connect, safe_url
from tmapi_crawler.distributed.jobs import JobError, parse_job
from tmapi_crawler.distributed.queue import (
    CrawlKeys,
    LeasedQueue,
    request_from_json,
    request_to_json,
)


class Spider(scrapy.Spider):
    name = "s"

    def parse_page(self, response):
        pass

    def page_failed(self, failure):
        pass


def test_a_request_survives_the_json_round_trip():
    spider = Spider()
    request = scrapy.Request(
        "http://127.0.0.1/1688/category/items/v2?cat_id=5&page=2",
        callback=spider.parse_page,
        errback=spider.page_failed,
        priority=-2,
        headers={"X-Binary": b"\xff\x00"},
        body=b"\x80raw",
        meta={"tmapi": {"page": 2, "last": 9}, "tmapi_page": object()},
    )
    text = request_to_json(request, spider)
    back = request_from_json(text.encode(), spider)
    assert (back.url, back.priority, back.body) == (request.url, -2, b"\x80raw")
    assert back.headers[b"X-Binary"] == b"\xff\x00"
    assert back.meta == {"tmapi": {"page": 2, "last": 9}}  # the parsed page stays
    assert back.callback == spider.parse_page and back.errback == spider.page_failed


@pytest.mark.parametrize(
    ("job", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"cat_id": "x1"}', "cat_id='x1'"),
        ('{"cat_id": 5, "sort": "newest"}', "sort='newest'"),
        ('{"cat_id": 5, "colour": "red"}', "colour='red'"),
    ],
)
def test_a_bad_job_is_refused_naming_the_problem(job, problem):
    with pytest.raises(JobError, match=problem):
        parse_job(job)


def test_a_job_takes_json_values_like_spider_arguments():
    job = '{"cat_id": 1031922, "language": "en", "sort": "sales", "price_start": "1"}'
    arguments = parse_job(job)
    assert arguments.cat_id == (1031922,) and arguments.sort == "sales"


def test_keys_and_urls():
    assert CrawlKeys.of("category").queue == "tmapi:category:queue"
    assert safe_url("redis://user:secret@host:6379/0") == "redis://***@host:6379/0"


def test_the_leased_queue_on_a_real_redis(redis_factory):
    server = redis_factory()
    client = connect(server.url)
    spider = Spider()
    keys = CrawlKeys.of("unit")
    one = LeasedQueue(client, spider, keys, lease_ms=300, worker="one")
    two = LeasedQueue(client, spider, keys, lease_ms=300, worker="two")

    def page(n):
        return scrapy.Request(f"http://127.0.0.1/p{n}", priority=-n)

    assert one.push_many([(page(1), "fp1"), (page(2), "fp2"), (page(1), "fp1")]) == [
        True,
        True,
        False,  # seen before: not queued twice
    ]
    taken = one.lease(5)
    assert [request.url for _, request in taken] == [
        "http://127.0.0.1/p1",
        "http://127.0.0.1/p2",  # by priority
    ]
    assert two.lease(5) == []  # nothing left for another worker
    assert one.state().leased == 2

    one.ack([taken[0][0]])  # page 1 done
    time.sleep(0.4)  # page 2's lease runs out: its worker is gone
    assert two.requeue_expired() == 1
    again = two.lease(5)
    assert [request.url for _, request in again] == ["http://127.0.0.1/p2"]
    assert two.orphans(held=set()) == [again[0][0]]  # Redis says two holds it
    assert two.release([again[0][0]]) == 1  # given back unprocessed
    entry, _ = two.lease(1)[0]
    assert not one.finish()  # a lease is still out: the crawl goes on
    two.ack([entry])
    assert one.finish()  # nothing left anywhere: the seen-set is forgotten
    assert one.push_many([(page(1), "fp1")]) == [True]
