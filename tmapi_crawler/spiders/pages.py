"""What every spider of the project does with the items endpoint: page
requests, following the pagination, price bands, the items with their context.

:class:`PageSpider` knows the API and its own requests, nothing of the
infrastructure: it tells the ledger what it asked for and what each answer
added through signals (:mod:`tmapi_crawler.signals`), and each request's
``meta["tmapi"]`` (:class:`~tmapi_crawler.meta.PageMeta`) holds all its
pagination needs, so any worker (or a later run) can handle its answer.
Page 1 of a category is fetched first; its ``total_count`` plans the rest
(:mod:`tmapi_crawler.contract.pagination`), fetched concurrently. With
``split=price`` a band at the result cap is sliced into sub-bands
(:mod:`tmapi_crawler.contract.slicing`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self

import scrapy

from tmapi_crawler import preflight
from tmapi_crawler.contract import api
from tmapi_crawler.contract.arguments import CrawlArguments
from tmapi_crawler.contract.credentials import store_uri
from tmapi_crawler.contract.operator_settings import SettingError, switch
from tmapi_crawler.contract.pagination import pages_to_follow
from tmapi_crawler.contract.slicing import Band, Gap, plan_split, to_fen
from tmapi_crawler.contract.stats import PAGES_FAILED, SPLIT_BANDS
from tmapi_crawler.exceptions import (
    CrawlRefused,
    CrawlStopped,
    PageFailed,
    PastLastPage,
)
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.extensions.pagesize import PageSizeServed, at_page_size
from tmapi_crawler.meta import ANSWER, NOT_SENT, TMAPI, PageMeta
from tmapi_crawler.signals import page_parsed, page_requested, request_settled
from tmapi_crawler.spiders.details import DetailRequests, detail_problems

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

# Page 1 of a category (or band) goes after every other page waiting: the
# categories under way finish before new ones start, so the queue holds the
# pages of a few categories, not of all (flat memory: BENCHMARKS.md, benchmark
# 4). Other pages go in page order, so a last page is met before pages past it.
FIRST_PAGE_PRIORITY = -1_000_000


class PageSpider(DetailRequests):
    """The pages of category queries (and the details of the listings
    chosen: :class:`DetailRequests`); subclasses say which queries."""

    dry_run = False  # True: page 1 of each query only, for the plan
    # True: new queries ask the page size the API serves, learned by its
    # owner (extensions.pagesize); False: each query's page_size as given
    learns_page_size = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        """The spider, once the pre-flight checks pass (a runner other than
        ``scrapy crawl``, such as scrapyd or ``CrawlerProcess``, gets here
        without them). ``scrapy crawl`` builds the spider before it applies the
        add-ons, and freezes the settings once it has: the checks see the
        settings as the add-on wires them (and load none of the components it
        switches off)."""
        settings = crawler.settings
        problems = preflight.problems(
            settings, cls, kwargs, already_wired=settings.frozen
        )
        if problems:
            raise CrawlRefused("\n".join(problems))
        return super().from_crawler(crawler, *args, **kwargs)

    @classmethod
    def argument_problems(
        cls, settings: BaseSettings, arguments: Mapping[str, Any]
    ) -> list[str]:
        """What is wrong with the spider's own settings (subclasses add their
        arguments'; the components check theirs)."""
        base = str(settings.get("TMAPI_BASE_URL") or "")
        try:
            allow = switch(settings, "TMAPI_ALLOW_PLAIN_HTTP")
        except SettingError as exc:
            return [str(exc)]
        return api.base_url_problems(base, allow_plain_http=allow)

    @classmethod
    def details_problems(
        cls, settings: BaseSettings, argument: frozenset[str] | None
    ) -> list[str]:
        """The details asked (the argument, else ``TMAPI_DETAILS``)."""
        return detail_problems(settings, argument, store_uri(settings))

    @property
    def base_url(self) -> str:
        return self.settings.get("TMAPI_BASE_URL")

    @property
    def result_cap(self) -> int:
        return self.settings.getint("TMAPI_RESULT_CAP")

    @cached_property
    def ledger(self) -> CrawlLedger:
        return CrawlLedger.of(self.crawler)

    @cached_property
    def page_size(self) -> PageSizeServed:
        """The owner of the page size a new query asks (learned unless
        :attr:`learns_page_size` is False)."""
        return PageSizeServed.of(self.crawler)

    def ask_again_smaller(self, failure: Failure) -> scrapy.Request | None:
        """Page 1 of a user's query refused (422) at a page size above the
        documented one: that page 1 asked again at the size the page size's
        owner says (the failed call is the probe's price, not a failure of
        the category)."""
        if not failure.check(PageFailed):
            return None
        request = failure.request  # type: ignore[attr-defined]
        meta = PageMeta.from_meta(request.meta[TMAPI])
        query = api.CategoryQuery.model_validate(meta.query)
        if meta.page != 1:
            return None
        size = self.page_size.refused(
            query.page_size,
            getattr(failure.value, "code", None),
            user_query=not meta.band or meta.band.get("root") == query.key,
        )
        if size is None:
            return None
        again = at_page_size(query, size)
        band = Band.whole(again).to_meta() if meta.band else None
        retry = self.page_request(
            again,
            1,
            planned_last=1,
            band=band,
            max_pages=meta.max_pages,
            details=meta.details,
        )
        self.crawler.signals.send_catch_log(
            request_settled, request=request, outcome="resized", reason=""
        )
        self.ledger.resized(request, retry)
        self.logger.warning(
            "Page 1 of %s: page_size=%d refused (%s); asking it again at %d, "
            "the size every later query asks",
            query.label,
            query.page_size,
            failure.getErrorMessage(),
            size,
        )
        return retry

    # --- page requests -----------------------------------------------------------

    def first_request(
        self,
        query: api.CategoryQuery,
        arguments: CrawlArguments,
        details: tuple[str, ...] | None = None,
    ) -> scrapy.Request:
        """Page 1 of a query of the crawl's (or a job's) *arguments*: with
        ``split=price`` (the argument, else ``TMAPI_SPLIT``), its first band;
        *details*: a job's own kinds."""
        split = arguments.split or self.settings.get("TMAPI_SPLIT") or "none"
        band = Band.whole(query).to_meta() if split == "price" else None
        return self.page_request(
            query,
            1,
            planned_last=1,
            band=band,
            max_pages=arguments.max_pages,
            details=details,
        )

    def page_request(
        self,
        query: api.CategoryQuery,
        page_no: int,
        planned_last: int,
        band: dict[str, Any] | None = None,
        max_pages: int | None = None,
        details: tuple[str, ...] | None = None,
    ) -> scrapy.Request:
        """Page *page_no* of *query* (of a price *band*, see :class:`Band`);
        *planned_last*: the last page planned when it is made; *max_pages*
        and *details*: a job's own, passed on to the pages that follow."""
        meta = PageMeta(
            query=query.model_dump(mode="json", exclude_defaults=True),
            page=page_no,
            last=planned_last,
            band=band,
            max_pages=max_pages,
            details=details,
        )
        request = scrapy.Request(
            api.page_url(self.base_url, query, page_no),
            callback=self.parse_page,
            errback=self.page_failed,
            priority=FIRST_PAGE_PRIORITY if page_no == 1 else -page_no,
            meta={TMAPI: meta.to_meta()},
        )
        self.crawler.signals.send_catch_log(page_requested, request=request)
        return request

    def parse_page(self, response: Response) -> Iterator[Any]:
        """Follow the pagination, then yield the page's items with their context."""
        meta = PageMeta.from_meta(response.meta[TMAPI])
        query = api.CategoryQuery.model_validate(meta.query)
        page: api.Page = response.meta[ANSWER]
        at_cap = meta.page == 1 and (page.total_count or 0) >= self.result_cap
        plan = self.plan_band(query, meta.band, page) if at_cap and meta.band else None
        if isinstance(plan, list):  # split: the sub-bands' pages replace these
            followed = range(0)
            for child in plan:
                yield self.page_request(
                    child.query(query),
                    1,
                    planned_last=1,
                    band=child.to_meta(),
                    max_pages=meta.max_pages,
                    details=meta.details,
                )
        else:
            followed = pages_to_follow(meta.page, meta.last, page, meta.max_pages)
        if not self.dry_run:  # a dry run knows the plan from page 1: it stops there
            for next_no in followed:
                yield self.page_request(
                    query,
                    next_no,
                    planned_last=followed[-1],
                    band=meta.band,
                    max_pages=meta.max_pages,
                    details=meta.details,
                )
        self.crawler.signals.send_catch_log(
            page_parsed,
            request=response.request,
            page=page,
            plan=plan,
            followed=followed,
        )
        if self.dry_run:
            return
        context = {
            "cat_id": query.cat_id,
            "language": query.language,
            "sort": query.sort,
            "filters": query.filters(),
            "page": meta.page,
            "crawled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for position, item in enumerate(page.items, 1):
            yield {**item, **context, "position": position}
        yield from self.detail_requests(page.items, query.language, meta.details)

    def page_failed(self, failure: Failure) -> Iterator[scrapy.Request]:
        """A page that could not be fetched: logged with its category and page
        (page 1 refused at a page size not served: asked again smaller)."""
        if (again := self.ask_again_smaller(failure)) is not None:
            yield again
            return
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(CrawlStopped):
            # still to do when the crawl resumes (a shared queue or a JOBDIR
            # journal keeps it)
            request.meta[NOT_SENT] = True
            return
        past_end = failure.check(PastLastPage) is not None
        self.crawler.signals.send_catch_log(
            request_settled,
            request=request,
            outcome="past_end" if past_end else "failed",
            reason=failure.getErrorMessage(),
        )
        if past_end:
            return
        self.crawler.stats.inc_value(PAGES_FAILED)
        meta = PageMeta.from_meta(request.meta[TMAPI])
        query = api.CategoryQuery.model_validate(meta.query)
        self.logger.error(
            "Page %d of %s failed: %s",
            meta.page,
            query.label,
            failure.getErrorMessage(),
        )

    def plan_band(
        self, query: api.CategoryQuery, band: dict[str, Any], page: api.Page
    ) -> list[Band] | Gap:
        """A band at the cap: its sub-bands, or a gap (paged to the cap like a
        category crawled without splitting: what is reachable is delivered)."""
        current = Band.from_meta(band)
        label = self.ledger.label(current.root, query.label)
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
