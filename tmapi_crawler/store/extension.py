"""The catalog store during a crawl: every item delivered, in batches.

:class:`CatalogStore` is the one owner of the store's state in a crawl: its
connection, the run, the observations not written yet, the changes counted.
It takes each item as the feeds do (``item_scraped``, after every item
pipeline: valid, not a duplicate), and hands them ``TMAPI_STORE_BATCH`` at
a time to a thread of its own, which writes each batch in one transaction
while the crawl goes on. When the spider closes it writes its share of each
category query, from the ledger's coverage
(:class:`~tmapi_crawler.extensions.ledger.CrawlLedger`): the bands and their
``total_count``, the items their pages held, failed pages, gaps. The run's
last process to close (one, alone; the last of several workers; the last
run of a job) merges every share and marks what is gone in the queries
crawled completely, once (:meth:`~tmapi_crawler.store.base.Store.settle`).

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
(observations, the run's close) goes to a JSON Lines file under
``TMAPI_FEED_RESCUE_DIR``, the run exits with code 5, and the summary names
the file and the ``tmapi-store load`` command that completes the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
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
    STORE_NOT_CLOSED,
    STORE_OBSERVATIONS,
    STORE_REPLAYED,
    STORE_UNSTORED,
    STORE_UNSTORED_FILE,
)
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.itemsignal import connect_item_scraped
from tmapi_crawler.resume.extension import ResumeJournal
from tmapi_crawler.store.changes import (
    ALL_KINDS,
    KINDS,
    QueryCrawl,
    summary_line,
)
from tmapi_crawler.store.db import is_sqlite, new_run_id, open_store, store_problems
from tmapi_crawler.store.feed import ChangesFeed
from tmapi_crawler.store.variants import observed_record, variant_rows
from tmapi_crawler.store.wal import RESET_BYTES, ObservationLog

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

    from tmapi_crawler.store.db import Judgement, Store

logger = logging.getLogger(__name__)
RETRY_SECONDS = 5.0
SINK = "store"  # the store's name in the job journal

Row = tuple[Any, ...] | list[Any]  # an observation (OBSERVED order)


def store_errors(uri: str) -> tuple[type[BaseException], ...]:
    """What a store's failures raise (psycopg, ~0.1 s to import, only for
    PostgreSQL)."""
    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
    if is_sqlite(uri):
        return errors
    try:
        import psycopg
    except ImportError:
        return errors
    return (*errors, psycopg.Error)


def observation(item: ProductItem) -> tuple[Any, ...]:
    """An item as the store writes it (:data:`OBSERVED` order)."""
    shop = item.shop_info
    sale = item.sale_info
    return (
        item.item_id,
        item.language or "",
        item.cat_id,
        item.title,
        item.price,
        item.currency,
        shop.company_name if shop else None,
        shop.is_super_factory if shop else None,
        shop.shop_years if shop else None,
        sale.sale_quantity_90days if sale else None,
        item.product_url,
        item.crawled_at,
    )


@dataclass
class Closing:
    """The close: what it was given in the reactor's thread, and what it did
    in the store's, for the reactor to report."""

    reason: str  # the crawl's finish reason
    final: bool  # the run is over (not a job stopped early)
    shares: list[QueryCrawl]  # this process's share of each category query
    unstored: list[Row]  # not written yet: all at first, none once written
    written: int = 0  # observations written at the close
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL_KINDS, 0))
    closed: bool = False  # the run's close (this process's share) is written
    judgements: list[Judgement] = field(default_factory=list)
    run_counts: dict[str, int] | None = None  # the run's, once judged
    records: list[dict[str, Any]] | None = None  # the changes feed's, once judged
    error: BaseException | None = None


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

    def write(self, rows: list[Row]) -> dict[str, int]:
        """In the store's thread: one batch, in one transaction."""
        self.connect()
        assert self.store is not None and self.run_id is not None
        try:
            return self.store.write_counted(self.run_id, rows)
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
        thread, tried for ``TMAPI_STORE_CLOSE_TIMEOUT`` seconds; the crawl's
        close waits for it without blocking the reactor."""
        from twisted.internet import reactor

        inflight, self.writing = self.writing, None  # its outcome: the close's
        inflight_rows = self.writing_rows if inflight is not None else []
        closing = Closing(
            reason,
            final=reason == FINISHED or not self.backends.jobdir,
            shares=self.shares(),
            unstored=self.rows,
        )
        self.rows = []
        if self.log is not None:
            self.cut_at = self.log.position
        done: Deferred[None] = Deferred()
        done.addBoth(self._over)
        future = self.executor.submit(self.close, closing, inflight, inflight_rows)
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

    def close(
        self,
        closing: Closing,
        inflight: Future[dict[str, int]] | None,
        inflight_rows: list[Row],
    ) -> None:
        """In the store's thread: the rest written, then this process's share
        and (the last process of a run that is over) the run judged; a store
        that does not answer is tried again until the close's deadline."""
        if inflight is not None:
            try:
                closing.counts.update(inflight.result())
                closing.written += len(inflight_rows)
            except self.errors:
                closing.unstored = inflight_rows + closing.unstored
        deadline = time.monotonic() + self.close_timeout
        while True:
            try:
                if rows := closing.unstored:
                    for kind, made in self.write(rows).items():
                        closing.counts[kind] += made
                    closing.written += len(rows)
                    closing.unstored = []
                self.close_run(closing)
                break
            except self.errors as exc:
                if closing.error is None:
                    logger.error(
                        "Catalog store %s unreachable at the close (%s): tried "
                        "again for up to %.0f s (TMAPI_STORE_CLOSE_TIMEOUT)",
                        self.shown,
                        exc,
                        self.close_timeout,
                    )
                closing.error = exc
                self.disconnect()
                if time.monotonic() + RETRY_SECONDS > deadline:
                    break
                time.sleep(RETRY_SECONDS)
        self.disconnect()

    def close_run(self, closing: Closing) -> None:
        """In the store's thread: this process's share into the store; the
        last process of the run to close judges each category query and reads
        the run's changes back (the summary's counts, the changes feed)."""
        self.connect()
        assert self.store is not None and self.run_id is not None
        closing.judgements = self.store.settle(
            self.run_id, self.worker, closing.shares, closing.reason, closing.final
        )
        self.store.finish_run(self.run_id, closing.reason, closing.final)
        closing.closed = True
        if closing.final and not (closing.judgements and closing.judgements[0].waiting):
            closing.run_counts = self.store.change_counts(self.run_id)
            if self.feed_uri:
                closing.records = list(self.store.iter_changes(self.run_id))

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
        self.report(closing)
        if closing.unstored or not closing.closed:
            self.rescue(closing)
        self.judged = closing.run_counts is not None
        if closing.run_counts is not None and self.crawler.stats is not None:
            self.counts = closing.run_counts  # every process and run of it
            for kind, made in closing.run_counts.items():
                self.crawler.stats.set_value(STORE_CHANGES + kind, made)
        logger.info("Changes: %s", summary_line(self.counts))
        if self.log is not None:
            self.log.close()
        if closing.records is None or not self.feed_uri:
            if self.feed_uri and closing.closed:
                logger.info(
                    "The changes feed %s is written when the run is judged: by "
                    "the run that finishes the job, or the last worker to close",
                    self.feed_uri,
                )
            done.callback(None)
            return
        feed = ChangesFeed(self.crawler, self.feed_uri)
        feed.open(self.spider)
        feed.write(closing.records)
        stored = feed.close()
        if stored is None:
            done.callback(None)
        else:
            stored.addBoth(lambda _: done.callback(None))

    def report(self, closing: Closing) -> None:
        """The judgement of each category query, in the log."""
        if not closing.closed:
            return
        if closing.judgements and closing.judgements[0].waiting:
            logger.info(
                "Catalog store: %d other process(es) of run %s still open; the "
                "last to close judges which listings are gone",
                closing.judgements[0].waiting,
                self.run_id,
            )
        elif not closing.final:
            logger.info(
                "Catalog store: run %s is a job stopped early (%s); which listings "
                "are gone is judged when a resumed run finishes it",
                self.run_id,
                closing.reason,
            )
        for judgement in closing.judgements:
            if judgement.why is not None and not judgement.waiting:
                logger.info(
                    "%s: not judged which listings are gone: %s",
                    judgement.label,
                    judgement.why,
                )

    def shares(self) -> list[QueryCrawl]:
        """What this process saw of each category query, from the ledger."""
        ledger = CrawlLedger.of(self.crawler)
        found = []
        for key, entry in ledger.coverage.categories.items():
            category = ledger.progress.categories.get(key)
            if category is None:  # a band's coverage without its root query
                continue
            query = category.query
            found.append(
                QueryCrawl(
                    query=key,
                    cat_id=query.cat_id,
                    language=query.language,
                    label=entry.label,
                    whole_category=not query.filters(),
                    bands=dict(entry.bands),
                    gaps=tuple(
                        f"{gap.band.describe()}: {gap.reason}" for gap in entry.gaps
                    ),
                    failed_pages=entry.failed_pages,
                    delivered=entry.band_items,
                )
            )
        return found

    def rescue(self, closing: Closing) -> None:
        """What the store never took (observations, the run's close), kept in
        a file that ``tmapi-store load`` writes, said plainly; exit code 5."""
        run_id = self.run_id or new_run_id()
        self.rescue_dir.mkdir(parents=True, exist_ok=True)
        path = (self.rescue_dir / f"store-{run_id}-{os.getpid()}.jsonl").resolve()
        rows = closing.unstored
        with path.open("a", encoding="utf-8") as file:
            for row in rows:
                record = {"run_id": run_id, **observed_record(row)}
                file.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
            if not closing.closed:
                close = {
                    "run_id": run_id,
                    "job": self.job(self.spider),
                    "worker": self.worker,
                    "reason": closing.reason,
                    "final": closing.final,
                    "shares": [dataclasses.asdict(share) for share in closing.shares],
                }
                file.write(json.dumps({"close": close}, ensure_ascii=False) + "\n")
        self.inc(STORE_UNSTORED, len(rows))
        if not closing.closed:
            self.inc(STORE_NOT_CLOSED)
        if self.crawler.stats is not None:
            self.crawler.stats.set_value(STORE_UNSTORED_FILE, str(path))
        logger.error(
            "Catalog store %s did not answer for %.0f s at the close (%s): %d "
            "observations%s could not be stored; the items are in the feeds, "
            "and what the store is missing is in %s. Once it answers, "
            "`tmapi-store --store %s load %s` writes them and completes the "
            "run's changes. Exit code 5.",
            self.shown,
            self.close_timeout,
            closing.error,
            len(rows),
            "" if closing.closed else " and the run's close",
            path,
            self.shown if "@" not in self.uri else "<TMAPI_STORE>",
            path,
        )
