"""The ``category`` spider: every page of every category asked for.

``scrapy crawl category -a cat_id=1031922,1031923 -a language=en -a sort=sales``
validates every argument and the token before the first call, fetches page 1
of each category, then the remaining pages concurrently (see
:mod:`tmapi_crawler.pagination`), and yields each item with its context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import scrapy
from twisted.python.failure import Failure

from tmapi_crawler import api
from tmapi_crawler.arguments import ArgumentError, parse_arguments
from tmapi_crawler.auth import token_problems
from tmapi_crawler.middlewares import CrawlStopped, PastLastPage
from tmapi_crawler.pagination import CrawlProgress, pages_to_follow
from tmapi_crawler.redis_queue import redis_problems

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings


NOT_SENT = "tmapi_not_sent"  # meta flag: not sent because the crawl stopped


class CrawlRefused(ValueError):
    """The crawl cannot start: bad arguments or settings. Nothing was sent."""


def preflight(settings: BaseSettings, arguments: Mapping[str, Any]) -> list[str]:
    """Every reason the crawl cannot start, checked before any paid call."""
    problems: list[str] = []
    try:
        parse_arguments(arguments)
    except ArgumentError as exc:
        problems.append(str(exc))
    return problems + token_problems(settings) + redis_problems(settings)


class CategorySpider(scrapy.Spider):
    name = "category"

    @classmethod
    def preflight(
        cls, settings: BaseSettings, arguments: Mapping[str, Any]
    ) -> list[str]:
        return preflight(settings, arguments)

    @classmethod
    def from_crawler(
        cls, crawler: Crawler, *args: Any, **kwargs: Any
    ) -> CategorySpider:
        problems = cls.preflight(crawler.settings, kwargs)
        if problems:
            raise CrawlRefused("\n".join(problems))
        return super().from_crawler(crawler, *args, **kwargs)

    def __init__(self, **kwargs: Any) -> None:
        self.arguments = parse_arguments(kwargs)
        super().__init__()
        self.queries = self.arguments.queries()
        self.progress = CrawlProgress()

    @property
    def base_url(self) -> str:
        return self.settings.get("TMAPI_BASE_URL")

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for query in self.queries:
            yield self.page_request(query, 1, 1, self.arguments.max_pages)

    def page_request(
        self,
        query: api.CategoryQuery,
        page_no: int,
        planned_last: int,
        max_pages: int | None = None,
    ) -> scrapy.Request:
        """A page request; meta ``tmapi`` says which page of which query it is
        and all its pagination needs, so any worker can handle its answer."""
        meta: dict[str, Any] = {
            "query": query.model_dump(mode="json", exclude_defaults=True),
            "page": page_no,
            "last": planned_last,
        }
        if max_pages is not None:
            meta["max_pages"] = max_pages
        return scrapy.Request(
            api.page_url(self.base_url, query, page_no),
            callback=self.parse_page,
            errback=self.page_failed,
            priority=-page_no,
            meta={"tmapi": meta},
        )

    def parse_page(self, response: Response) -> Iterator[Any]:
        """Follow the pagination, then yield the page's items with their context."""
        meta = response.meta["tmapi"]
        query = api.CategoryQuery.model_validate(meta["query"])
        page_no = meta["page"]
        page: api.Page = response.meta["tmapi_page"]
        max_pages = meta.get("max_pages")
        followed = pages_to_follow(page_no, meta["last"], page, max_pages)
        progress = self.progress.category(query)
        progress.planned = max(progress.planned, *followed, page_no)
        for next_no in followed:
            yield self.page_request(query, next_no, followed[-1], max_pages)
        context = {
            "cat_id": query.cat_id,
            "language": query.language,
            "sort": query.sort,
            "filters": query.filters(),
            "page": page_no,
            "crawled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for position, item in enumerate(page.items, 1):
            yield {**item, **context, "position": position}

    def page_failed(self, failure: Failure) -> None:
        """A page that could not be fetched: logged with its category and page."""
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(CrawlStopped):
            # still to do when the crawl resumes (a shared queue keeps it)
            request.meta[NOT_SENT] = True
            return
        if failure.check(PastLastPage):
            return
        meta = request.meta["tmapi"]
        self.crawler.stats.inc_value("tmapi/pages/failed")
        query = api.CategoryQuery.model_validate(meta["query"])
        progress = self.progress.category(query)
        progress.failed[meta["page"]] = failure.getErrorMessage()
        self.logger.error(
            "Page %d of %s failed: %s",
            meta["page"],
            query.label,
            failure.getErrorMessage(),
        )
