"""What a user would write instead: a plain Scrapy spider for the items endpoint.

Run with ``scrapy runspider`` outside the project (Scrapy's defaults plus the
``-s`` settings the benchmark passes), token in the query string as the API
documents. ``-a follow=next`` follows ``has_next_page`` one page at a time (the
usual tutorial spider); ``-a follow=all`` schedules every page once page 1
gives ``total_count`` (the same fan-out as the crawler, minus its error
contract: Scrapy's own RetryMiddleware is all it has). ``-a items=none``
parses each answer and yields no item: what Scrapy's request path costs alone.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy.http import Response

PATH = "/1688/category/items/v2"


class BaselineSpider(scrapy.Spider):
    name = "baseline"

    def __init__(
        self,
        base_url: str,
        cat_id: str,
        follow: str = "next",
        page_size: str = "20",
        items: str = "all",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.cat_ids = [int(c) for c in cat_id.split(",")]
        self.follow = follow
        self.yield_items = items != "none"
        self.page_size = int(page_size)
        self.token = os.environ["TMAPI_TOKEN"]

    def page_request(self, cat_id: int, page: int) -> scrapy.Request:
        query = {
            "cat_id": cat_id,
            "language": "en",
            "page": page,
            "page_size": self.page_size,
            "sort": "default",
            "apiToken": self.token,
        }
        return scrapy.Request(
            f"{self.base_url}{PATH}?{urlencode(query)}",
            cb_kwargs={"cat_id": cat_id, "page": page},
        )

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for cat_id in self.cat_ids:
            yield self.page_request(cat_id, 1)

    def parse(self, response: Response, cat_id: int, page: int) -> Iterator[Any]:
        data = json.loads(response.body)["data"]
        if self.follow == "next" and data["has_next_page"]:
            yield self.page_request(cat_id, page + 1)
        elif self.follow == "all" and page == 1 and data["has_next_page"]:
            last = math.ceil(data["total_count"] / data["page_size"])
            for number in range(2, last + 1):
                yield self.page_request(cat_id, number)
        if not self.yield_items:
            return
        context = {
            "cat_id": cat_id,
            "language": "en",
            "sort": "default",
            "filters": {},
            "page": page,
            "crawled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for position, item in enumerate(data["items"], 1):
            yield {**item, **context, "position": position}
