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
crawled completely, once (:meth:`~tmapi_crawler.store.db.Store.settle`).

An unreachable store does not stop the crawl: the items still go to the
feeds, the observations wait in memory and are written once it answers
again (tried at most every ``RETRY_SECONDS``). What is still unwritten when
the crawl ends is written to a JSON Lines file under
``TMAPI_FEED_RESCUE_DIR``, and the log says so and where.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

from tmapi_crawler.contract.credentials import store_uri
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.contract.outcome import FINISHED
from tmapi_crawler.contract.stats import (
    STORE_CHANGES,
    STORE_ERRORS,
    STORE_OBSERVATIONS,
    STORE_UNSTORED,
)
from tmapi_crawler.distributed.connection import redis_url
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.itemsignal import connect_item_scraped
from tmapi_crawler.store.changes import (
    KINDS,
    OBSERVED,
    Change,
    QueryCrawl,
    count,
    summary_line,
)
from tmapi_crawler.store.db import is_sqlite, open_store, store_problems
from tmapi_crawler.store.feed import ChangesFeed

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from twisted.internet.defer import Deferred

    from tmapi_crawler.store.db import Store

logger = logging.getLogger(__name__)
RETRY_SECONDS = 5.0

# What a batch made: how many changes of each kind, and the changes
# themselves for the changes feed (none read back without one).
Written = tuple[dict[str, int], list[Change]]


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


