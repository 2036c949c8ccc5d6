"""Many workers, one crawl: the Redis scheduler.

With ``REDIS_URL`` set (setting or environment), the add-on
(:func:`tmapi_crawler.addon.use_redis`) swaps in :class:`RedisScheduler`:
every worker running the same spider (and ``TMAPI_CRAWL_ID``) shares one
request queue and one seen-set in Redis (:class:`.queue.LeasedQueue`, a
scrapy-redis queue whose pops are leases), so each page is fetched by one
worker. A request is queued unless its fingerprint (Scrapy's
``REQUEST_FINGERPRINTER``) is in the seen-set, in one atomic step with the
push: no separate dupefilter (``DUPEFILTER_CLASS``) is used.

The scheduler never blocks the reactor: a short loop (``TMAPI_POLL_INTERVAL``)
pulls shared requests while the worker has free slots, renews this worker's
leases, re-queues leases of dead workers, pops jobs for spiders that take them,
rides out Redis outages (logged, retried with backoff), and ends the worker once
the shared queue has stayed empty, with nothing in flight anywhere, for
``TMAPI_IDLE_CLOSE`` seconds (never with ``TMAPI_DAEMON``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from functools import cached_property
from typing import TYPE_CHECKING

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.task import LoopingCall

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract.stats import (
    DUPEFILTER_FILTERED,
    REDIS_LEASES_RECOVERED,
    REDIS_OUTAGES,
    SCHEDULER_DEQUEUED_REDIS,
    SCHEDULER_ENQUEUED_REDIS,
)
from tmapi_crawler.distributed.connection import (
    connect_from,
    redis_problems,
    safe_url,
)
from tmapi_crawler.distributed.queue import CrawlKeys, LeasedQueue
from tmapi_crawler.extensions.calls import requests_held
from tmapi_crawler.internals import (
    feed_slots,
    flush_feed_files,
    requests_in_progress,
)
from tmapi_crawler.meta import NOT_SENT
from tmapi_crawler.store.extension import CatalogStore

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)


REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


MAX_BACKOFF = 10.0
# how long a page waits for the store's batch before it is written early (s)
STORE_WAIT = 1.0


class RedisScheduler:
    """Scrapy scheduler over the shared, leased Redis queue."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.url = safe_url(RunBackends.of(crawler).redis or "")
        self.keys = CrawlKeys.for_crawler(crawler)
        self.server = connect_from(settings)
        self.lease_seconds = settings.getfloat("TMAPI_LEASE_SECONDS")
        self.poll_interval = settings.getfloat("TMAPI_POLL_INTERVAL")
        self.idle_close = settings.getfloat("TMAPI_IDLE_CLOSE")
        self.daemon = settings.getbool("TMAPI_DAEMON")
        # Leases this worker holds: as many requests as one process keeps in
        # its downloader (tmapi_crawler/extensions/calls.py; benchmark 5).
        self.slots = requests_held(settings)
        self.debug_duplicates = settings.getbool("DUPEFILTER_DEBUG")
        self.logged_duplicate = False
        self.queue: LeasedQueue | None = None  # its held: every lease of this worker
        self.spider: Spider | None = None
        self.handed_out: set[Request] = set()  # given to the engine
        self.buffer: deque[Request] = deque()  # pulled by the loop, not handed out
        self.arriving: set[int] = set()  # id() of requests the loop passes to crawl()
        self.unpushed: deque[Request] = deque()  # scheduled while Redis was away
        # done with, not yet acknowledged / given back (Redis failed meanwhile)
        self.unacked: list[Request] = []
        self.unsent: list[Request] = []
        # done with, their items not yet committed by the catalog store: (the
        # store's count of observations received then, since when, request)
        self.awaiting_store: deque[tuple[int, float, Request]] = deque()
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.backoff = 0.5
        self.idle_since = time.monotonic()
        self.next_upkeep = 0.0
        self.closing = False
        self.loop = LoopingCall(self._tick)

    preflight = staticmethod(redis_problems)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedisScheduler:
        return cls(crawler)

    # --- Scrapy's scheduler interface ------------------------------------------

    def open(self, spider: Spider) -> None:
        if requests_in_progress(self.crawler) is None:
            raise RuntimeError(
                "RedisScheduler needs the engine's set of requests in progress "
                "(Scrapy 2.19); without it no page could be acknowledged safely"
            )
        self.spider = spider
        # scrapy-redis fills in %(spider)s: a % of the crawl id stays itself
        key = self.keys.prefix.replace("%", "%%")
        self.queue = LeasedQueue(self.server, spider, key)
        self.crawler.signals.connect(self._spider_idle, signal=signals.spider_idle)
        try:
            state = self.queue.state()
            logger.info(
                "Distributed crawl %r on %s: %d requests queued, %d in progress",
                self.keys.prefix,
                self.url,
                state.queued,
                state.leased,
            )
        except REDIS_DOWN as exc:
            self._went_down(exc)
        self.loop.start(self.poll_interval, now=False)

    def close(self, reason: str) -> None:
        if self.loop.running:
            self.loop.stop()
        assert self.queue is not None
        try:
            # the store writes the rest as the spider closes, or keeps it in a
            # file the run names (exit code 5): nothing for another worker
            self._settle(closing=True)
            self._push_unpushed()
            left = list(self.queue.held)
            if left:
                self.queue.release(left)
                logger.info("Gave %d unprocessed requests back to Redis", len(left))
        except REDIS_DOWN:
            logger.error(
                "Redis at %s is unavailable: %d requests could not be handed back; "
                "other workers take them over when their leases expire (%.0f s)",
                self.url,
                len(self.queue.held) + len(self.unpushed),
                self.lease_seconds,
            )

    def has_pending_requests(self) -> bool:
        return bool(self.buffer or self.unpushed)

    def enqueue_request(self, request: Request) -> bool:
        if id(request) in self.arriving:  # pulled by the loop, already leased
            return True
        if self.down_since is not None:
            self.unpushed.append(request)
            return True
        try:
            return self._push(request)
        except REDIS_DOWN as exc:
            self._went_down(exc)
            self.unpushed.append(request)
            return True

    def next_request(self) -> Request | None:
        if self.buffer:
            return self._hand_out(self.buffer.popleft())
        if self.down_since is not None or self.closing:
            return None
        try:
            self._settle()
            request = self._pop() if self._free_slots() > 0 else None
        except REDIS_DOWN as exc:
            self._went_down(exc)
            return None
        return self._hand_out(request) if request else None

    # --- requests in and out -------------------------------------------------

    def _push(self, request: Request) -> bool:
        """Queue the request unless it was seen before (one atomic step: a
        retry after a lost connection neither loses nor doubles it)."""
        assert self.queue is not None
        fingerprint = None
        if not request.dont_filter:
            fingerprint = self.crawler.request_fingerprinter.fingerprint(request).hex()
        if not self.queue.push(request, fingerprint):
            self._filtered(request)
            return False
        if self.stats:
            self.stats.inc_value(SCHEDULER_ENQUEUED_REDIS)
        return True

    def _push_unpushed(self) -> None:
        while self.unpushed:
            self._push(self.unpushed[0])
            self.unpushed.popleft()

    def _filtered(self, request: Request) -> None:
        """A duplicate, logged and counted as Scrapy's dupefilter does."""
        if self.debug_duplicates or not self.logged_duplicate:
            logger.debug(
                "Filtered duplicate request: %(request)s", {"request": request}
            )
            self.logged_duplicate = True
        if self.stats:
            self.stats.inc_value(DUPEFILTER_FILTERED)

    def _free_slots(self) -> int:
        assert self.queue is not None
        return self.slots - len(self.queue.held)

    def _pop(self) -> Request | None:
        assert self.queue is not None
        request = self.queue.pop()
        if request is not None and self.stats:
            self.stats.inc_value(SCHEDULER_DEQUEUED_REDIS)
        return request

    def _hand_out(self, request: Request) -> Request:
        self.handed_out.add(request)
        return request

    def _settle(self, closing: bool = False) -> None:
        """Acknowledge requests the engine is done with, once their items are
        written: the engine holds a request until its answer's items went
        through the pipelines and feeds, or until it failed for good; with a
        catalog store, once the store committed them too (a worker killed
        before loses none: another redoes the page). A request not sent
        because the crawl stopped goes back to the queue instead."""
        in_engine = self._in_engine()
        store = self.store
        now = time.monotonic()
        for request in [r for r in self.handed_out if r not in in_engine]:
            self.handed_out.discard(request)
            if request.meta.get(NOT_SENT):
                self.unsent.append(request)
            elif store is None:
                self.unacked.append(request)
            else:
                self.awaiting_store.append((store.received, now, request))
        if store is not None:
            self._stored(store, now, closing)
        assert self.queue is not None
        if self.unacked:
            self._flush_feeds()
            self.queue.ack(self.unacked)
            self.unacked = []
        if self.unsent:
            self.queue.release(self.unsent)
            self.unsent = []

    @cached_property
    def store(self) -> CatalogStore | None:
        """The catalog store, if the crawl has one (built before the
        scheduler, as every extension is)."""
        return CatalogStore.of(self.crawler)

    def _stored(self, store: CatalogStore, now: float, closing: bool) -> None:
        """The requests whose items the store committed, to acknowledge; a
        batch waited on too long is handed to the store early. While the
        store is away (its observations kept in memory, or in a file at the
        close), and at the close, nothing waits on it."""
        waiting = self.awaiting_store
        ready = closing or store.down_since is not None
        while waiting and (ready or waiting[0][0] <= store.committed):
            self.unacked.append(waiting.popleft()[2])
        if waiting and now - waiting[0][1] >= STORE_WAIT:
            store.flush()

    def _in_engine(self) -> set[Request]:
        # Scrapy has no signal for "request fully processed" (items included)
        return requests_in_progress(self.crawler) or set()

    def _flush_feeds(self) -> None:
        """Items reach the feed file before their page is acknowledged."""
        flush_feed_files(feed_slots(self.crawler))

    # --- the loop ------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        if self.down_since is not None and not self._reconnect(now):
            return
        try:
            self._settle()
            if now >= self.next_upkeep:
                self._upkeep()
                self.next_upkeep = now + max(self.lease_seconds / 4, 0.5)
            self._pull()
            self._maybe_close(now)
        except REDIS_DOWN as exc:
            self._went_down(exc)
        except Exception:  # a bug must not stop the loop that ends the worker
            logger.exception("Error in the distributed scheduler's loop")

    def _upkeep(self) -> None:
        assert self.queue is not None
        self.queue.renew()
        recovered = self.queue.requeue_expired()
        if recovered:
            logger.warning(
                "Re-queued %d requests whose worker stopped renewing its lease",
                recovered,
            )
            if self.stats:
                self.stats.inc_value(REDIS_LEASES_RECOVERED, recovered)

    def _pull(self) -> None:
        """Fill free slots from the shared queue, or else from the jobs list."""
        assert self.queue is not None
        engine = self.crawler.engine
        free = self._free_slots()
        if free <= 0 or self.closing or engine is None or engine.needs_backout():
            return
        queued = len(self.queue)
        for _ in range(min(free, queued)):
            request = self._pop()
            if request is None:  # taken by another worker meanwhile
                break
            self.buffer.append(request)
            self.arriving.add(id(request))
            try:
                engine.crawl(request)  # wakes the engine; stays in the buffer
            finally:
                self.arriving.discard(id(request))
        if not queued and hasattr(self.spider, "requests_from_job"):
            job = self.server.lpop(self.keys.jobs)
            if job is not None:
                for request in self.spider.requests_from_job(job):  # type: ignore[union-attr]
                    engine.crawl(request)

    def _maybe_close(self, now: float) -> None:
        engine = self.crawler.engine
        assert self.queue is not None
        busy = (
            self.queue.held
            or self.unpushed
            or engine is None
            or not engine.spider_is_idle()
            or not self.queue.state().empty
        )
        if busy:
            self.idle_since = now
            return
        if now - self.idle_since < self.idle_close:
            return
        finished = self.queue.clear(only_if_finished=True)
        self.idle_since = now
        if finished:
            logger.info("Crawl %r is complete", self.keys.prefix)
        if self.daemon or not finished:
            return
        self.closing = True
        self.loop.stop()
        deferred_from_coro(engine.close_spider_async(reason="finished"))

    def _spider_idle(self) -> None:
        """Scrapy's idle check sees one worker; the loop decides for the crawl."""
        if not self.closing:
            raise DontCloseSpider

    # --- Redis outages -------------------------------------------------------

    def _went_down(self, exc: Exception) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.backoff = 0.5
            logger.error(
                "Redis at %s is unavailable (%s): requests in flight go on, new "
                "ones wait; reconnecting with backoff",
                self.url,
                exc,
            )
            if self.stats:
                self.stats.inc_value(REDIS_OUTAGES)
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    def _reconnect(self, now: float) -> bool:
        if now < self.retry_at:
            return False
        try:
            self.server.ping()
            assert self.queue is not None
            self.queue.renew()
            orphans = self.queue.release_orphans()
            if orphans:  # taken by a pop whose answer the outage swallowed
                logger.info("Gave back %d requests whose pop lost its answer", orphans)
            self._push_unpushed()
        except REDIS_DOWN as exc:
            logger.warning("Redis at %s still unavailable: %s", self.url, exc)
            self._went_down(exc)
            return False
        assert self.down_since is not None
        logger.info("Redis at %s is back after %.1f s", self.url, now - self.down_since)
        self.down_since = None
        return True
