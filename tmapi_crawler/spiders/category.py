"""The ``category`` spider: every page of every category asked for.

``scrapy crawl category -a cat_id=1031922,1031923 -a language=en -a sort=sales``
validates every argument and the token before the first call, fetches page 1
of each category, then the remaining pages concurrently (see
:mod:`tmapi_crawler.contract.pagination`), and yields each item with its context.
With ``split=price`` a category at the result cap is sliced into price bands
(:mod:`tmapi_crawler.contract.slicing`); with ``subtree=true`` each cat_id stands for
every leaf category under it (:mod:`tmapi_crawler.contract.tree`). What each category
reached is in ``spider.coverage`` (:mod:`tmapi_crawler.contract.coverage`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import scrapy
from twisted.python.failure import Failure

from tmapi_crawler import preflight
from tmapi_crawler.contract import api
from tmapi_crawler.contract.arguments import ArgumentError, parse_arguments
from tmapi_crawler.contract.coverage import CategoryCoverage, CoverageReport
from tmapi_crawler.contract.pagination import CrawlProgress, pages_to_follow
from tmapi_crawler.contract.slicing import (
    Band,
    Gap,
    plan_split,
    settings_problems,
    to_fen,
)
from tmapi_crawler.contract.stats import (
    PAGES_FAILED,
    PAGES_REDELIVERED,
    SPLIT_BANDS,
    TREE_CATEGORIES,
    TREE_FAILED,
    TREE_LEAVES,
)
from tmapi_crawler.contract.tree import TreeWalk
from tmapi_crawler.exceptions import CrawlRefused, CrawlStopped, PastLastPage
from tmapi_crawler.meta import (
    DATA,
    NOT_SENT,
    PAGE,
    REDELIVERED,
    TMAPI,
    InfoMeta,
    PageMeta,
)
from tmapi_crawler.pipelines.dedupe import DedupePipeline
from tmapi_crawler.signals import request_settled

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings


DRY_RUN_WITH_JOBDIR = (
    "dry_run=true with JOBDIR: a job directory would remember page 1 as fetched "
    "and the real crawl with it would skip it; run the dry run without JOBDIR"
)


# Page 1 of a category (or band) goes after every other page waiting: the
# categories under way finish before new ones start, so the queue holds the
# pages of a few categories, not of all (flat memory: BENCHMARKS.md, benchmark
# 4). Other pages go in page order, so a last page is met before pages past it.
FIRST_PAGE_PRIORITY = -1_000_000


class CategorySpider(scrapy.Spider):
    name = "category"

    @classmethod
    def argument_problems(
        cls, settings: BaseSettings, arguments: Mapping[str, Any]
    ) -> list[str]:
        """What is wrong with the arguments and the spider's own settings
        (the components check theirs: :mod:`tmapi_crawler.preflight`)."""
        problems: list[str] = []
        try:
            if parse_arguments(arguments).dry_run and settings.get("JOBDIR"):
                problems.append(DRY_RUN_WITH_JOBDIR)
        except ArgumentError as exc:
            problems.append(str(exc))
        return problems + settings_problems(settings)

    @classmethod
    def from_crawler(
        cls, crawler: Crawler, *args: Any, **kwargs: Any
    ) -> CategorySpider:
        problems = preflight.problems(crawler.settings, cls, kwargs, already_wired=True)
        if problems:
            raise CrawlRefused("\n".join(problems))
        spider = super().from_crawler(crawler, *args, **kwargs)
        if spider.arguments.dry_run:  # no items: leave no empty feed behind
            crawler.settings.set("FEED_STORE_EMPTY", False, priority="spider")
        return spider

    def __init__(self, **kwargs: Any) -> None:
        self.arguments = parse_arguments(kwargs)
        super().__init__()
        self.queries = self.arguments.queries()
        self._progress = CrawlProgress()
        self.coverage_report = CoverageReport()
        self.tree_walk = TreeWalk()
        self.labels: dict[str, str] = {}  # query key: label, of the user's queries

    @property
    def progress(self) -> CrawlProgress:
        """Where each category stands; kept in the job directory (``spider.state``,
        with ``-s JOBDIR=...``) so a resumed run carries on from the last one."""
        state = getattr(self, "state", None)
        if not isinstance(state, dict):
            return self._progress
        return state.setdefault("tmapi_progress", self._progress)

    @property
    def base_url(self) -> str:
        return self.settings.get("TMAPI_BASE_URL")

    @property
    def split(self) -> str | None:
        """``price`` when categories at the cap are sliced, else None."""
        chosen = self.arguments.split or self.settings.get("TMAPI_SPLIT") or "none"
        return None if chosen == "none" else chosen

    @property
    def result_cap(self) -> int:
        return self.settings.getint("TMAPI_RESULT_CAP")

    @property
    def coverage(self) -> dict[str, dict[str, Any]]:
        """Per category query: bands, items against their counts, gaps."""
        return self.coverage_report.summaries()

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.arguments.subtree:
            for cat_id in self.arguments.cat_id:
                if self.tree_walk.ask(cat_id):
                    yield self.info_request(cat_id)
            return
        for query in self.queries:
            yield self.first_request(query)

    def first_request(self, query: api.CategoryQuery) -> scrapy.Request:
        """Page 1 of one of the user's queries: with split=price, its first band."""
        self.labels[query.key] = query.label
        band = Band.whole(query).to_meta() if self.split == "price" else None
        return self.page_request(
            query, 1, planned_last=1, band=band, max_pages=self.arguments.max_pages
        )

    def page_request(
        self,
        query: api.CategoryQuery,
        page_no: int,
        planned_last: int,
        band: dict[str, Any] | None = None,
        max_pages: int | None = None,
    ) -> scrapy.Request:
        """A page request; meta ``tmapi`` (:class:`~tmapi_crawler.meta.PageMeta`)
        says which page of which query it is (and, with split=price, of which
        band: see :class:`Band`) and all its pagination needs, so any worker
        can handle its answer."""
        meta = PageMeta(
            query=query.model_dump(mode="json", exclude_defaults=True),
            page=page_no,
            last=planned_last,
            band=band,
            max_pages=max_pages,
        )
        self.coverage_entry(query, band).asked()
        return scrapy.Request(
            api.page_url(self.base_url, query, page_no),
            callback=self.parse_page,
            errback=self.page_failed,
            priority=FIRST_PAGE_PRIORITY if page_no == 1 else -page_no,
            meta={TMAPI: meta.to_meta()},
        )

    def parse_page(self, response: Response) -> Iterator[Any]:
        """Follow the pagination, then yield the page's items with their context."""
        meta = PageMeta.from_meta(response.meta[TMAPI])
        query = api.CategoryQuery.model_validate(meta.query)
        page_no, band, max_pages = meta.page, meta.band, meta.max_pages
        page: api.Page = response.meta[PAGE]
        at_cap = page_no == 1 and (page.total_count or 0) >= self.result_cap
        plan = self.plan_band(query, band, page) if at_cap and band else None
        self.cover(query, band, page, at_cap, plan)
        if isinstance(plan, list):  # split: the sub-bands' pages replace these
            followed = range(0)
            for child in plan:
                yield self.page_request(
                    child.query(query),
                    1,
                    planned_last=1,
                    band=child.to_meta(),
                    max_pages=max_pages,
                )
        else:
            followed = pages_to_follow(page_no, meta.last, page, max_pages)
        progress = self.progress.category(query)
        progress.planned = max(progress.planned, *followed, page_no, meta.last)
        if self.arguments.dry_run:  # the plan is known from page 1: stop there
            self.coverage_entry(query, band).settled()
            return
        for next_no in followed:
            yield self.page_request(
                query,
                next_no,
                planned_last=followed[-1],
                band=band,
                max_pages=max_pages,
            )
        context = {
            "cat_id": query.cat_id,
            "language": query.language,
            "sort": query.sort,
            "filters": query.filters(),
            "page": page_no,
            "crawled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if response.meta.get(REDELIVERED):
            self.crawler.stats.inc_value(PAGES_REDELIVERED)
            dedupe = self.crawler.get_item_pipeline(DedupePipeline)
            if dedupe is not None:
                ids = [item.get("item_id") for item in page.items]
                dedupe.forget(ids, query.language)
        for position, item in enumerate(page.items, 1):
            yield {**item, **context, "position": position}
        self.coverage_entry(query, band).settled()  # after the pages it asked for

    def page_failed(self, failure: Failure) -> None:
        """A page that could not be fetched: logged with its category and page."""
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(CrawlStopped):
            # still to do when the crawl resumes (a shared queue or a JOBDIR
            # journal keeps it)
            request.meta[NOT_SENT] = True
            return
        outcome = "past_end" if failure.check(PastLastPage) else "failed"
        self.crawler.signals.send_catch_log(
            request_settled, request=request, outcome=outcome
        )
        meta = PageMeta.from_meta(request.meta[TMAPI])
        query = api.CategoryQuery.model_validate(meta.query)
        coverage = self.coverage_entry(query, meta.band)
        coverage.settled()
        if failure.check(PastLastPage):
            return
        self.crawler.stats.inc_value(PAGES_FAILED)
        progress = self.progress.category(query)
        progress.failed[meta.page] = failure.getErrorMessage()
        coverage.failed_pages += 1
        self.logger.error(
            "Page %d of %s failed: %s",
            meta.page,
            query.label,
            failure.getErrorMessage(),
        )

    # --- coverage and price slicing ------------------------------------------

    def cover(
        self,
        query: api.CategoryQuery,
        band: dict[str, Any] | None,
        page: api.Page,
        at_cap: bool,
        plan: list[Band] | Gap | None,
    ) -> None:
        """Count what this page adds to its category's coverage."""
        entry = self.coverage_entry(query, band)
        entry.deliveries += len(page.items)
        entry.item_ids.update(item.get("item_id") for item in page.items)
        if isinstance(plan, list):
            entry.split += 1  # its sub-bands count instead
            return
        entry.band_items += len(page.items)
        if page.total_count is not None:
            entry.bands[query.key] = page.total_count
        elif query.key not in entry.bands:
            entry.bands[query.key] = len(page.items)
        if isinstance(plan, Gap):
            entry.gaps.append(plan)
        elif at_cap:
            entry.gaps.append(
                Gap(
                    Band.whole(query),
                    page.total_count or 0,
                    "at the result cap; -a split=price reaches the rest",
                )
            )
            self.logger.warning(
                "%s reports %d results, the API's cap: only those are reachable "
                "without -a split=price",
                query.label,
                page.total_count,
            )

    def coverage_entry(
        self, query: api.CategoryQuery, band: dict[str, Any] | None
    ) -> CategoryCoverage:
        """The coverage of the user's query this page (of a band) belongs to."""
        root = band["root"] if band else query.key
        label = self.labels.get(root) or f"category {query.cat_id} ({query.language})"
        return self.coverage_report.category(root, query.cat_id, label)

    def plan_band(
        self, query: api.CategoryQuery, band: dict[str, Any], page: api.Page
    ) -> list[Band] | Gap:
        """A band at the cap: its sub-bands, or a gap (paged to the cap like a
        category crawled without splitting: what is reachable is delivered)."""
        current = Band.from_meta(band)
        label = self.labels.get(current.root) or query.label
        plan = plan_split(
            current,
            page.total_count or 0,
            [to_fen(item.get("price")) for item in page.items],
            representative=query.sort in ("default", "sales"),
            ways=self.settings.getint("TMAPI_SPLIT_WAYS"),
        )
        if isinstance(plan, Gap):
            self.logger.warning(
                "%s, %s: %d+ items, a coverage gap (%s); the first %d are fetched",
                label,
                current.describe(),
                plan.count,
                plan.reason,
                plan.count,
            )
            return plan
        self.crawler.stats.inc_value(SPLIT_BANDS)
        self.logger.info(
            "%s, %s at the cap: split into %s",
            label,
            current.describe(),
            ", ".join(child.describe() for child in plan),
        )
        return plan

    def closed(self, reason: str) -> None:
        """Coverage into stats (``tmapi/coverage/...``) and a summary in the log."""
        report = self.coverage_report
        for name, value in report.stats().items():
            self.crawler.stats.set_value(name, value)
        if report.categories:
            self.logger.info("Coverage:\n%s", "\n".join(report.lines()))

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
        info = api.category_info_from_data(response.meta[DATA])
        self.crawler.stats.inc_value(TREE_CATEGORIES)
        for problem in info.problems:
            self.logger.warning("Category info of %d: %s", cat_id, problem)
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
                yield self.first_request(query)

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
