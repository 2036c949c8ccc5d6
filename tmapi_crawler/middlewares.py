"""Downloader middleware that reads every TMAPI answer before the spider does.

:class:`TMAPIResponseMiddleware` parses each answer of the items endpoint
once (:func:`tmapi_crawler.api.parse_page`), hands the page to the spider in
``response.meta["tmapi_page"]``, turns error answers into failed pages, and
drops pages that lie past a page that said it was the last, before they cost
a call. Stats: ``tmapi/response/<code>``, ``tmapi/pages/...``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest

from tmapi_crawler import api
from tmapi_crawler.auth import is_tmapi_request
from tmapi_crawler.pagination import CategoryProgress, CrawlProgress

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)


class PastLastPage(IgnoreRequest):
    """A page that lies past a page that said it was the last: not a failure."""


def describe(request: Request) -> str:
    """``page N of category C (language, options)`` for log lines."""
    meta = request.meta["tmapi"]
    query = api.CategoryQuery.model_validate(meta["query"])
    return f"page {meta['page']} of {query.label}"


class TMAPIResponseMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats  # type: ignore[assignment]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TMAPIResponseMiddleware:
        return cls(crawler)

    def _progress(self, request: Request) -> CategoryProgress | None:
        progress: CrawlProgress | None = getattr(self.crawler.spider, "progress", None)
        if progress is None:
            return None
        query = api.CategoryQuery.model_validate(request.meta["tmapi"]["query"])
        return progress.category(query.key, query.label)

    def process_request(self, request: Request) -> None:
        if not is_tmapi_request(request):
            return
        progress = self._progress(request)
        if progress and progress.past_end(request.meta["tmapi"]["page"]):
            self.stats.inc_value("tmapi/pages/past_end")
            raise PastLastPage(f"{describe(request)} lies past the last page")

    def process_response(self, request: Request, response: Response) -> Response:
        if not is_tmapi_request(request):
            return response
        meta = request.meta["tmapi"]
        try:
            page = api.parse_page(
                response.body,
                response.status,
                requested_page=meta["page"],
                requested_page_size=meta["query"].get("page_size"),
            )
        except api.ApiError as error:
            self.stats.inc_value(f"tmapi/response/{error.reason}")
            raise IgnoreRequest(str(error)) from None
        self.stats.inc_value("tmapi/response/200")
        for problem in page.problems:
            logger.warning("%s: %s", describe(request), problem)
        if progress := self._progress(request):
            progress.record(meta["page"], page)
        request.meta["tmapi_page"] = page
        return response
