"""The crawl's ledger: what each category query and its pages did, in one place.

:class:`CrawlLedger` is the one owner of the crawl's state. It is fed by
signals, and every component that needs the state reads it here
(``crawler.get_extension(CrawlLedger)``); none keeps a copy:

==============================  ===========================================
``page_requested`` (spider)     a page was asked for: its category's plan,
                                and its coverage's pages in flight
``answer_read`` (errors)        the error contract read a page: done, its
                                items, ``total_count``, whether it was last
``page_parsed`` (spider)        what the page adds to its category's
                                coverage (bands, gaps, split), its plan
``request_settled`` (spider)    a page failed for good, or lay past the end
``request_left_downloader``     a call was made (unless ``tmapi_not_sent``);
                                a repeat of a page already sent is a retry
``item_scraped``                an item was exported (through the one
                                receiver the components share:
                                :mod:`tmapi_crawler.itemsignal`)
``item_dropped``                a duplicate (:class:`DuplicateItem`) or an
                                invalid item, told apart by class
==============================  ===========================================

Readers: the error contract (is a page past the last one?), the progress
display, the run summary and the failed-pages file
(:attr:`progress`: :class:`~tmapi_crawler.contract.pagination.CrawlProgress`),
the coverage stats and log lines at the close (:attr:`coverage`). With a job
directory the progress of earlier runs is restored by the job journal, its one
persistence path (:mod:`tmapi_crawler.resume.extension`): :meth:`snapshot`
and :meth:`restore`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from scrapy import signals

from tmapi_crawler import signals as tmapi_signals
from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.contract.coverage import CategoryCoverage, CoverageReport, PageCover
from tmapi_crawler.contract.endpoints import ITEMS, Endpoint
from tmapi_crawler.contract.pagination import CategoryProgress, CrawlProgress
from tmapi_crawler.contract.slicing import Band, Gap
from tmapi_crawler.exceptions import DuplicateItem
from tmapi_crawler.extensions import enabled
from tmapi_crawler.itemsignal import connect_item_scraped
from tmapi_crawler.meta import NOT_SENT, TMAPI, PageMeta, page_meta

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from tmapi_crawler.contract.api import Page

logger = logging.getLogger(__name__)


def root_of(meta: PageMeta, query: CategoryQuery) -> str:
    """The key of the user's query a page (of a band of it) belongs to."""
    return meta.band["root"] if meta.band else query.key


