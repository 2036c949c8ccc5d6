"""A feed that lost items fails the run, and the log says so plainly at the end."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.extensions.feedexport import FeedExporter

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract.stats import FEED_FAILED, FEED_NOT_WRITTEN
from tmapi_crawler.internals import feed_filters
from tmapi_crawler.itemsignal import connect_item_scraped

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


logger = logging.getLogger(__name__)


@dataclass
class FeedCount:
    """What one feed (all its batches) was handed and what it holds."""

    accepted: int = 0  # items the feed's filter took
    written: int = 0  # items its files hold
    refused: int = 0  # items its writer could not hold (logged, quarantined)
    stopped: str | None = None  # why a failed write stopped it (a full disk)
    disk: str | None = None  # the disk holding it, when a write failed

    @property
    def not_written(self) -> int:
        return max(0, self.accepted - self.written - self.refused)

    def as_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "written": self.written,
            "refused": self.refused,
            "not_written": self.not_written,
            "stopped_by": self.stopped,
            "disk": self.disk,
        }


class FeedFailureAlert:
    """Makes every lost feed fail the run, and says so plainly at the end.

    Scrapy counts a failed upload in ``feedexport/failed_count/<storage>``
    (exit code 5) but a feed that could not even be opened (a local path that
    cannot be created, a storage that failed to start) only logs an error per
    item and counts nothing: the run would exit 0 with the items gone. This
    extension counts, per feed, the items the feed accepted and the items its
    closed files held (:meth:`counts`); a shortfall, but for the items a
    writer refused (quarantined), is counted as
    ``feedexport/failed_count/not_written``. Any failure ends the log with
    one plain line; a feed a full disk stopped gets one line of its own,
    naming the disk, the items written and not, and what to do.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.accepted: Counter[str] = Counter()
        self.feeds: dict[str, FeedCount] = {}
        connect_item_scraped(crawler, self.item_scraped)
        crawler.signals.connect(self.slot_closed, signal=signals.feed_slot_closed)
        crawler.signals.connect(self.check, signal=signals.feed_exporter_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FeedFailureAlert:
        return cls(crawler)

    @cached_property
    def exporter(self) -> FeedExporter | None:
        return self.crawler.get_extension(FeedExporter)

    @cached_property
    def filters(self) -> Mapping[str, Any]:
        """Each feed's item filter (looked up once: this runs for every item)."""
        return feed_filters(self.crawler)

    def item_scraped(self, item: Any, response: Any = None) -> None:
        if self.exporter is not None:
            for uri, item_filter in self.filters.items():
                if item_filter.accepts(item):
                    self.accepted[uri] += 1

    def slot_closed(self, slot: Any) -> None:
        feed = self.feeds.setdefault(slot.uri_template, FeedCount())
        feed.written += slot.itemcount
        exporter = slot.exporter
        feed.refused += getattr(exporter, "refused", 0)
        if (stopped := getattr(exporter, "stopped", None)) is not None:
            feed.stopped = str(stopped.strerror or stopped)
            feed.disk = exporter.disk

    def counts(self) -> dict[str, FeedCount]:
        """Per feed (as configured): what it was handed and what it holds."""
        for uri, accepted in self.accepted.items():
            self.feeds.setdefault(uri, FeedCount()).accepted = accepted
        return self.feeds

    def check(self) -> None:
        stopped = 0
        for uri, feed in self.counts().items():
            if not (missing := feed.not_written):
                continue
            self.stats.inc_value(FEED_NOT_WRITTEN)
            if feed.stopped is None:
                logger.error(
                    "Feed %s: %d of %d items never written", uri, missing, feed.accepted
                )
                continue
            stopped += 1
            logger.error(
                "Feed %s stopped: %s on the disk %s. It holds %d items, "
                "every one whole; %d were not written. Free space there, then %s "
                "(exit code 5)",
                uri,
                feed.stopped,
                feed.disk or "holding it",
                feed.written,
                missing,
                self.advice(),
            )
        failed = sum(
            value
            for key, value in self.stats.get_stats().items()
            if key.startswith(FEED_FAILED)
        )
        if failed > stopped:
            logger.error(
                "%d feed(s) could NOT be stored: the items of this run did not "
                "reach them (see the errors above); exit code 5",
                failed - stopped,
            )

    def advice(self) -> str:
        """What completes a feed a failed write stopped."""
        return stopped_feed_advice(RunBackends.of(self.crawler).jobdir)


def stopped_feed_advice(jobdir: object) -> str:
    """What completes a feed a failed write stopped, in a run with the job
    directory *jobdir* (None: without one): the log's line and the summary's."""
    if jobdir:
        return (
            f"run the same command (with -s JOBDIR={jobdir}): it fetches "
            "what the feed missed and completes the file"
        )
    return (
        "run the crawl again; this run had no job directory: with "
        "-s JOBDIR=<a directory> the same command completes a stopped file"
    )
