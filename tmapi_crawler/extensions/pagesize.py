"""The page size served, owned whole: what to ask, what was learned, where it
is kept.

:class:`PageSizeServed` is the one owner of the page size a new query asks
(:mod:`tmapi_crawler.contract.pagesize`), as :class:`CallsInFlight
<tmapi_crawler.extensions.calls.CallsInFlight>` owns the learned limit of
calls in flight. The spider only asks it the size of a new query
(:meth:`PageSizeServed.size_for`, or :meth:`~PageSizeServed.size_now` in a
callback, where nothing can wait) and, when page 1 of a query fails, whether
that was the probe's refusal (:meth:`~PageSizeServed.refused`: the size to
ask it again at). It holds:

* the :class:`~tmapi_crawler.contract.pagesize.PageSizeLearner`, which says
  when a query waits for the probe's answer;
* the memory of the size asked, beside the learned limit
  (:class:`~tmapi_crawler.extensions.calls.LimitMemory`: the limits file, the
  job directory's, or the Redis hash ``tmapi:page_sizes`` every worker on the
  token reads, polled while the probe's answer is pending);
* what the answers taught: it listens to ``answer_read`` (the items
  endpoint's page 1 answers), so the size served is learned whoever parses
  the page.

It does nothing when the spider does not learn the page size (``-a page_size``
given: each query asks the size it was given).

Stats: ``tmapi/page_size/{asked,served,remembered,refused}``; the run summary
and the dry run's plan read them from here (:meth:`~PageSizeServed.summary`).
"""

from __future__ import annotations

import asyncio
import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract import api
from tmapi_crawler.contract.credentials import token_from
from tmapi_crawler.contract.endpoints import ITEMS, Endpoint
from tmapi_crawler.contract.operator_settings import switch
from tmapi_crawler.contract.pagesize import PageSizeLearner, is_refusal
from tmapi_crawler.contract.stats import (
    PAGE_SIZE_ASKED,
    PAGE_SIZE_REFUSED,
    PAGE_SIZE_REMEMBERED,
    PAGE_SIZE_SERVED,
)
from tmapi_crawler.extensions import enabled
from tmapi_crawler.extensions.calls import LimitMemory
from tmapi_crawler.meta import TMAPI, PageMeta
from tmapi_crawler.signals import answer_read

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

# How often a query waiting for the page size probe's answer looks again (the
# answer may come to another worker: it is read from the shared memory), and
# how long it waits at most before it asks the documented size, which every
# reading serves (a probe retried long, or answered where it cannot be read).
PAGE_SIZE_POLL = 0.05
PAGE_SIZE_WAIT = 120.0


def at_page_size(query: api.CategoryQuery, size: int) -> api.CategoryQuery:
    """*query* asking *size* items a page."""
    if query.page_size == size:
        return query
    return api.CategoryQuery.model_validate({**query.model_dump(), "page_size": size})


