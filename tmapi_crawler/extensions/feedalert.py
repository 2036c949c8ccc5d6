"""A feed that lost items fails the run, and the log says so plainly at the end."""

from __future__ import annotations

import logging
from collections import Counter
from functools import cached_property
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.extensions.feedexport import FeedExporter

from tmapi_crawler.contract.stats import FEED_FAILED, FEED_NOT_WRITTEN
from tmapi_crawler.itemsignal import connect_item_scraped

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


logger = logging.getLogger(__name__)


class FeedFailureAlert:
    """Makes every lost feed fail the run, and says so plainly at the end.

    Scrapy counts a failed upload in ``feedexport/failed_count/<storage>``
    (exit code 5) but a feed that could not even be opened (a local path that
    cannot be created, a storage that failed to start) only logs an error per
    item and counts nothing: the run would exit 0 with the items gone. This
    extension counts, per feed, the items the feed accepted and the items its
    closed files held; a shortfall is counted as
    ``feedexport/failed_count/not_written``. Any failure ends the log with
    one plain line.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.accepted: Counter[str] = Counter()
        self.written: Counter[str] = Counter()
        connect_item_scraped(crawler, self.item_scraped)
        crawler.signals.connect(self.slot_closed, signal=signals.feed_slot_closed)
        crawler.signals.connect(self.check, signal=signals.feed_exporter_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FeedFailureAlert:
        return cls(crawler)

    @cached_property
    def exporter(self) -> FeedExporter | None:
        return self.crawler.get_extension(FeedExporter)

    def item_scraped(self, item: Any, response: Any = None) -> None:
        if self.exporter is not None:
            for uri, item_filter in self.exporter.filters.items():
                if item_filter.accepts(item):
                    self.accepted[uri] += 1

    def slot_closed(self, slot: Any) -> None:
        self.written[slot.uri_template] += slot.itemcount

    def check(self) -> None:
        for uri, accepted in self.accepted.items():
            if (missing := accepted - self.written[uri]) > 0:
                logger.error(
                    "Feed %s: %d of %d items never written", uri, missing, accepted
                )
                self.stats.inc_value(FEED_NOT_WRITTEN)
        failed = sum(
            value
            for key, value in self.stats.get_stats().items()
            if key.startswith(FEED_FAILED)
        )
        if failed:
            logger.error(
                "%d feed(s) could NOT be stored: the items of this run did not "
                "reach them (see the errors above); exit code 5",
                failed,
            )