class CrawlLedger:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.result_cap = crawler.settings.getint("TMAPI_RESULT_CAP")
        self.progress = CrawlProgress()
        self.coverage = CoverageReport()
        self.labels: dict[str, str] = {}  # root query key: label, of the user's queries
        # with a job journal: what each answered page added, until it takes it
        self.keep_covers = False
        self.covers: dict[Request, PageCover] = {}
        connect = crawler.signals.connect
        connect(self.page_requested, tmapi_signals.page_requested)
        connect(self.answer_read, tmapi_signals.answer_read)
        connect(self.page_parsed, tmapi_signals.page_parsed)
        connect(self.request_settled, tmapi_signals.request_settled)
        connect(self.request_left, signals.request_left_downloader)
        connect_item_scraped(crawler, self.item_scraped)
        connect(self.item_dropped, signals.item_dropped)
        connect(self.spider_closed, signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlLedger:
        return cls(crawler)

    @classmethod
    def of(cls, crawler: Crawler) -> CrawlLedger:
        return enabled(crawler, cls)

    # --- lookups ---------------------------------------------------------------

    def category_of(self, request: Request) -> CategoryProgress | None:
        """The category query a page request belongs to (None: not a page)."""
        meta = request.meta.get(TMAPI)
        if not meta or "page" not in meta:
            return None
        return self.progress.for_query(meta["query"])

    def past_end(self, request: Request) -> bool:
        """Whether a page request lies past a page that said it was the last."""
        category = self.category_of(request)
        return category is not None and category.past_end(request.meta[TMAPI]["page"])

    def coverage_of(self, meta: PageMeta) -> CategoryCoverage:
        """The coverage of the user's query a page (of a band) belongs to."""
        query = self.progress.for_query(meta.query).query
        root = root_of(meta, query)
        label = self.labels.get(root) or f"category {query.cat_id} ({query.language})"
        return self.coverage.category(root, query.cat_id, label)

    def label(self, root: str, fallback: str) -> str:
        return self.labels.get(root) or fallback

    # --- pages ---------------------------------------------------------------

    def page_requested(self, request: Request) -> None:
        meta = page_meta(request)
        assert meta is not None
        category = self.progress.for_query(meta.query)
        query = category.query
        root = root_of(meta, query)
        if query.key == root:  # one of the user's queries (or a leaf of a tree)
            self.labels.setdefault(root, query.label)
        category.planned = max(category.planned, meta.page, meta.last)
        self.coverage_of(meta).asked()

    def answer_read(self, request: Request, endpoint: Endpoint, answer: Any) -> None:
        if endpoint is not ITEMS:
            return
        if (category := self.category_of(request)) is not None:
            category.record(request.meta[TMAPI]["page"], answer)

    def page_parsed(
        self,
        request: Request,
        page: Page,
        plan: list[Band] | Gap | None,
        followed: range,
    ) -> None:
        """What an answered page adds to its category's coverage and plan; the
        spider sends it once it has asked for the pages the answer adds."""
        meta = page_meta(request)
        assert meta is not None
        category = self.progress.for_query(meta.query)
        category.planned = max(category.planned, *followed, meta.page, meta.last)
        entry = self.coverage_of(meta)
        cover = self._cover(meta, category.query, page, plan)
        entry.item_ids.update(item.get("item_id") for item in page.items)
        entry.apply(cover)
        entry.settled()
        if self.keep_covers:
            self.covers[request] = cover

    def _cover(
        self,
        meta: PageMeta,
        query: CategoryQuery,
        page: Page,
        plan: list[Band] | Gap | None,
    ) -> PageCover:
        cover = self._page(
            meta, query, items=len(page.items), total=page.total_count,
            split=isinstance(plan, list),
        )  # fmt: skip
        if cover.split:
            return cover
        at_cap = meta.page == 1 and (page.total_count or 0) >= self.result_cap
        if isinstance(plan, Gap):
            return replace(cover, gaps=(plan,))
        if at_cap:
            logger.warning(
                "%s reports %d results, the API's cap: only those are reachable "
                "without -a split=price",
                query.label,
                page.total_count,
            )
            reason = "at the result cap; -a split=price reaches the rest"
            gap = Gap(Band.whole(query), page.total_count or 0, reason)
            return replace(cover, gaps=(gap,))
        return cover

    def take_cover(self, request: Request) -> PageCover | None:
        """What an answered page added to the coverage, once (the job journal
        keeps it with the page: :attr:`keep_covers`)."""
        return self.covers.pop(request, None)

    def failed_cover(self, request: Request) -> PageCover | None:
        """A page that failed for good, as its coverage counts it."""
        meta = page_meta(request)
        if meta is None:
            return None
        query = self.progress.for_query(meta.query).query
        return self._page(meta, query, failed=True)

    def _page(self, meta: PageMeta, query: CategoryQuery, **added: Any) -> PageCover:
        """A page's cover: the user's query it belongs to, its category, label
        and band, and what it *added*."""
        label = self.coverage_of(meta).label
        return PageCover(root_of(meta, query), query.cat_id, label, query.key, **added)

    def request_settled(self, request: Request, outcome: str, reason: str = "") -> None:
        meta = page_meta(request)
        if meta is None:
            return
        entry = self.coverage_of(meta)
        entry.settled()
        if outcome != "failed":
            return
        category = self.progress.for_query(meta.query)
        category.failed[meta.page] = reason
        entry.failed_pages += 1

    def resized(self, request: Request, again: Request) -> None:
        """Page 1 of a user's query was refused at its page size and asked
        *again* at another (already requested): the query asked again takes
        the first's place and the calls it cost; the first leaves the plan
        and the coverage."""
        meta, new_meta = page_meta(request), page_meta(again)
        assert meta is not None and new_meta is not None
        old = self.progress.for_query(meta.query)
        root = root_of(meta, old.query)
        self.progress.drop(old.query.key)
        self.coverage.categories.pop(root, None)
        self.labels.pop(root, None)
        new = self.progress.for_query(new_meta.query)
        new.calls += old.calls
        new.retries += old.retries

    # --- calls and items -------------------------------------------------------

    def request_left(self, request: Request) -> None:
        category = self.category_of(request)
        if category is None or request.meta.get(NOT_SENT):
            return
        page = request.meta[TMAPI]["page"]
        category.calls += 1
        if page in category.sent:
            category.retries += 1
        category.sent.add(page)

    def _category_of_response(self, response: Any) -> CategoryProgress | None:
        request = getattr(response, "request", None)
        return None if request is None else self.category_of(request)

    def item_scraped(self, item: Any, response: Response) -> None:
        if category := self._category_of_response(response):
            category.delivered += 1

    def item_dropped(
        self, item: Any, response: Response, exception: BaseException
    ) -> None:
        if category := self._category_of_response(response):
            if isinstance(exception, DuplicateItem):
                category.duplicates += 1
            else:
                category.invalid += 1

    # --- persistence (through the job journal) and the close -------------------

    def snapshot(self) -> list[dict[str, Any]]:
        return self.progress.to_data()

    def restore(self, data: list[dict[str, Any]]) -> None:
        """The progress of earlier runs of the job, kept by the job journal;
        a category this run already has stays as it is."""
        for key, category in CrawlProgress.from_data(data).categories.items():
            self.progress.categories.setdefault(key, category)

    def restore_covers(self, covers: list[tuple[PageCover, list[Any]]]) -> None:
        """The coverage of earlier runs of the job, page by page (with the ids
        each delivered), kept by the job journal."""
        for cover, ids in covers:
            self.labels.setdefault(cover.root, cover.label)
            entry = self.coverage.category(cover.root, cover.cat_id, cover.label)
            entry.apply(cover)
            entry.item_ids.update(ids)

    def restore_end(self, query: dict[str, Any], page: int) -> None:
        """A page of an earlier run said it was the last."""
        category = self.progress.for_query(query)
        category.end = page if category.end is None else min(category.end, page)

    def spider_closed(self, spider: Spider) -> None:
        """Coverage into stats (``tmapi/coverage/...``) and a summary in the log."""
        if self.crawler.stats is not None:
            for name, value in self.coverage.stats().items():
                self.crawler.stats.set_value(name, value)
        if self.coverage.categories:
            logger.info("Coverage:\n%s", "\n".join(self.coverage.lines()))
