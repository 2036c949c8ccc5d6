"""The ``category`` spider: every page of every category asked for.

``scrapy crawl category -a cat_id=1031922,1031923 -a language=en -a sort=sales``
validates every argument and the token before the first call
(:mod:`tmapi_crawler.preflight`), fetches page 1 of each category, then the
remaining pages concurrently, and yields each item with its context
(:class:`~tmapi_crawler.spiders.pages.PageSpider`). With ``split=price`` a
category at the result cap is sliced into price bands; with ``subtree=true``
each cat_id stands for every leaf category under it
(:mod:`tmapi_crawler.contract.tree`). What each category reached is in the
ledger (:mod:`tmapi_crawler.extensions.ledger`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import scrapy

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract import api
from tmapi_crawler.contract.arguments import ArgumentError, parse_arguments
from tmapi_crawler.contract.slicing import settings_problems
from tmapi_crawler.contract.stats import TREE_CATEGORIES, TREE_FAILED, TREE_LEAVES
from tmapi_crawler.contract.tree import TreeWalk
from tmapi_crawler.exceptions import CrawlStopped
from tmapi_crawler.meta import ANSWER, TMAPI, InfoMeta
from tmapi_crawler.spiders.pages import PageSpider

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure


DRY_RUN_WITH_JOBDIR = (
    "dry_run=true with JOBDIR: a job directory would remember page 1 as fetched "
    "and the real crawl with it would skip it; run the dry run without JOBDIR"
)


class CategorySpider(PageSpider):
    name = "category"

    @classmethod
    def argument_problems(
        cls, settings: BaseSettings, arguments: Mapping[str, Any]
    ) -> list[str]:
        """What is wrong with the arguments and the spider's own settings
        (the components check theirs: :mod:`tmapi_crawler.preflight`)."""
        problems: list[str] = []
        details = None  # the argument, if it could be read
        try:
            parsed = parse_arguments(arguments)
            if parsed.dry_run and RunBackends.from_settings(settings).jobdir:
                problems.append(DRY_RUN_WITH_JOBDIR)
            details = parsed.details
        except ArgumentError as exc:
            problems.append(str(exc))
        problems += cls.details_problems(settings, details)
        return (
            problems
            + super().argument_problems(settings, arguments)
            + settings_problems(settings)
        )

    @classmethod
    def from_crawler(
        cls, crawler: Crawler, *args: Any, **kwargs: Any
    ) -> CategorySpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        if spider.dry_run:  # no items: leave no empty feed behind
            crawler.settings.set("FEED_STORE_EMPTY", False, priority="spider")
        return spider

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.arguments = parse_arguments(kwargs)
        self.dry_run = self.arguments.dry_run
        self.details_argument = self.arguments.details
        self.queries = self.arguments.queries()
        # -a page_size is sent as given; without it, the size served is learned
        self.learns_page_size = "page_size" not in self.arguments.model_fields_set
        self.tree_walk = TreeWalk()

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.arguments.subtree:
            for cat_id in self.arguments.cat_id:
                if self.tree_walk.ask(cat_id):
                    yield self.info_request(cat_id)
            return
        for query in self.queries:
            query = await self.page_size.size_for(query)
            yield self.first_request(query, self.arguments)

    # --- the category tree ---------------------------------------------------

    def info_request(self, cat_id: int) -> scrapy.Request:
        """The info of one category, to find the leaves under it. The error
        contract (retries, stops) applies as to any call: meta ``tmapi``."""
        label = f"category info of {cat_id}"
        return scrapy.Request(
            api.category_info_url(self.base_url, cat_id),
            callback=self.parse_category_info,
            errback=self.info_failed,
            priority=1,
            meta={TMAPI: InfoMeta(cat_id, label).to_meta()},
        )

    def parse_category_info(self, response: Response) -> Iterator[scrapy.Request]:
        """Ask the children that have children; crawl the leaves."""
        cat_id = response.meta[TMAPI]["info"]
        info: api.CategoryInfo = response.meta[ANSWER]
        self.crawler.stats.inc_value(TREE_CATEGORIES)
        leaves, to_ask = self.tree_walk.visit(cat_id, info)
        for child in to_ask:
            yield self.info_request(child)
        self.crawler.stats.inc_value(TREE_LEAVES, len(leaves))
        options = {
            name: getattr(self.arguments, name)
            for name in api.QueryOptions.model_fields
        }
        for leaf in leaves:
            for language in self.arguments.language:
                query = api.CategoryQuery(cat_id=leaf, language=language, **options)
                query = self.page_size.size_now(query)
                yield self.first_request(query, self.arguments)

    def info_failed(self, failure: Failure) -> None:
        """A category whose children could not be learned: its subtree is lost."""
        if failure.check(CrawlStopped):
            return
        request = failure.request  # type: ignore[attr-defined]
        self.crawler.stats.inc_value(TREE_FAILED)
        self.logger.error(
            "Category info of %d failed: %s",
            request.meta[TMAPI]["info"],
            failure.getErrorMessage(),
        )
