"""The catalog store's close at the end of a crawl: the last observations,
the run's close, and a file for what the store did not take.

When the spider closes, :class:`~.extension.CatalogStore` hands what it has
not written (and the batch still in its thread) to a :class:`Closing`, the
one owner of the close's state. In the store's thread
(:meth:`Closing.close`) the rest is written and this process's share of
each category query goes in, from the ledger's coverage (:func:`shares`:
the bands and their ``total_count``, the items their pages held, failed
pages, gaps). The run's last process to close (one, alone; the last of
several workers; the last run of a job) merges every share and marks what
is gone in the queries crawled completely, once
(:meth:`~tmapi_crawler.store.base.Store.settle`), and reads the run's
changes back for the summary and the changes feed
(:meth:`Closing.write_feed`).

The store is tried for ``TMAPI_STORE_CLOSE_TIMEOUT`` seconds; what it still
has not taken (observations, the run's close) goes to a JSON Lines file
under ``TMAPI_FEED_RESCUE_DIR`` (:meth:`Closing.rescue`), the run exits with
code 5, and the summary names the file and the ``tmapi-store load`` command
that completes the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tmapi_crawler.contract.stats import (
    STORE_NOT_CLOSED,
    STORE_UNSTORED,
    STORE_UNSTORED_FILE,
)
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.store.changes import ALL_KINDS, QueryCrawl, Row
from tmapi_crawler.store.db import new_run_id
from tmapi_crawler.store.feed import ChangesFeed
from tmapi_crawler.store.variants import observed_record

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from tmapi_crawler.store.db import Judgement
    from tmapi_crawler.store.extension import CatalogStore

logger = logging.getLogger(__name__)


@dataclass
class Closing:
    """The close: what it was given in the reactor's thread, and what it did
    in the store's, for the reactor to report."""

    reason: str  # the crawl's finish reason
    final: bool  # the run is over (not a job stopped early)
    shares: list[QueryCrawl]  # this process's share of each category query
    unstored: list[Row]  # not written yet: all at first, none once written
    inflight: Future[dict[str, int]] | None = None  # the batch in the thread
    inflight_rows: list[Row] = field(default_factory=list)  # and its rows
    written: int = 0  # observations written at the close
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL_KINDS, 0))
    closed: bool = False  # the run's close (this process's share) is written
    judgements: list[Judgement] = field(default_factory=list)
    run_counts: dict[str, int] | None = None  # the run's, once judged
    records: list[dict[str, Any]] | None = None  # the changes feed's, once judged
    error: BaseException | None = None

    def close(self, store: CatalogStore, retry: float) -> None:
        """In the store's thread: the rest written, then this process's share
        and (the last process of a run that is over) the run judged; a store
        that does not answer is tried again every *retry* seconds until the
        close's deadline."""
        if self.inflight is not None:
            try:
                self.counts.update(self.inflight.result())
                self.written += len(self.inflight_rows)
            except store.errors:
                self.unstored = self.inflight_rows + self.unstored
        deadline = time.monotonic() + store.close_timeout
        while True:
            try:
                if rows := self.unstored:
                    for kind, made in store.write(rows).items():
                        self.counts[kind] += made
                    self.written += len(rows)
                    self.unstored = []
                self.close_run(store)
                break
            except store.errors as exc:
                if self.error is None:
                    logger.error(
                        "Catalog store %s unreachable at the close (%s): tried "
                        "again for up to %.0f s (TMAPI_STORE_CLOSE_TIMEOUT)",
                        store.shown,
                        exc,
                        store.close_timeout,
                    )
                self.error = exc
                store.disconnect()
                if time.monotonic() + retry > deadline:
                    break
                time.sleep(retry)
        store.disconnect()

    def close_run(self, store: CatalogStore) -> None:
        """In the store's thread: this process's share into the store; the
        last process of the run to close judges each category query and reads
        the run's changes back (the summary's counts, the changes feed)."""
        connected, run_id = store.connected()
        self.judgements = connected.settle(
            run_id, store.worker, self.shares, self.reason, self.final
        )
        connected.finish_run(run_id, self.reason, self.final)
        self.closed = True
        if self.final and not (self.judgements and self.judgements[0].waiting):
            self.run_counts = connected.change_counts(run_id)
            if store.feed_uri:
                self.records = list(connected.iter_changes(run_id))

    def report(self, run_id: str | None) -> None:
        """The judgement of each category query, in the log."""
        if not self.closed:
            return
        if self.judgements and self.judgements[0].waiting:
            logger.info(
                "Catalog store: %d other process(es) of run %s still open; the "
                "last to close judges which listings are gone",
                self.judgements[0].waiting,
                run_id,
            )
        elif not self.final:
            logger.info(
                "Catalog store: run %s is a job stopped early (%s); which listings "
                "are gone is judged when a resumed run finishes it",
                run_id,
                self.reason,
            )
        for judgement in self.judgements:
            if judgement.why is not None and not judgement.waiting:
                logger.info(
                    "%s: not judged which listings are gone: %s",
                    judgement.label,
                    judgement.why,
                )

    def write_feed(
        self, crawler: Crawler, spider: Spider, uri: str | None
    ) -> Deferred[None] | None:
        """The changes feed at *uri*, once the run is judged; fired once it is
        stored (None: nothing to wait for)."""
        if self.records is None or not uri:
            if uri and self.closed:
                logger.info(
                    "The changes feed %s is written when the run is judged: by "
                    "the run that finishes the job, or the last worker to close",
                    uri,
                )
            return None
        feed = ChangesFeed(crawler, uri)
        feed.open(spider)
        feed.write(self.records)
        return feed.close()

    def rescue(self, store: CatalogStore) -> None:
        """What the store never took (observations, the run's close), kept in
        a file that ``tmapi-store load`` writes, said plainly; exit code 5."""
        run_id = store.run_id or new_run_id()
        store.rescue_dir.mkdir(parents=True, exist_ok=True)
        path = (store.rescue_dir / f"store-{run_id}-{os.getpid()}.jsonl").resolve()
        rows = self.unstored
        with path.open("a", encoding="utf-8") as file:
            for row in rows:
                record = {"run_id": run_id, **observed_record(row)}
                file.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
            if not self.closed:
                close = {
                    "run_id": run_id,
                    "job": store.job(store.spider),
                    "worker": store.worker,
                    "reason": self.reason,
                    "final": self.final,
                    "shares": [dataclasses.asdict(share) for share in self.shares],
                }
                file.write(json.dumps({"close": close}, ensure_ascii=False) + "\n")
        store.inc(STORE_UNSTORED, len(rows))
        if not self.closed:
            store.inc(STORE_NOT_CLOSED)
        if store.crawler.stats is not None:
            store.crawler.stats.set_value(STORE_UNSTORED_FILE, str(path))
        logger.error(
            "Catalog store %s did not answer for %.0f s at the close (%s): %d "
            "observations%s could not be stored; the items are in the feeds, "
            "and what the store is missing is in %s. Once it answers, "
            "`tmapi-store --store %s load %s` writes them and completes the "
            "run's changes. Exit code 5.",
            store.shown,
            store.close_timeout,
            self.error,
            len(rows),
            "" if self.closed else " and the run's close",
            path,
            store.shown if "@" not in store.uri else "<TMAPI_STORE>",
            path,
        )


def shares(crawler: Crawler) -> list[QueryCrawl]:
    """What this process saw of each category query, from the ledger."""
    ledger = CrawlLedger.of(crawler)
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