class PageSizeServed:
    """The page size served (see the module doc)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.settings = crawler.settings

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageSizeServed:
        served = cls(crawler)
        crawler.signals.connect(served.answer_read, signal=answer_read)
        return served

    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        value = settings.get("TMAPI_PAGE_SIZE_PROBE")
        number = api.int_of_digits(str(value).strip())
        if number is None or not 1 <= number <= api.MAX_PAGE_SIZE:
            return [
                f"TMAPI_PAGE_SIZE_PROBE={value!r}: must be a whole number from 1 "
                f"to {api.MAX_PAGE_SIZE} (the page size asked until the one "
                "served is known)"
            ]
        return []

    @classmethod
    def of(cls, crawler: Crawler) -> PageSizeServed:
        return enabled(crawler, cls)

    @property
    def active(self) -> bool:
        """Whether the spider's new queries ask the size learned here (not
        with ``-a page_size``, nor for a spider that does not learn it)."""
        return bool(getattr(self.crawler.spider, "learns_page_size", False))

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    @cached_property
    def memory(self) -> LimitMemory | None:
        """Where the page size served is kept, beside the learned limit: with
        Redis or a job directory always (the workers on a token, or the runs
        of a job, must ask one size, or each would crawl a query of its own),
        else unless TMAPI_REMEMBER_LIMIT is off."""
        token = token_from(self.settings)
        backends = RunBackends.of(self.crawler)
        shared = backends.distributed or backends.jobdir is not None
        if not token or not (shared or switch(self.settings, "TMAPI_REMEMBER_LIMIT")):
            return None
        return LimitMemory(self.settings, backends, token)

    @cached_property
    def learner(self) -> PageSizeLearner:
        memory = self.memory
        remembered = memory.read("page_size") if memory else None
        if remembered is not None:
            self.stats.set_value(PAGE_SIZE_REMEMBERED, remembered)
        probe = self.settings.getint("TMAPI_PAGE_SIZE_PROBE")
        return PageSizeLearner(probe=probe, known=remembered)

    # --- the size a new query asks -----------------------------------------------

    def sized(self, query: api.CategoryQuery) -> api.CategoryQuery | None:
        """*query* at the page size to ask; None while the probe's answer is
        pending."""
        if not self.active:
            return query
        size = self.learner.next_size()
        if size is None:
            return None
        if self.stats.get_value(PAGE_SIZE_ASKED) is None:
            self.stats.set_value(PAGE_SIZE_ASKED, size)
        return at_page_size(query, size)

    async def size_for(self, query: api.CategoryQuery) -> api.CategoryQuery:
        """*query* at the page size to ask, once the probe has its answer
        (here, or with Redis at any worker on the token): waiting costs one
        call's latency, asking before it could cost a refused call a query."""
        waited = 0.0
        while (sized := self.sized(query)) is None:
            if waited >= PAGE_SIZE_WAIT:
                return self.size_now(query)
            await asyncio.sleep(PAGE_SIZE_POLL)
            waited += PAGE_SIZE_POLL
            memory = self.memory
            if memory is None or memory.redis is None:
                continue
            if (size := memory.read("page_size")) is not None:
                self.learner.known = size
        return sized

    def size_now(self, query: api.CategoryQuery) -> api.CategoryQuery:
        """*query* at the page size to ask, found where nothing can wait (a
        callback): while the probe is pending, the documented size, which
        every reading serves."""
        return self.sized(query) or at_page_size(query, api.DEFAULT_PAGE_SIZE)

    # --- what the answers teach --------------------------------------------------

    def answer_read(self, request: Request, endpoint: Endpoint, answer: Any) -> None:
        """What a page 1 answer says of the page size served."""
        if endpoint is not ITEMS or not self.active:
            return
        meta = PageMeta.from_meta(request.meta[TMAPI])
        if meta.page != 1:
            return
        query = api.CategoryQuery.model_validate(meta.query)
        learned = self.learner.answered(query.page_size, answer)
        if self.learner.served is not None:
            self.stats.set_value(PAGE_SIZE_SERVED, self.learner.served)
        if learned is not None:
            self.keep(learned)

    def refused(self, asked: int, code: int | None, user_query: bool) -> int | None:
        """Page 1 of a query asked at *asked* failed with *code*: the size to
        ask it again at if that was a refusal of the size (422, above the
        documented one) of a user's query (the documented size from now on,
        kept), else None (the probe, if it was one, failed otherwise)."""
        if not self.active:
            return None
        if not user_query or not is_refusal(asked, code):
            self.learner.failed()
            return None
        size = self.learner.refused()
        self.stats.set_value(PAGE_SIZE_SERVED, size)
        self.keep(size)
        self.stats.inc_value(PAGE_SIZE_REFUSED)
        return size

    def keep(self, size: int) -> None:
        """The size every query asks from now on, kept for the next run."""
        memory = self.memory
        kept = memory is not None and memory.keep(size, "page_size")
        logger.info(
            "Page size: asking %d, served %s%s",
            size,
            self.learner.served or "as much",
            f" (kept in {memory.where_of('page_size')})" if memory and kept else "",
        )

    # --- for the summary ---------------------------------------------------------

    def summary(self) -> dict[str, Any] | None:
        """The page size asked and served (None: given with -a page_size)."""
        stats = self.stats.get_stats()
        if PAGE_SIZE_SERVED not in stats and PAGE_SIZE_ASKED not in stats:
            return None
        return {
            "asked": stats.get(PAGE_SIZE_ASKED),
            "served": stats.get(PAGE_SIZE_SERVED),
            "remembered": stats.get(PAGE_SIZE_REMEMBERED),
            "refused": int(stats.get(PAGE_SIZE_REFUSED, 0)),
        }
