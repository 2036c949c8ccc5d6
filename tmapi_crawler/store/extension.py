"""The catalog store during a crawl: every item delivered, in batches.

:class:`CatalogStore` is the one owner of the store's state in a crawl: its
connection, the run, the observations not written yet, the changes counted.
It takes each item as the feeds do (``item_scraped``, after every item
pipeline: valid, not a duplicate), and hands them ``TMAPI_STORE_BATCH`` at
a time to a thread of its own, which writes each batch in one transaction
while the crawl goes on. When the spider closes it hands the rest to the
close (:mod:`.closing`): the last observations, its share of each category
query, and, by the run's last process to close, what is gone.

The store is a sink of the job like each feed. With ``JOBDIR`` every
observation goes to the job's log (:mod:`.wal`) before any feed writes its
item, and the journal records what the store has committed: a resumed run
writes the rest again, and the store takes each once a run. With
``REDIS_URL`` a page is acknowledged only once the store has committed its
items (:attr:`CatalogStore.committed` has reached what it had
:attr:`~CatalogStore.received` then): a killed worker's pages are redone by
another. The changes feed is the run's changes read back from the
store by the process that judges the run, once.

An unreachable store does not stop the crawl: the items still go to the
feeds, the observations wait in memory and are written once it answers
again (tried at most every ``RETRY_SECONDS``). At the close the store is
tried for ``TMAPI_STORE_CLOSE_TIMEOUT`` seconds; what it still has not taken
goes to a file that ``tmapi-store load`` writes (:mod:`.closing`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract.credentials import store_uri
from tmapi_crawler.contract.details import DetailItem
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.contract.outcome import FINISHED
from tmapi_crawler.contract.stats import (
    STORE_CHANGES,
    STORE_ERRORS,
    STORE_OBSERVATIONS,
    STORE_REPLAYED,
)
from tmapi_crawler.itemsignal import connect_item_scraped
from tmapi_crawler.resume.extension import ResumeJournal
from tmapi_crawler.store.changes import (
    ALL_KINDS,
    KINDS,
    Row,
    observation,
    summary_line,
)
from tmapi_crawler.store.closing import Closing, shares
from tmapi_crawler.store.db import open_store, store_errors, store_problems
from tmapi_crawler.store.variants import variant_rows
from tmapi_crawler.store.wal import RESET_BYTES, ObservationLog

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

    from tmapi_crawler.store.db import Store

logger = logging.getLogger(__name__)
RETRY_SECONDS = 5.0
SINK = "store"  # the store's name in the job journal


class CatalogStore:
    def __init__(self, crawler: Crawler, uri: str) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.uri = uri
        self.batch = settings.getint("TMAPI_STORE_BATCH")
        self.close_timeout = settings.getfloat("TMAPI_STORE_CLOSE_TIMEOUT")
        self.rescue_dir = Path(settings.get("TMAPI_FEED_RESCUE_DIR"))
        self.backends = RunBackends.of(crawler)
        self.errors = store_errors(uri)
        self.store: Store | None = None
        self.run_id: str | None = None
        self.rows: list[Row] = []
        self.counts = dict.fromkeys(ALL_KINDS, 0)
        self.retry_at = 0.0
        self.down_since: float | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="tmapi-store")
        self.writing: Future[dict[str, int]] | None = None  # the batch in the thread
        self.writing_rows: list[Row] = []
        # observations handed to the store and, of them, committed (in order:
        # the Redis scheduler acknowledges a page once its items are)
        self.received = 0
        self.committed = 0
        # with JOBDIR: the job's log of observations, and its offset when the
        # batch in the thread was cut (committed with it)
        self.journal: ResumeJournal | None = None
        self.log: ObservationLog | None = None
        self.cut_at = 0
        self.committed_at = 0  # what the journal says the store holds of it
        # this process in the run (several: workers, or runs of a job)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.feed_uri = settings.get("TMAPI_CHANGES_FEED")
        # the close: who waits for it (the run report), and whether this
        # process judged the run (the last of it to close, the run over)
        self.waiting: list[Deferred[None]] = []
        self.closed_run = False
        self.judged = False
        crawler.signals.connect(self.spider_opened, signals.spider_opened)
        # before the feeds: the job's log holds whatever a feed holds
        connect_item_scraped(crawler, self.item_scraped, before_feeds=True)
        crawler.signals.connect(self.spider_closed, signals.spider_closed)

    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        uri = store_uri(settings)
        if not uri:
            if settings.get("TMAPI_CHANGES_FEED"):
                return [
                    "TMAPI_CHANGES_FEED needs TMAPI_STORE: changes are what the "
                    "store held against what the crawl saw"
                ]
            return []
        problems = store_problems(uri)
        if not problems:  # the combinations the run's backends refuse
            problems += RunBackends.preflight(settings)
        batch = settings.get("TMAPI_STORE_BATCH")
        try:
            ok = int(batch) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(
                f"TMAPI_STORE_BATCH={batch!r}: expected a whole number of items above 0"
            )
        timeout = settings.get("TMAPI_STORE_CLOSE_TIMEOUT", 0)
        try:
            ok = float(timeout) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(
                f"TMAPI_STORE_CLOSE_TIMEOUT={timeout!r}: expected a number of "
                "seconds, 0 or more"
            )
        return problems

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CatalogStore:
        uri = store_uri(crawler.settings)
        if not uri:
            raise NotConfigured
        return cls(crawler, uri)

    @classmethod
    def of(cls, crawler: Crawler) -> CatalogStore | None:
        return crawler.get_extension(cls)

    def when_closed(self) -> Deferred[None]:
        """Fired once the store's close is over (the run written, judged by
        this process or not: :attr:`judged`)."""
        waiter: Deferred[None] = Deferred()
        if self.closed_run:
            waiter.callback(None)
        else:
            self.waiting.append(waiter)
        return waiter

    # --- the run --------------------------------------------------------------

    def job(self, spider: Spider) -> str | None:
        """What makes several processes one run: a job directory, a shared
        crawl (its id); None: this run alone."""
        return self.backends.store_job(spider.name)

    def spider_opened(self, spider: Spider) -> None:
        self.spider = spider
        if self.crawler.stats is not None:  # the summary's line, zeros included
            for kind in KINDS:
                self.crawler.stats.set_value(STORE_CHANGES + kind, 0)
        if (journal := ResumeJournal.of(self.crawler)) is not None:
            self.open_log(journal)
        if self.call(self.connect):
            logger.info("Catalog store: run %s in %s", self.run_id, self.shown)
            if self.journal is not None and self.run_id is not None:
                self.journal.stored(SINK, self.committed_at, self.run_id)

    def open_log(self, journal: ResumeJournal) -> None:
        """The job's log of observations; what an earlier run of the job left
        in it uncommitted, written first."""
        self.journal = journal
        # one process at a time, its coverage the whole job's (restored from
        # the journal): one share, written again by each run of the job
        self.worker = "job"
        self.log = log = ObservationLog(journal.jobdir)
        journal.syncs.append(log.sync)
        self.committed_at = journal.before.stored.get(SINK, 0)
        left = log.read_from(self.committed_at)
        if left:
            self.rows[:0] = left
            self.received += len(left)
            self.inc(STORE_REPLAYED, len(left))
            logger.info(
                "Catalog store: %d observations an earlier run of the job "
                "delivered were not recorded as stored: written again (the store "
                "takes each once a run)",
                len(left),
            )

    @property
    def shown(self) -> str:
        return self.uri.split("@")[-1]  # never a password

    # Every call to the store runs in one thread of its own (the connection's
    # thread: sqlite3 requires it), so the crawl does not wait on the store's
    # writes: the reactor hands a batch over and goes on.

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """*function* in the store's thread, waited for (the open); a store
        error is an outage (False)."""
        try:
            return self.executor.submit(function, *args).result()
        except self.errors as exc:
            self.outage(exc)
            return False

    def connect(self) -> bool:
        """In the store's thread: connected, the run opened and joined (with a
        job directory, the killed runs of the job closed)."""
        try:
            if self.store is None:
                self.store = open_store(self.uri)
            if self.run_id is None:
                job = self.job(self.spider)
                if self.journal is not None and (
                    run_id := self.journal.before.runs_of.get(SINK)
                ):
                    self.store.ensure_run(run_id, job)  # the job's, even finished
                else:
                    run_id = self.store.open_run(job)
                self.store.join(run_id, self.worker)
                if self.journal is not None:
                    self.store.close_dead(run_id, self.worker)
                self.run_id = run_id
        except self.errors:
            self.disconnect()
            raise
        return True

    def disconnect(self) -> None:
        """In the store's thread."""
        if self.store is not None:
            with contextlib.suppress(*self.errors):
                self.store.close()
        self.store = None

    def connected(self) -> tuple[Store, str]:
        """In the store's thread: the store and the run, connected."""
        self.connect()
        assert self.store is not None and self.run_id is not None
        return self.store, self.run_id

    def write(self, rows: list[Row]) -> dict[str, int]:
        """In the store's thread: one batch, in one transaction."""
        store, run_id = self.connected()
        try:
            return store.write_counted(run_id, rows)
        except self.errors:
            self.disconnect()
            raise

    def outage(self, exc: BaseException) -> None:
        self.inc(STORE_ERRORS)
        self.retry_at = time.monotonic() + RETRY_SECONDS
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.error(
                "Catalog store %s unreachable (%s): the crawl goes on, the items "
                "still go to the feeds, their observations wait to be written",
                self.shown,
                exc,
            )

    def inc(self, name: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(name, count)

    # --- items -------------------------------------------------------------------

    def item_scraped(self, item: Any, response: Any = None) -> None:
        if isinstance(item, ProductItem):
            rows: list[Row] = [observation(item)]
        elif isinstance(item, DetailItem):  # one observation per variant
            rows = list(variant_rows(item))
        else:
            return
        for row in rows:
            if self.log is not None:
                self.log.append(row)
            self.rows.append(row)
            self.received += 1
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Hand the waiting observations to the store's thread (one batch at a
        time; after an outage, not before the next retry)."""
        if not self.rows or self.writing or time.monotonic() < self.retry_at:
            return
        from twisted.internet import reactor  # the running one, installed by now

        rows, self.rows = self.rows, []
        self.writing_rows = rows
        self.cut_at = self.log.position if self.log is not None else 0
        self.writing = future = self.executor.submit(self.write, rows)
        future.add_done_callback(
            lambda done: reactor.callFromThread(self.written, done, rows)
        )

    def written(self, future: Future[dict[str, int]], rows: list[Row]) -> None:
        """A batch's outcome, in the reactor's thread (once)."""
        if future is not self.writing:
            return  # the close took it already
        self.writing = None
        try:
            counts = future.result()
        except self.errors as exc:
            self.rows = rows + self.rows  # written at the next try
            self.outage(exc)
            return
        self.back(len(rows))
        self.committed += len(rows)
        self.inc(STORE_OBSERVATIONS, len(rows))
        self.add(counts)
        self.record_stored()

    def back(self, written: int) -> None:
        """After an outage: the store answers again, and says so once."""
        if self.down_since is not None:
            logger.warning(
                "Catalog store %s reachable again after %.0f s: %d waiting "
                "observations written",
                self.shown,
                time.monotonic() - self.down_since,
                written,
            )
            self.down_since = None

    def record_stored(self) -> None:
        """The job's journal told what the store holds of its log; a log
        wholly committed and grown large starts again empty."""
        if self.journal is None or self.log is None:
            return
        assert self.run_id is not None
        self.committed_at = self.cut_at
        self.journal.stored(SINK, self.cut_at, self.run_id)
        if not self.rows and self.cut_at == self.log.position > RESET_BYTES:
            # first the journal: a kill now replays the log, never skips it
            self.journal.stored(SINK, 0, self.run_id)
            self.log.reset()
            self.cut_at = self.committed_at = 0

    def add(self, counts: dict[str, int]) -> None:
        for kind, made in counts.items():
            if made:
                self.counts[kind] += made
                self.inc(STORE_CHANGES + kind, made)

    # --- the close -------------------------------------------------------------

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        """The last observations written and the run's close, in the store's
        thread (:class:`~.closing.Closing`), tried for
        ``TMAPI_STORE_CLOSE_TIMEOUT`` seconds; the crawl's close waits for it
        without blocking the reactor."""
        from twisted.internet import reactor

        inflight, self.writing = self.writing, None  # its outcome: the close's
        closing = Closing(
            reason,
            final=reason == FINISHED or not self.backends.jobdir,
            shares=shares(self.crawler),
            unstored=self.rows,
            inflight=inflight,
            inflight_rows=self.writing_rows if inflight is not None else [],
        )
        self.rows = []
        if self.log is not None:
            self.cut_at = self.log.position
        done: Deferred[None] = Deferred()
        done.addBoth(self._over)
        future = self.executor.submit(closing.close, self, RETRY_SECONDS)
        future.add_done_callback(
            lambda ended: reactor.callFromThread(self.closed, ended, closing, done)
        )
        await maybe_deferred_to_future(done)

    def _over(self, result: Any) -> Any:
        self.closed_run = True
        for waiter in self.waiting:
            waiter.callback(None)
        self.waiting = []
        return result

    def closed(
        self, ended: Future[None], closing: Closing, done: Deferred[None]
    ) -> None:
        """The close's outcome, in the reactor's thread: stats, log, the
        changes feed, and a file for whatever the store did not take."""
        try:
            ended.result()
        except Exception as exc:  # a bug: the close must still end, its rows kept
            logger.exception("Catalog store: the close failed")
            closing.error = exc
        self.executor.shutdown()
        if not closing.unstored and closing.closed:
            self.back(closing.written)
        self.committed += closing.written
        self.inc(STORE_OBSERVATIONS, closing.written)
        self.add(closing.counts)
        if closing.unstored:
            self.inc(STORE_ERRORS)
        elif self.journal is not None and self.run_id is not None:
            self.journal.stored(SINK, self.cut_at, self.run_id)
        closing.report(self.run_id)
        if closing.unstored or not closing.closed:
            closing.rescue(self)
        self.judged = closing.run_counts is not None
        if closing.run_counts is not None and self.crawler.stats is not None:
            self.counts = closing.run_counts  # every process and run of it
            for kind, made in closing.run_counts.items():
                self.crawler.stats.set_value(STORE_CHANGES + kind, made)
        logger.info("Changes: %s", summary_line(self.counts))
        if self.log is not None:
            self.log.close()
        stored = closing.write_feed(self.crawler, self.spider, self.feed_uri)
        if stored is None:
            done.callback(None)
        else:
            stored.addBoth(lambda _: done.callback(None))
