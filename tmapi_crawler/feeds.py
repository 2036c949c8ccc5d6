"""Where items go: the default feed, the quarantine feed, batch file names.

:class:`DefaultFeed` is a Scrapy add-on:

- unless ``-o``/``-O`` or ``FEEDS`` name a feed, it adds ``TMAPI_DEFAULT_FEED``
  (one JSON Lines file per run under ``out/``, named after the spider and the
  start time); with ``FEED_EXPORT_BATCH_ITEM_COUNT`` set, the default name
  gets ``-%(batch_id)05d`` before its extension, so each batch has its own file;
- with ``TMAPI_QUARANTINE_FEED`` set, it adds that feed for
  :class:`~tmapi_crawler.items.InvalidItem` only, and restricts every other
  feed that names no ``item_classes`` to
  :class:`~tmapi_crawler.items.ProductItem`, so invalid items never mix with
  good ones (Scrapy's own ``item_classes`` feed option does the sorting).
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.settings import SETTINGS_PRIORITIES

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

PRODUCT_ITEM = "tmapi_crawler.items.ProductItem"
INVALID_ITEM = "tmapi_crawler.items.InvalidItem"
_BATCH_PLACEHOLDER = re.compile(r"%\(batch_time\)s|%\(batch_id\)")


def batch_uri(uri: str) -> str:
    """*uri* with ``-%(batch_id)05d`` before its extension, unless it has one."""
    if _BATCH_PLACEHOLDER.search(uri):
        return uri
    path = PurePosixPath(uri)
    return uri[: len(uri) - len(path.suffix)] + "-%(batch_id)05d" + path.suffix


class DefaultFeed:
    def update_settings(self, settings: BaseSettings) -> None:
        feeds: dict[Any, dict[str, Any]] = {
            uri: dict(options) for uri, options in settings.getdict("FEEDS").items()
        }
        priority = max(settings.getpriority("FEEDS") or 0, SETTINGS_PRIORITIES["addon"])
        default = settings.get("TMAPI_DEFAULT_FEED")
        if default and not feeds:
            if settings.getint("FEED_EXPORT_BATCH_ITEM_COUNT"):
                default = batch_uri(default)
            feeds[default] = {"format": "jsonlines"}
        if quarantine := settings.get("TMAPI_QUARANTINE_FEED"):
            for options in feeds.values():
                options.setdefault("item_classes", [PRODUCT_ITEM])
            feeds[quarantine] = {"format": "jsonlines", "item_classes": [INVALID_ITEM]}
        if feeds:
            settings.set("FEEDS", feeds, priority=priority)


class FeedFailureAlert:
    """Ends the log with one plain line when a feed could not be stored.

    Scrapy logs each failed upload with a traceback and counts it in
    ``feedexport/failed_count/<storage>`` (which makes the exit code 5); this
    says what it means for the user, last, where it is seen.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.stats: StatsCollector = crawler.stats  # type: ignore[assignment]
        crawler.signals.connect(self.check, signal=signals.feed_exporter_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FeedFailureAlert:
        return cls(crawler)

    def check(self) -> None:
        failed = sum(
            value
            for key, value in self.stats.get_stats().items()
            if key.startswith("feedexport/failed_count/")
        )
        if failed:
            logger.error(
                "%d feed(s) could NOT be stored: the items of this run did not "
                "reach them (see 'Error storing' above); exit code 5",
                failed,
            )
