"""Pure parts of the Redis integration: requests as JSON, jobs, keys."""

from __future__ import annotations

import pytest
import scrapy

from tmapi_crawler.enqueue import JobError, parse_job
from tmapi_crawler.redis_queue import (
    CrawlKeys,
    request_from_json,
    request_to_json,
    safe_url,
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
