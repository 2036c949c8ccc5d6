"""Item details for the listings chosen (``-a details=KINDS``, ``TMAPI_DETAILS``).

:class:`DetailRequests` is the part of a page spider that asks
``/1688/item_detail`` for the listings of a page it chose: every one
(``all``), or those the catalog store judges new, repriced or back
(:class:`~tmapi_crawler.store.judge.ListingJudge`, the store's own rule).
Each request is an ordinary TMAPI call (``meta["tmapi"]``: a
:class:`~tmapi_crawler.meta.DetailMeta`), so the error contract, retries,
holds, the calls in flight, the budget, the job journal and the Redis queue
apply as to a page. Its URL is the item and language, so the run's duplicate
filter (in the job directory with ``JOBDIR``, in Redis with ``REDIS_URL``)
lets each item's details be asked once a run, whatever the pages, workers and
resumes that chose it. At most ``TMAPI_MAX_DETAIL_CALLS`` are asked by a
process; the rest are counted (``tmapi/details/over_cap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import scrapy

from tmapi_crawler.contract.details import (
    MAX_DETAIL_CALLS,
    STORE_KINDS,
    DetailAnswer,
    DetailItem,
    detail_url,
    parse_detail_kinds,
)
from tmapi_crawler.contract.operator_settings import SettingError, max_calls
from tmapi_crawler.contract.stats import (
    DETAILS_CHOSEN,
    DETAILS_FAILED,
    DETAILS_GONE,
    DETAILS_ITEMS,
    DETAILS_OVER_CAP,
    DETAILS_UNFIT,
)
from tmapi_crawler.exceptions import CrawlStopped
from tmapi_crawler.meta import ANSWER, NOT_SENT, TMAPI, DetailMeta
from tmapi_crawler.store.judge import ListingJudge

if TYPE_CHECKING:
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

DETAIL_PRIORITY = 1  # before more pages: the queue holds few details at a time
NEEDS_STORE = (
    "details={kinds}: new, price and back are judged by the catalog store "
    "against what it held; set TMAPI_STORE (or choose details=all or none)"
)


def detail_kinds(
    settings: BaseSettings, argument: frozenset[str] | None
) -> frozenset[str]:
    """The kinds chosen: the argument, else the ``TMAPI_DETAILS`` setting."""
    if argument is not None:
        return argument
    try:
        return parse_detail_kinds(settings.get("TMAPI_DETAILS"))
    except ValueError as exc:
        given = settings.get("TMAPI_DETAILS")
        raise SettingError(f"TMAPI_DETAILS={given!r}: {exc}") from None


def detail_problems(
    settings: BaseSettings, argument: frozenset[str] | None, store: str | None
) -> list[str]:
    """What is wrong with the details asked, before any call."""
    problems = []
    try:
        kinds = detail_kinds(settings, argument)
        if kinds & set(STORE_KINDS) and not store:
            problems.append(NEEDS_STORE.format(kinds=",".join(sorted(kinds))))
    except SettingError as exc:
        problems.append(str(exc))
    try:
        max_calls(settings, MAX_DETAIL_CALLS)
    except SettingError as exc:
        problems.append(str(exc))
    return problems


class DetailRequests(scrapy.Spider):
    """Detail requests for the listings chosen, and their answers."""

    details_argument: frozenset[str] | None = None  # -a details=...

    @cached_property
    def detail_kinds(self) -> frozenset[str]:
        return detail_kinds(self.settings, self.details_argument)

    @cached_property
    def max_detail_calls(self) -> int | None:
        return max_calls(self.settings, MAX_DETAIL_CALLS)

    @cached_property
    def detailed(self) -> set[tuple[int, str]]:
        """The items this process chose (the duplicate filter: the run's)."""
        return set()

    _judge: ListingJudge | None = None

    def judge(self) -> ListingJudge:
        """The store's judgment, built once a page's kinds first need it (the
        pre-flight checks, and each job's, made sure there is a store). Not a
        property: Scrapy's feed exports read every attribute of the spider."""
        if self._judge is None:
            self._judge = ListingJudge.of(self.crawler)
        return self._judge

    def detail_requests(
        self,
        items: Iterable[Mapping[str, Any]],
        language: str,
        kinds: Iterable[str] | None = None,
    ) -> Iterator[scrapy.Request]:
        """A detail request for each listing of *items* chosen: of *kinds*
        (a job's), else of the spider's kinds."""
        chosen = self.detail_kinds if kinds is None else frozenset(kinds)
        if not chosen:
            return
        listed = [item for item in items if isinstance(item.get("item_id"), int | str)]
        if chosen & set(STORE_KINDS):
            listed = self.judge().chosen(listed, language, chosen)
        stats = self.crawler.stats
        assert stats is not None
        for item in listed:
            try:
                item_id = int(item["item_id"])
            except ValueError:
                continue
            if (item_id, language) in self.detailed:
                continue
            if self.max_detail_calls is not None and (
                len(self.detailed) >= self.max_detail_calls
            ):
                stats.inc_value(DETAILS_OVER_CAP)
                continue
            self.detailed.add((item_id, language))
            stats.inc_value(DETAILS_CHOSEN)
            meta = DetailMeta(item_id, language)
            yield scrapy.Request(
                detail_url(self.settings.get("TMAPI_BASE_URL"), item_id, language),
                callback=self.parse_detail,
                errback=self.detail_failed,
                priority=DETAIL_PRIORITY,
                meta={TMAPI: meta.to_meta()},
            )

    def parse_detail(self, response: Response) -> Iterator[DetailItem]:
        answer: DetailAnswer = response.meta[ANSWER]
        stats = self.crawler.stats
        assert stats is not None
        for name in answer.unfit_fields:
            stats.inc_value(DETAILS_UNFIT + name)
        if answer.item is None:
            stats.inc_value(DETAILS_GONE)
            self.logger.warning(
                "Item %d (%s) no longer exists: no details",
                answer.item_id,
                answer.language,
            )
            return
        stats.inc_value(DETAILS_ITEMS)
        yield answer.item

    def detail_failed(self, failure: Failure) -> None:
        """A detail that could not be fetched fails alone, never the crawl."""
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(CrawlStopped):
            request.meta[NOT_SENT] = True  # still to do when the crawl resumes
            return
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(DETAILS_FAILED)
        meta = DetailMeta.from_meta(request.meta[TMAPI])
        self.logger.error("%s failed: %s", meta.label, failure.getErrorMessage())
