"""Per-category counts the crawler's stats do not break down by category.

:class:`CrawlLedger` is an always-on extension that adds to each
:class:`~tmapi_crawler.contract.pagination.CategoryProgress` of ``spider.progress``:
the calls sent (each request that went through the download handler, where
``tmapi/calls`` is counted), the calls that repeated a page already sent
(retries, whoever made them), the items exported, and the items the item
pipelines dropped, told apart as duplicates or invalid. The progress display
and the run summary read these; nothing here changes the crawl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import signals

from tmapi_crawler.exceptions import DuplicateItem
from tmapi_crawler.meta import NOT_SENT, TMAPI, is_tmapi_request

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from tmapi_crawler.contract.pagination import CategoryProgress


class CrawlLedger:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        crawler.signals.connect(self.request_left, signals.request_left_downloader)
        crawler.signals.connect(self.item_scraped, signals.item_scraped)
        crawler.signals.connect(self.item_dropped, signals.item_dropped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlLedger:
        return cls(crawler)

    def _category(self, request: Request | None) -> CategoryProgress | None:
        progress = getattr(self.crawler.spider, "progress", None)
        if progress is None or request is None or not is_tmapi_request(request):
            return None
        return progress.for_query(request.meta[TMAPI]["query"])

    def request_left(self, request: Request) -> None:
        category = self._category(request)
        if category is None or request.meta.get(NOT_SENT):
            return
        page = request.meta[TMAPI]["page"]
        category.calls += 1
        if page in category.sent:
            category.retries += 1
        category.sent.add(page)

    def item_scraped(self, item: Any, response: Response) -> None:
        if category := self._category(getattr(response, "request", None)):
            category.delivered += 1

    def item_dropped(
        self, item: Any, response: Response, exception: BaseException
    ) -> None:
        if category := self._category(getattr(response, "request", None)):
            if isinstance(exception, DuplicateItem):
                category.duplicates += 1
            else:
                category.invalid += 1
