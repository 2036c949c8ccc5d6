"""One receiver of Scrapy's ``item_scraped`` for every component that counts items.

Scrapy sends ``item_scraped`` once per item through
``send_catch_log_async``: one asyncio task per receiver, each item. With
Scrapy's core stats, its feed exporter, the ledger and the feed alert that is
four tasks an item, about half of what the whole item path costs besides
validation (``BENCHMARKS.md``, benchmark 3). :func:`connect_item_scraped`
gives the crawler's components one receiver between them, a
:class:`ItemScrapedFanout` that calls each in turn, and when the spider opens
it takes over the synchronous ``item_scraped`` receivers of Scrapy's
:class:`~scrapy.extensions.corestats.CoreStats` and
:class:`~scrapy.extensions.feedexport.FeedExporter` the same way. Each
component keeps its own state and its own receiver; only the dispatch is
shared. As with Scrapy's dispatch, a receiver that raises is logged and the
others still run. Any other receiver (yours, the job journal's) stays
connected as it was, after the fan-out, so it sees each item once the feeds
have written it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from scrapy import signals
from scrapy.extensions.corestats import CoreStats
from scrapy.extensions.feedexport import FeedExporter

from tmapi_crawler.internals import signal_receivers

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

ItemReceiver = Callable[[Any, Any], None]  # (item, response)

# Scrapy's extensions whose item_scraped receiver the fan-out calls instead
TAKEN_OVER = (CoreStats, FeedExporter)
ITEM_SCRAPED = signals.item_scraped

_FANOUTS: WeakKeyDictionary[Crawler, ItemScrapedFanout] = WeakKeyDictionary()


class ItemScrapedFanout:
    """The crawler's one ``item_scraped`` receiver for the receivers it holds."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.receivers: list[ItemReceiver] = []
        self.leading = 0  # receivers called before the feeds (a job's record)
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)

    def item_scraped(self, item: Any, response: Any) -> None:
        for receiver in self.receivers:
            try:
                receiver(item, response)
            except Exception:  # as send_catch_log: logged, the others run
                logger.error(
                    "Error caught on signal handler: %(receiver)s",
                    {"receiver": receiver},
                    exc_info=True,
                    extra={"spider": self.crawler.spider},
                )

    def spider_opened(self) -> None:
        """Every extension is built: Scrapy's receivers join the fan-out, which
        goes first; the receivers it does not hold follow in their order."""
        manager = self.crawler.signals
        connected = signal_receivers(self.crawler, ITEM_SCRAPED)
        taken = [self._scrapy_receiver(receiver) for receiver in connected]
        if not any(taken):
            return
        for receiver in connected:
            manager.disconnect(receiver, signal=ITEM_SCRAPED)
        at = self.leading
        self.receivers[at:at] = [receiver for receiver in taken if receiver]
        manager.connect(self.item_scraped, signal=ITEM_SCRAPED)
        for receiver, replaced in zip(connected, taken, strict=True):
            if replaced is None and receiver != self.item_scraped:
                manager.connect(receiver, signal=ITEM_SCRAPED)

    def _scrapy_receiver(self, receiver: Any) -> ItemReceiver | None:
        """The fan-out's call of a synchronous receiver of :data:`TAKEN_OVER`."""
        owner = getattr(receiver, "__self__", None)
        if not isinstance(owner, TAKEN_OVER) or inspect.iscoroutinefunction(receiver):
            return None
        if getattr(receiver, "__name__", "") != "item_scraped":
            return None
        return _WithSpider(receiver, self.crawler)


class _WithSpider:
    """A Scrapy receiver ``(item, spider)`` called as ``(item, response)``; it
    reads as the receiver it calls (in the log line of an error)."""

    def __init__(self, receiver: Callable[[Any, Any], None], crawler: Crawler) -> None:
        self.receiver = receiver
        self.crawler = crawler

    def __call__(self, item: Any, response: Any) -> None:
        self.receiver(item, self.crawler.spider)

    def __repr__(self) -> str:
        return repr(self.receiver)


def connect_item_scraped(
    crawler: Crawler, receiver: ItemReceiver, *, before_feeds: bool = False
) -> None:
    """Call ``receiver(item, response)`` for each item scraped, through the
    crawler's one fan-out receiver; *before_feeds*: before Scrapy's feed
    exporter writes the item (a record that must hold whatever a feed holds)."""
    fanout = _FANOUTS.get(crawler)
    if fanout is None:
        fanout = _FANOUTS[crawler] = ItemScrapedFanout(crawler)
        crawler.signals.connect(fanout.item_scraped, signal=ITEM_SCRAPED)
    if before_feeds:
        fanout.receivers.insert(fanout.leading, receiver)
        fanout.leading += 1
    else:
        fanout.receivers.append(receiver)
