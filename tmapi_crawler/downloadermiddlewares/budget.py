"""``TMAPI_MAX_CALLS`` and ``TMAPI_MAX_SPEND``: a hard cap on the calls one
run sends (or on what they cost), and a clean stop.

:class:`CallBudget` is the last downloader middleware before the download
handler (which adds the token and counts ``tmapi/calls``), so it sees every
TMAPI request that is about to cost a call, retries included, and admits at
most ``TMAPI_MAX_CALLS`` of them. No request past the budget is sent: each is
refused as the crawl's stop refuses requests (with a job directory, ``-s
JOBDIR=...``, the journal keeps it with every other request not yet sent;
with Redis, it goes back to the shared queue), the engine stops taking
requests, and the spider closes with the finish reason
``tmapi_budget_exhausted`` once the calls already admitted are answered,
their items exported. Running the same command with the same JOBDIR resumes.

``TMAPI_MAX_SPEND`` (``"5 USD"``, with ``TMAPI_COST_PER_CALL`` in the same
currency) is a cap of calls too: as many as the amount pays for. The lower of
the two caps applies; reaching the spend cap ends with
``tmapi_spend_cap_reached``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro

from tmapi_crawler.contract.cost import (
    CallCost,
    calls_within,
    cost_from,
    spend_cap_from,
    spend_problems,
)
from tmapi_crawler.contract.operator_settings import max_calls, problems_of
from tmapi_crawler.contract.outcome import BUDGET_EXHAUSTED, SPEND_CAP_REACHED
from tmapi_crawler.contract.stats import (
    BUDGET_MAX_CALLS,
    BUDGET_MAX_SPEND,
    PAGES_UNSENT,
)
from tmapi_crawler.exceptions import CrawlStopped
from tmapi_crawler.internals import left_downloader_unsent
from tmapi_crawler.meta import NOT_SENT, is_tmapi_request

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)


class CallBudget:
    def __init__(
        self, crawler: Crawler, limit: int, spend: CallCost | None = None
    ) -> None:
        self.crawler = crawler
        self.limit = limit
        self.admitted = 0
        self.closing: Deferred[None] | None = None
        self.spend = spend  # TMAPI_MAX_SPEND, when it is the lower cap
        self.cap = (
            f"TMAPI_MAX_SPEND={spend.format(1)} ({limit} calls)"
            if spend
            else f"TMAPI_MAX_CALLS={limit}"
        )

    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        return problems_of(lambda: max_calls(settings)) + spend_problems(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CallBudget:
        limit = max_calls(crawler.settings)
        spend, cost = spend_cap_from(crawler.settings), cost_from(crawler.settings)
        paid = calls_within(spend, cost) if spend and cost else None
        if paid is not None and (limit is None or paid < limit):
            return cls(crawler, paid, spend)
        if limit is None:
            raise NotConfigured  # no budget: nothing to check
        return cls(crawler, limit)

    def process_request(self, request: Request) -> None:
        if not is_tmapi_request(request):
            return
        if self.admitted < self.limit:
            self.admitted += 1
            return
        self.stop()
        self.turn_back(request)

    def turn_back(self, request: Request) -> None:
        """Refuse *request*: it is not sent (``meta["tmapi_not_sent"]``), and
        whoever keeps unsent requests for the next run keeps it (the job
        journal, the Redis queue), as after any stop of the crawl.

        It leaves the downloader here, unsent: ``request_left_downloader``
        tells whoever keeps it a place in flight (the error contract's call
        gate) to free it, as it would after a call; the ledger counts no call.
        """
        request.meta[NOT_SENT] = True
        left_downloader_unsent(self.crawler, request)
        self.crawler.stats.inc_value(PAGES_UNSENT)
        raise CrawlStopped(f"not sent: {self.cap} reached")

    def stop(self) -> None:
        if self.closing is not None:
            return
        engine = self.crawler.engine
        assert engine is not None
        logger.warning(
            "%s reached: no further call is sent; closing once "
            "the calls in flight are answered",
            self.cap,
        )
        if self.crawler.stats and self.spend:
            self.crawler.stats.set_value(BUDGET_MAX_SPEND, self.spend.format(1))
        elif self.crawler.stats:
            self.crawler.stats.set_value(BUDGET_MAX_CALLS, self.limit)
        engine.pause()  # take no more requests from the scheduler
        reason = SPEND_CAP_REACHED if self.spend else BUDGET_EXHAUSTED
        self.closing = deferred_from_coro(engine.close_spider_async(reason=reason))
