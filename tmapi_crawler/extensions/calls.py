"""Calls in flight, owned whole: the gate, the window, the downloader slot and
the learned limit.

:class:`CallsInFlight` is the one owner of how many TMAPI calls may be in
flight, as Scrapy's throttling state has one owner that its middlewares only
report to. The error contract
(:class:`~tmapi_crawler.downloadermiddlewares.errors.TMAPIErrorMiddleware`)
asks it for a place before a call (:meth:`CallsInFlight.acquire`), tells it
what an answer said of the account's limit (:meth:`~CallsInFlight.learn`)
and when the answer is read (:meth:`~CallsInFlight.settle`); nothing else
touches its state. It holds:

* the adaptive window (:class:`~tmapi_crawler.contract.concurrency.ConcurrencyWindow`,
  or with ``REDIS_URL`` and ``TMAPI_SHARED_WINDOW`` one per account shared
  in Redis: :class:`~tmapi_crawler.distributed.window.SharedWindow`) and the
  call gate in front of it;
* the downloader slot every call goes through (``tmapi``), opened wide
  enough that the gate, not the slot, keeps calls to the window;
* the learned limit: read when the crawler is built (the window starts
  there, proven), kept when the spider closes, where the run's backends say
  (:func:`tmapi_crawler.contract.limits.default_path`, or the Redis hash
  ``tmapi:limits`` shared by every worker); keyed by a digest of the token.

Stats: ``tmapi/concurrency/{current,min,max,probes}``,
``tmapi/concurrency/remembered`` and ``tmapi/concurrency/learned``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy import signals

from tmapi_crawler.backends import RunBackends, redis_client
from tmapi_crawler.contract import limits
from tmapi_crawler.contract.concurrency import CallGate, ConcurrencyWindow
from tmapi_crawler.contract.credentials import token_from, token_key
from tmapi_crawler.contract.operator_settings import (
    count,
    problems_of,
    seconds,
    switch,
)
from tmapi_crawler.contract.stats import (
    CONCURRENCY_CURRENT,
    CONCURRENCY_LEARNED,
    CONCURRENCY_MAX,
    CONCURRENCY_MIN,
    CONCURRENCY_PROBES,
    CONCURRENCY_REMEMBERED,
)
from tmapi_crawler.extensions import enabled
from tmapi_crawler.internals import open_download_slot
from tmapi_crawler.meta import PERMIT, SENT

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

SLOT = "tmapi"  # one downloader slot for every API call, whatever the host

# Requests a process holds per call that may fly: the extra ones wait at the
# call gate, so a call's successor goes out the moment the call ends, not once
# Scrapy has exported the call's items (bench/, benchmarks 1 and 5).
REQUESTS_PER_CALL = 2


def call_ceiling(settings: BaseSettings) -> int:
    """The most calls in flight: TMAPI_MAX_CONCURRENCY, or CONCURRENT_REQUESTS."""
    return settings.getint("TMAPI_MAX_CONCURRENCY") or settings.getint(
        "CONCURRENT_REQUESTS"
    )


def requests_held(settings: BaseSettings) -> int:
    """How many requests one process holds at once (the Redis scheduler
    leases as many)."""
    return REQUESTS_PER_CALL * call_ceiling(settings)


class LimitMemory:
    """Where the learned limit (and the page size served: *field*
    ``page_size``) is kept between runs, and keeping it."""

    REDIS_KEYS: ClassVar[dict[str, str]] = {
        "limit": limits.REDIS_KEY,
        "page_size": limits.REDIS_PAGE_SIZE_KEY,
    }

    def __init__(
        self, settings: BaseSettings, backends: RunBackends, token: str
    ) -> None:
        self.key = token_key(token)
        self.redis = redis_client(settings) if backends.distributed else None
        self.path = backends.limits_path()

    def where_of(self, field: str) -> str:
        if self.redis is not None:
            return f"Redis hash {self.REDIS_KEYS[field]}, field {self.key}"
        return f"{self.path}, entry {self.key}"

    @property
    def where(self) -> str:
        return self.where_of("limit")

    def read(self, field: str = "limit") -> int | None:
        try:
            if self.redis is not None:
                stored = self.redis.hget(self.REDIS_KEYS[field], self.key)
                return limits.parse_limit(stored)
            return limits.read_limit(self.path, self.key, field)
        except Exception as exc:  # no memory is no reason not to crawl
            logger.warning(
                "Could not read the learned %s (%s): %s",
                field,
                self.where_of(field),
                exc,
            )
            return None

    def keep(self, value: int, field: str = "limit") -> bool:
        try:
            if self.redis is not None:
                self.redis.hset(self.REDIS_KEYS[field], self.key, str(value))
            else:
                limits.write_limit(self.path, self.key, value, field=field)
        except Exception as exc:
            logger.warning(
                "Could not keep the learned %s (%s): %s",
                field,
                self.where_of(field),
                exc,
            )
            return False
        return True


class CallsInFlight:
    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        """The settings of calls in flight, checked before any call."""
        return CallsInFlight.count_problems(settings) + CallsInFlight.switch_problems(
            settings
        )

    @staticmethod
    def count_problems(settings: BaseSettings) -> list[str]:
        return problems_of(
            lambda: count(settings, "TMAPI_MAX_CONCURRENCY"),
            *(
                lambda name=name: count(settings, name, minimum=1)
                for name in ("TMAPI_CONCURRENCY_START", "TMAPI_CONCURRENCY_PROBE_AFTER")
            ),
        )

    @staticmethod
    def switch_problems(settings: BaseSettings) -> list[str]:
        return problems_of(
            lambda: switch(settings, "TMAPI_ADAPTIVE_CONCURRENCY"),
            lambda: switch(settings, "TMAPI_SHARED_WINDOW"),
            lambda: seconds(settings, "TMAPI_WINDOW_LEASE_SECONDS"),
            lambda: switch(settings, "TMAPI_REMEMBER_LIMIT"),
        )

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.ceiling = ceiling = call_ceiling(settings)  # this process's calls
        self.adaptive = switch(settings, "TMAPI_ADAPTIVE_CONCURRENCY")
        token = token_from(settings)
        remember = self.adaptive and token and switch(settings, "TMAPI_REMEMBER_LIMIT")
        backends = RunBackends.of(crawler)
        self.memory = (
            LimitMemory(settings, backends, token) if remember and token else None
        )
        self.remembered = self.memory.read() if self.memory else None
        self.learned: int | None = None  # the level proven when it last changed
        window = dict(
            ceiling=ceiling,
            start=settings.getint("TMAPI_CONCURRENCY_START"),
            probe_after=settings.getint("TMAPI_CONCURRENCY_PROBE_AFTER"),
            # without adapting, every level up to the ceiling counts as proven
            remembered=self.remembered if self.adaptive else ceiling,
        )
        shared = backends.distributed and switch(settings, "TMAPI_SHARED_WINDOW")
        self.window: ConcurrencyWindow
        if self.adaptive and token and shared:
            # the limit is the account's: one window for every worker on it
            # (in Redis: imported by a distributed crawl alone, see backends)
            from tmapi_crawler.distributed.window import SharedWindow

            self.window = SharedWindow(
                redis_client(settings),
                token_key(token),
                lease=settings.getfloat("TMAPI_WINDOW_LEASE_SECONDS"),
                **window,  # type: ignore[arg-type]
            )
            self.gate = CallGate(self.window, poll=SharedWindow.poll)
        else:
            self.window = ConcurrencyWindow(**window)  # type: ignore[arg-type]
            self.gate = CallGate(self.window)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CallsInFlight:
        calls = cls(crawler)
        connect = crawler.signals.connect
        connect(calls.request_left_downloader, signal=signals.request_left_downloader)
        connect(calls.spider_closed, signal=signals.spider_closed)
        return calls

    @classmethod
    def of(cls, crawler: Crawler) -> CallsInFlight:
        return enabled(crawler, cls)

    @property
    def where(self) -> str | None:
        """Where the learned limit is kept (None: it is not)."""
        return self.memory.where if self.memory else None

    # --- a call ------------------------------------------------------------------

    async def acquire(self, request: Request) -> None:
        """A place for *request* among the calls in flight, waited for (raises
        what :meth:`abort` was given once the crawl stops)."""
        request.meta.setdefault("download_slot", SLOT)
        self.open_slot()
        request.meta[PERMIT] = await self.gate.acquire()
        self.stats.set_value(CONCURRENCY_PROBES, self.window.probes)

    def request_left_downloader(self, request: Request) -> None:
        """The call is over (answer, error or cancel): its place in the gate
        is free soon (unless reading the answer freed it first). Its level
        stays taken in the window until the answer is read (:meth:`settle`),
        so no second call goes out at a level the answer may yet refute; but
        it no longer counts as in flight for what other calls prove."""
        call = request.meta.get(PERMIT)
        if call is None:
            return
        self.window.arrived(call, time.monotonic())
        asyncio.get_running_loop().call_soon(self._release, request)

    def _release(self, request: Request) -> None:
        call = request.meta.get(PERMIT)
        if call is not None and not call.released:
            call.released = True
            self.gate.release()

    def settle(self, request: Request) -> None:
        """The answer is read (or there is none): the window has learnt what
        it says; the call's level and place are free."""
        call = request.meta.get(PERMIT)
        if call is not None:
            self.window.settle(call)
            self._release(request)
            self.gate.wake()

    def learn(self, request: Request, *, throttled: bool) -> None:
        """What an answer says of the account's limit: a success, or a 503."""
        call = request.meta.get(PERMIT)
        if not self.adaptive or call is None:
            return
        sent_at, in_flight = request.meta.get(SENT, (None, call.level))
        if throttled:
            self.window.on_throttle(call, time.monotonic(), in_flight)
        else:
            self.window.on_success(call, time.monotonic(), sent_at)
        self.learned = self.window.proven
        self.open_slot()

    def abort(self, error: Exception) -> None:
        """No further call: every request waiting at the gate raises *error*."""
        self.gate.abort(error)

    # --- the slot ------------------------------------------------------------------

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    def open_slot(self) -> None:
        """Let as many calls out as the window allows (the gate, not the slot,
        holds them back: the slot only must not get in the way)."""
        # Scrapy hands the engine's next request to the downloader only once it
        # has finished with an answer (parsed it, exported its items); with as
        # many requests in the downloader as calls may fly, a call's successor
        # waited for that (bench/, benchmark 1: 0.78 -> 0.93 of ideal).
        open_download_slot(
            self.crawler, SLOT, self.ceiling, REQUESTS_PER_CALL * self.ceiling
        )
        self.gate.wake()
        self.stats.set_value(CONCURRENCY_CURRENT, self.window.size)
        self.stats.min_value(CONCURRENCY_MIN, self.window.size)
        self.stats.max_value(CONCURRENCY_MAX, self.window.size)

    # --- the close -----------------------------------------------------------------

    def spider_closed(self) -> None:
        """The learned limit kept for the next run with the same token."""
        if self.memory is None:
            return
        if self.remembered is not None:
            self.stats.set_value(CONCURRENCY_REMEMBERED, self.remembered)
        if self.learned is None:  # no call held: nothing learnt
            return
        self.stats.set_value(CONCURRENCY_LEARNED, self.learned)
        if self.memory.keep(self.learned):
            logger.info(
                "Calls in flight: started at %s, ended at %d (kept in %s)",
                self.remembered or "the default start",
                self.learned,
                self.memory.where,
            )
