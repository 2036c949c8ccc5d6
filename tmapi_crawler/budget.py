"""``TMAPI_MAX_CALLS``: a hard cap on the calls one run sends, and a clean stop.

:class:`CallBudget` is the last downloader middleware before the download
handler (which adds the token and counts ``tmapi/calls``), so it sees every
TMAPI request that is about to cost a call, retries included, and admits at
most ``TMAPI_MAX_CALLS`` of them. The first request past the budget is never
sent: it goes back to the scheduler (with a job directory, ``-s JOBDIR=...``,
it is saved there with every other request not yet sent), the engine stops
taking requests, and the spider closes with the finish reason
``tmapi_budget_exhausted`` once the calls already admitted are answered,
their items exported. Running the same command with the same JOBDIR resumes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro

from tmapi_crawler.auth import is_tmapi_request
from tmapi_crawler.operator_settings import max_calls

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)
FINISH_REASON = "tmapi_budget_exhausted"
# After every built-in downloader middleware (HttpCache is 900) and the
# project's own: nothing between it and the download handler can drop a request.
ORDER = 990
# Meta keys of a turned-back request that belong to the attempt, not the page.
UNSENT_DROPS = frozenset({"tmapi_unsent", "tmapi_permit"})


class CallBudget:
    def __init__(self, crawler: Crawler, limit: int) -> None:
        self.crawler = crawler
        self.limit = limit
        self.admitted = 0
        self.closing: Deferred[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CallBudget:
        limit = max_calls(crawler.settings)
        if limit is None:
            raise NotConfigured  # no budget: nothing to check
        return cls(crawler, limit)

    def process_request(self, request: Request) -> Request | None:
        if not is_tmapi_request(request):
            return None
        if self.admitted < self.limit:
            self.admitted += 1
            return None
        self.stop()
        return self.turn_back(request)

    def turn_back(self, request: Request) -> Request:
        """*request*, unsent, as a copy to schedule again.

        The copy is marked ``dont_filter`` (the duplicate filter has seen the
        original) and holds no place among the calls in flight. The original
        leaves the downloader here: ``request_left_downloader`` tells whoever
        keeps it a place in flight (the error contract's call gate) to free
        it, as it would after a call; ``meta["tmapi_unsent"]`` says no call
        was made (the per-category tally skips it).
        """
        request.meta["tmapi_unsent"] = True
        self.crawler.signals.send_catch_log(
            signal=signals.request_left_downloader,
            request=request,
            spider=self.crawler.spider,
        )
        meta = {k: v for k, v in request.meta.items() if k not in UNSENT_DROPS}
        return request.replace(dont_filter=True, meta=meta)

    def stop(self) -> None:
        if self.closing is not None:
            return
        engine = self.crawler.engine
        assert engine is not None
        logger.warning(
            "TMAPI_MAX_CALLS=%d reached: no further call is sent; closing once "
            "the calls in flight are answered",
            self.limit,
        )
        if self.crawler.stats:
            self.crawler.stats.set_value("tmapi/budget/max_calls", self.limit)
        engine.pause()  # take no more requests from the scheduler
        self.closing = deferred_from_coro(
            engine.close_spider_async(reason=FINISH_REASON)
        )
