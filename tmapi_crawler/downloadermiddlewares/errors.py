"""The API's error contract, applied to every TMAPI call.

:class:`TMAPIErrorMiddleware` reads each answer once, from the HTTP status and
the JSON body code alike (:func:`tmapi_crawler.contract.api.parse_data`), and acts on
what it means; every call costs the user money, so nothing is retried that
cannot succeed:

* an answer: parsed by its endpoint's contract
  (:mod:`tmapi_crawler.contract.endpoints`) and handed to the spider in
  ``response.meta["tmapi_answer"]`` (and to whoever listens to the
  ``answer_read`` signal);
* 503 (concurrency limit): retried after a backoff, and the number of calls in
  flight shrinks (it tells :class:`~tmapi_crawler.extensions.calls.CallsInFlight`,
  which owns them; a call waits there for its place);
* 417, 499, 500, other 5xx, a body that is not the promised JSON, a timeout or
  a dropped connection: retried with exponential backoff and jitter, up to
  ``TMAPI_MAX_RETRIES`` per reason and ``TMAPI_MAX_RETRIES_PER_PAGE`` in all;
* 422 and other 4xx: the page fails at once, never retried;
* 439 (no balance): every call is held for ``TMAPI_BALANCE_RETRY_DELAY``, then
  one call probes; after ``TMAPI_BALANCE_RETRIES`` probes the crawl stops with
  finish reason ``tmapi_insufficient_balance``;
* 401/403 or a key error code: the crawl stops at once, ``tmapi_bad_token``.

After a stop no further call is sent. Waits (backoff, holds) are asyncio
sleeps before the call, never blocking the reactor; a retry is a copy of the
original request (no token), so it can be scheduled and stored safely.
Every endpoint's calls pass here (a request marked with
:func:`tmapi_crawler.meta.is_tmapi_request`), all alike. Stats:
``tmapi/response/<code>``, ``tmapi/retry/...``, ``tmapi/gave_up/<reason>``,
``tmapi/pages/{failed,unsent,past_end,with_problems}``,
``tmapi/tree/with_problems``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.misc import load_object

from tmapi_crawler.contract import api
from tmapi_crawler.contract.api import ErrorKind
from tmapi_crawler.contract.endpoints import endpoint_of
from tmapi_crawler.contract.operator_settings import (
    count,
    problems_of,
    retry_limits,
    seconds,
)
from tmapi_crawler.contract.outcome import BAD_TOKEN, NO_BALANCE
from tmapi_crawler.contract.stats import (
    EXCEPTION,
    GAVE_UP,
    PAGES_PAST_END,
    PAGES_UNSENT,
    RESPONSE,
    RETRY,
)
from tmapi_crawler.exceptions import CrawlStopped, PageFailed, PastLastPage
from tmapi_crawler.extensions.calls import CallsInFlight
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.meta import (
    ANSWER,
    MAX_RETRIES,
    NOT_BEFORE,
    PROBE,
    RETRIES,
    TMAPI,
    drop_attempt,
    is_tmapi_request,
)
from tmapi_crawler.signals import answer_read

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector


logger = logging.getLogger(__name__)


NETWORK = "network"


def describe(request: Request) -> str:
    """``page N of category C (language, options)`` for log lines."""
    meta = request.meta[TMAPI]
    if "page" not in meta:  # another endpoint (the category tree): its own label
        return str(meta.get("label", request.url))
    query = api.CategoryQuery.model_validate(meta["query"])
    return f"page {meta['page']} of {query.label}"


class BalanceHold:
    """After a 439 no call goes out until the hold ends; then a single probe."""

    def __init__(self, retries: int, delay: float) -> None:
        self.retries, self.delay = retries, delay
        self.until = 0.0  # 0: no hold
        self.probing = False
        self.attempts = 0
        self.released = asyncio.Event()
        self.released.set()

    @property
    def active(self) -> bool:
        return self.until > 0

    def start_or_extend(self, request: Request) -> bool:
        """Account for a 439; False once the retries are spent."""
        if self.active and not request.meta.get(PROBE):
            return True  # sent before the hold began: it just waits its turn
        self.attempts += 1
        if self.attempts > self.retries:
            return False
        self.until, self.probing = time.time() + self.delay, False
        self.released.clear()
        return True

    def lift(self) -> None:
        if self.active:
            self.until, self.probing, self.attempts = 0.0, False, 0
            self.released.set()


class TMAPIErrorMiddleware:
    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        """The settings of the call path (the error contract's and those of
        the calls in flight it reports to), checked before any call."""
        return (
            problems_of(
                lambda: retry_limits(settings, "TMAPI_MAX_RETRIES"),
                *(
                    lambda name=name: count(settings, name)
                    for name in ("TMAPI_MAX_RETRIES_PER_PAGE", "TMAPI_BALANCE_RETRIES")
                ),
            )
            + CallsInFlight.count_problems(settings)
            + problems_of(
                *(
                    lambda name=name: seconds(settings, name)
                    for name in (
                        "TMAPI_BACKOFF_BASE",
                        "TMAPI_BACKOFF_MAX",
                        "TMAPI_BALANCE_RETRY_DELAY",
                    )
                ),
            )
            + CallsInFlight.switch_problems(settings)
        )

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.max_retries = retry_limits(settings, "TMAPI_MAX_RETRIES")
        self.max_retries_per_page = settings.getint("TMAPI_MAX_RETRIES_PER_PAGE")
        self.backoff_base = settings.getfloat("TMAPI_BACKOFF_BASE")
        self.backoff_max = settings.getfloat("TMAPI_BACKOFF_MAX")
        self.network_errors = tuple(
            load_object(path) if isinstance(path, str) else path
            for path in settings.getlist("RETRY_EXCEPTIONS")
        )
        self.balance = BalanceHold(
            settings.getint("TMAPI_BALANCE_RETRIES"),
            settings.getfloat("TMAPI_BALANCE_RETRY_DELAY"),
        )
        # the calls in flight, whose owner is built before the downloader
        self.calls = CallsInFlight.of(crawler)
        self.stopped: str | None = None
        self._stop = asyncio.Event()

    @cached_property
    def ledger(self) -> CrawlLedger:
        """Where each category stands (built after the middlewares)."""
        return CrawlLedger.of(self.crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TMAPIErrorMiddleware:
        return cls(crawler)

    # -- before the call ----------------------------------------------------

    async def process_request(self, request: Request) -> None:
        if not is_tmapi_request(request):
            return
        self._refuse_if_stopped_or_past_end(request)
        await self._sleep(request.meta.get(NOT_BEFORE, 0) - time.time())
        while self.balance.active and not self.stopped:
            if not self.balance.probing and time.time() >= self.balance.until:
                self.balance.probing = True
                request.meta[PROBE] = True
                break
            if self.balance.probing:
                await self._wait(self.balance.released)
            else:
                await self._sleep(self.balance.until - time.time())
        self._refuse_if_stopped_or_past_end(request)
        try:
            await self.calls.acquire(request)
        except CrawlStopped:
            self.stats.inc_value(PAGES_UNSENT)
            raise
        try:  # it may have waited at the gate while the category's end was learnt
            self._refuse_if_stopped_or_past_end(request)
        except IgnoreRequest:
            self.calls.settle(request)
            raise

    def _refuse_if_stopped_or_past_end(self, request: Request) -> None:
        if self.stopped:
            self.stats.inc_value(PAGES_UNSENT)
            raise CrawlStopped(f"{describe(request)} not sent: crawl stopped")
        if self.ledger.past_end(request):
            self.stats.inc_value(PAGES_PAST_END)
            raise PastLastPage(f"{describe(request)} lies past the last page")

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)

    async def _wait(self, event: asyncio.Event) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        released = asyncio.ensure_future(event.wait())
        await asyncio.wait((stop, released), return_when=asyncio.FIRST_COMPLETED)
        for task in (stop, released):
            task.cancel()

    # -- after the call ---------------------------------------------------------

    def process_response(self, request: Request, response: Response) -> Any:
        if not is_tmapi_request(request):
            return response
        try:
            return self._read_answer(request, response)
        finally:
            self.calls.settle(request)

    def _read_answer(self, request: Request, response: Response) -> Any:
        endpoint = endpoint_of(request.url)
        try:
            data = api.parse_data(
                response.body, response.status, null_data=endpoint.null_data
            )
        except api.ApiError as error:
            self.stats.inc_value(f"{RESPONSE}{error.reason}")
            return self._on_error(request, error)
        self.stats.inc_value(f"{RESPONSE}200")
        self.calls.learn(request, throttled=False)
        self.balance.lift()
        answer = endpoint.parse(data, request.meta[TMAPI])
        if answer.problems:  # one line per answer, however many problems
            self.stats.inc_value(endpoint.problems_stat)
            logger.warning("%s: %s", describe(request), "; ".join(answer.problems))
        request.meta[ANSWER] = answer
        self.crawler.signals.send_catch_log(
            answer_read, request=request, endpoint=endpoint, answer=answer
        )
        return response

    def process_exception(self, request: Request, exception: Exception) -> Any:
        if not is_tmapi_request(request):
            return None
        self.calls.settle(request)
        if isinstance(exception, IgnoreRequest):
            return None
        name = type(exception).__name__
        self.stats.inc_value(f"{EXCEPTION}{name}")
        if not isinstance(exception, self.network_errors):
            return None
        return self._retry_or_fail(request, NETWORK, NETWORK, f"{name}: {exception}")

    def _on_error(self, request: Request, error: api.ApiError) -> Any:
        kind = error.kind
        if kind is ErrorKind.CONCURRENCY_LIMIT:
            self.calls.learn(request, throttled=True)
        if kind is ErrorKind.BAD_TOKEN:
            self.stop(
                BAD_TOKEN,
                f"TMAPI rejected the token ({error}). Check TMAPI_TOKEN and "
                "TMAPI_TOKEN_PLACEMENT.",
            )
            raise CrawlStopped(f"{describe(request)}: {error}")
        if kind is ErrorKind.INSUFFICIENT_BALANCE:
            return self._on_no_balance(request, error)
        if kind is ErrorKind.BAD_PARAMETER or request.meta.get("dont_retry"):
            self.stats.inc_value(f"{GAVE_UP}{error.reason}")
            params = urlsplit(request.url).query
            raise PageFailed(
                f"{error}; parameters: {params}; not retried", code=error.code
            )
        return self._retry_or_fail(request, error.reason, kind.value, str(error))

    def _on_no_balance(self, request: Request, error: api.ApiError) -> Any:
        if not self.balance.start_or_extend(request):
            spent = self.balance.retries
            self.stop(
                NO_BALANCE,
                f"TMAPI says the subscription expired or the balance is "
                f"insufficient ({error}), still after {spent} retries "
                f"{self.balance.delay:g} s apart. Top up the account, then run the "
                "same command again (with -s JOBDIR=... it resumes where it stopped).",
            )
            raise CrawlStopped(f"{describe(request)}: {error}")
        if request.meta.get(PROBE) or self.balance.attempts == 1:
            logger.warning(
                "TMAPI answered 439 (subscription expired or insufficient balance) "
                "for %s: holding every call for %g s, then trying once more "
                "(retry %d of %d). Top up the account to let the crawl go on.",
                describe(request),
                self.balance.delay,
                self.balance.attempts,
                self.balance.retries,
            )
        return self._retry_request(request, error.reason)

    def _retry_or_fail(self, request: Request, reason: str, kind: str, why: str) -> Any:
        counts: dict[str, int] = request.meta.get(RETRIES, {})
        limits = {**self.max_retries, **request.meta.get(MAX_RETRIES, {})}
        limit = limits.get(reason, limits.get(kind, 0))
        allowed = (
            counts.get(reason, 0) < limit
            and sum(counts.values()) < self.max_retries_per_page
        )
        if not allowed:
            self.stats.inc_value(f"{GAVE_UP}{reason}")
            attempts = sum(counts.values()) + 1
            raise PageFailed(f"gave up after {attempts} attempts: {why}")
        retry = self._retry_request(request, reason)
        logger.info(
            "Retrying %s in %.1f s (%s, retry %d of %d): %s",
            describe(request),
            retry.meta[NOT_BEFORE] - time.time(),
            reason,
            retry.meta[RETRIES][reason],
            limit,
            why,
        )
        return retry

    def _retry_request(self, request: Request, reason: str) -> Request:
        """A copy of *request* to send again after a backoff (Scrapy's helper:
        stats ``tmapi/retry/count`` and ``tmapi/retry/reason_count/<reason>``)."""
        counts = dict(request.meta.get(RETRIES, {}))
        counts[reason] = counts.get(reason, 0) + 1
        spent = request.meta.get("retry_times", 0)
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,  # type: ignore[arg-type]
            reason=reason,
            max_retry_times=spent + 1,
            stats_base_key=RETRY,
            logger=logger,
        )
        assert retry is not None
        drop_attempt(retry.meta)
        retry.meta[RETRIES] = counts
        retry.meta[NOT_BEFORE] = time.time() + self.backoff(counts[reason])
        return retry

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    # -- stopping ---------------------------------------------------------------

    def stop(self, reason: str, message: str) -> None:
        """Stop the crawl now: no further call, in-flight answers still processed."""
        if self.stopped:
            return
        self.stopped = reason
        self._stop.set()
        self.balance.released.set()
        self.calls.abort(CrawlStopped(f"not sent: crawl stopped ({reason})"))
        logger.error(
            "%s Stopping the crawl (%s): no further call is made.", message, reason
        )
        engine = self.crawler.engine
        assert engine is not None
        deferred_from_coro(engine.close_spider_async(reason=reason))