class CatalogStore:
    def __init__(self, crawler: Crawler, uri: str) -> None:
        self.crawler = crawler
        self.uri = uri
        self.batch = crawler.settings.getint("TMAPI_STORE_BATCH")
        self.rescue_dir = Path(crawler.settings.get("TMAPI_FEED_RESCUE_DIR"))
        self.distributed = bool(redis_url(crawler.settings))
        self.errors = store_errors(uri)
        self.store: Store | None = None
        self.run_id: str | None = None
        self.rows: list[tuple[Any, ...]] = []
        self.counts = dict.fromkeys(KINDS, 0)
        self.retry_at = 0.0
        self.down_since: float | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="tmapi-store")
        self.writing: Future[Written] | None = None  # the batch in the thread
        self.writing_rows: list[tuple[Any, ...]] = []
        # this process in the run (several: workers, or runs of a job)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        feed = crawler.settings.get("TMAPI_CHANGES_FEED")
        self.feed = ChangesFeed(crawler, feed) if feed else None
        crawler.signals.connect(self.spider_opened, signals.spider_opened)
        connect_item_scraped(crawler, self.item_scraped)  # the one fan-out
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
        if not problems and is_sqlite(uri) and redis_url(settings):
            problems.append(
                "TMAPI_STORE=sqlite:/// with REDIS_URL: workers on several "
                "machines cannot share one SQLite file, and workers on one "
                "machine would each judge the crawl; use TMAPI_STORE="
                "postgresql://USER@HOST/DBNAME, a server every worker reaches"
            )
        batch = settings.get("TMAPI_STORE_BATCH")
        try:
            ok = int(batch) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(
                f"TMAPI_STORE_BATCH={batch!r}: expected a whole number of items above 0"
            )
        return problems

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CatalogStore:
        uri = store_uri(crawler.settings)
        if not uri:
            raise NotConfigured
        return cls(crawler, uri)

    # --- the run --------------------------------------------------------------

    def job(self, spider: Spider) -> str | None:
        """What makes several processes one run: a job directory, a shared
        crawl (its id); None: this run alone."""
        settings = self.crawler.settings
        if self.distributed:
            return "redis:" + (settings.get("TMAPI_CRAWL_ID") or spider.name)
        if jobdir := settings.get("JOBDIR"):
            return f"jobdir:{Path(jobdir).resolve()}"
        return None

    def spider_opened(self, spider: Spider) -> None:
        self.spider = spider
        if self.feed is not None:
            self.feed.open(spider)
        if self.crawler.stats is not None:  # the summary's line, zeros included
            for kind in KINDS:
                self.crawler.stats.set_value(STORE_CHANGES + kind, 0)
        if self.call(self.connect):
            logger.info("Catalog store: run %s in %s", self.run_id, self.shown)

    @property
    def shown(self) -> str:
        return self.uri.split("@")[-1]  # never a password

    # Every call to the store runs in one thread of its own (the connection's
    # thread: sqlite3 requires it), so the crawl does not wait on the store's
    # writes: the reactor hands a batch over and goes on.

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """*function* in the store's thread, waited for (the open and the close);
        a store error is an outage (False)."""
        try:
            return self.executor.submit(function, *args).result()
        except self.errors as exc:
            self.outage(exc)
            return False

    def connect(self) -> bool:
        """In the store's thread: connected, the run opened and joined."""
        try:
            if self.store is None:
                self.store = open_store(self.uri)
            if self.run_id is None:
                run_id = self.store.open_run(self.job(self.spider))
                self.store.join(run_id, self.worker)
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

    def write(self, rows: list[tuple[Any, ...]]) -> Written:
        """In the store's thread: one batch, in one transaction."""
        self.connect()
        assert self.store is not None and self.run_id is not None
        try:
            if self.feed is None:
                return self.store.write_counted(self.run_id, rows), []
            changes = self.store.write(self.run_id, rows)
            return count(changes), changes
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
            self.rows.append(observation(item))
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
        self.writing = future = self.executor.submit(self.write, rows)
        future.add_done_callback(
            lambda done: reactor.callFromThread(self.written, done, rows)
        )

    def written(self, future: Future[Written], rows: list[tuple[Any, ...]]) -> None:
        """A batch's outcome, in the reactor's thread (once)."""
        if future is not self.writing:
            return  # the close took it already
        self.writing = None
        try:
            counts, changes = future.result()
        except self.errors as exc:
            self.rows = rows + self.rows  # written at the next try
            self.outage(exc)
            return
        if self.down_since is not None:
            logger.warning(
                "Catalog store %s reachable again after %.0f s: %d waiting "
                "observations written",
                self.shown,
                time.monotonic() - self.down_since,
                len(rows),
            )
            self.down_since = None
        self.inc(STORE_OBSERVATIONS, len(rows))
        self.emit(counts, changes)

    def emit(self, counts: dict[str, int], changes: list[Change]) -> None:
        for kind, made in counts.items():
            if made:
                self.counts[kind] += made
                self.inc(STORE_CHANGES + kind, made)
        if self.feed is not None:
            self.feed.write(changes)

    # --- the close -------------------------------------------------------------

    def spider_closed(self, spider: Spider, reason: str) -> Deferred | None:
        if (pending := self.writing) is not None:  # the batch in the thread
            with contextlib.suppress(*self.errors):
                pending.result()
            self.written(pending, self.writing_rows)
        if self.rows:  # the last batch, retried whatever the time
            rows, self.rows = self.rows, []
            self.writing = future = self.executor.submit(self.write, rows)
            with contextlib.suppress(*self.errors):
                future.result()
            self.written(future, rows)
        if self.rows:
            self.rescue(self.rows)
        elif self.run_id is not None:
            # a job stopped early is resumed as the same run: judged when it ends
            final = reason == FINISHED or not self.crawler.settings.get("JOBDIR")
            if self.call(self.close_run, reason, final) is False:
                logger.error("Catalog store: what is gone could not be marked")
        self.call(self.disconnect)
        self.executor.shutdown()
        logger.info("Changes: %s", summary_line(self.counts))
        return self.feed.close() if self.feed is not None else None

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

    def close_run(self, reason: str, final: bool) -> bool:
        """In the store's thread: this process's share into the store; the
        last process of the run to close marks what is gone in each category
        query crawled whole, and says why of the others."""
        self.connect()
        assert self.store is not None and self.run_id is not None
        judgements = self.store.settle(
            self.run_id, self.worker, self.shares(), reason, judge=final
        )
        self.store.finish_run(self.run_id, reason, final)
        if not final:
            logger.info(
                "Catalog store: run %s is a job stopped early (%s); which listings "
                "are gone is judged when a resumed run finishes it",
                self.run_id,
                reason,
            )
        if judgements and judgements[0].waiting:
            logger.info(
                "Catalog store: %d other process(es) of run %s still open; the "
                "last to close judges which listings are gone",
                judgements[0].waiting,
                self.run_id,
            )
            return True
        for judgement in judgements:
            if judgement.why is not None:
                logger.info(
                    "%s: not judged which listings are gone: %s",
                    judgement.label,
                    judgement.why,
                )
            self.emit(count(judgement.gone), judgement.gone)  # the reactor waits
        return True

    def rescue(self, rows: list[tuple[Any, ...]]) -> None:
        """The observations the store never took, kept in a file, said plainly."""
        self.inc(STORE_UNSTORED, len(rows))
        self.rescue_dir.mkdir(parents=True, exist_ok=True)
        path = self.rescue_dir / f"store-{self.run_id or 'run'}-{os.getpid()}.jsonl"
        with path.open("a", encoding="utf-8") as file:
            for row in rows:
                record = {
                    "run_id": self.run_id,
                    **dict(zip(OBSERVED, row, strict=True)),
                }
                file.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        logger.error(
            "Catalog store %s: %d observations could not be stored (the store "
            "stayed unreachable); the items are in the feeds, and the "
            "observations in %s (tmapi-store load %s writes them once it answers). "
            "No listing was marked gone in this run.",
            self.shown,
            len(rows),
            path,
            path,
        )
