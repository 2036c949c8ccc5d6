"""Where items go: the default feed, the quarantine feed, batch file names.

:class:`DefaultFeed` (run by the project's add-on, :mod:`tmapi_crawler.addon`):

- unless ``-o``/``-O`` or ``FEEDS`` name a feed, it adds ``TMAPI_DEFAULT_FEED``
  (one JSON Lines file per run under ``out/``, named after the spider and the
  start time); with ``FEED_EXPORT_BATCH_ITEM_COUNT`` set, the default name
  gets ``-%(batch_id)05d`` before its extension, so each batch has its own file;
- every feed that names no ``item_filter`` of its own turns item details
  away (:class:`NoDetailsFilter`);
- with ``TMAPI_QUARANTINE_FEED`` set, it adds that feed for
  :class:`~tmapi_crawler.contract.items.InvalidItem` only, and restricts every
  other feed that names no ``item_classes`` to
  :class:`~tmapi_crawler.contract.items.ProductItem`, so invalid items never
  mix with good ones (Scrapy's own ``item_classes`` feed option does the sorting);
- with ``TMAPI_DETAILS_FEED`` set, it adds that feed for
  :class:`~tmapi_crawler.contract.details.DetailItem` only (item details).

:func:`feed_problems` refuses, before any call, feeds Scrapy would reject.
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from scrapy.extensions.feedexport import ItemFilter
from scrapy.settings import SETTINGS_PRIORITIES

from tmapi_crawler.contract.details import DetailItem

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


logger = logging.getLogger(__name__)


PRODUCT_ITEM = "tmapi_crawler.contract.items.ProductItem"


INVALID_ITEM = "tmapi_crawler.contract.items.InvalidItem"
DETAIL_ITEM = "tmapi_crawler.contract.details.DetailItem"
NO_DETAILS = f"{__name__}.NoDetailsFilter"
# the details feed's format by its extension: CSV has a row per variant
DETAIL_FORMATS = {".csv": "details_csv", ".parquet": "parquet"}


class NoDetailsFilter(ItemFilter):
    """Scrapy's item filter (``item_classes``), item details turned away."""

    def accepts(self, item: Any) -> bool:
        return not isinstance(item, DetailItem) and super().accepts(item)


def details_feed_options(uri: str) -> dict[str, Any]:
    """``TMAPI_DETAILS_FEED``'s format: JSON Lines, unless it ends in
    ``.csv`` (a row per variant) or ``.parquet`` (variants as a list)."""
    suffix = PurePosixPath(uri.split("?")[0]).suffix.lower()
    return {"format": DETAIL_FORMATS.get(suffix, "jsonlines")}


_BATCH_PLACEHOLDER = re.compile(r"%\(batch_time\)s|%\(batch_id\)")


def batch_uri(uri: str) -> str:
    """*uri* with ``-%(batch_id)05d`` before its extension, unless it has one."""
    if _BATCH_PLACEHOLDER.search(uri):
        return uri
    path = PurePosixPath(uri)
    return uri[: len(uri) - len(path.suffix)] + "-%(batch_id)05d" + path.suffix


def feed_problems(settings: BaseSettings) -> list[str]:
    """Feeds Scrapy would refuse (and then export nothing at all, after the
    paid calls): an unknown format, batches without a batch name. Checked
    before any call."""
    problems = []
    formats = sorted(k for k, v in settings.getwithbase("FEED_EXPORTERS").items() if v)
    batch = settings.getint("FEED_EXPORT_BATCH_ITEM_COUNT")
    for uri, options in settings.getdict("FEEDS").items():
        name = str(uri)
        kind = options.get("format") or PurePosixPath(name).suffix.removeprefix(".")
        if kind not in formats:
            problems.append(
                f"feed {name!r}: format {kind!r} is unknown; "
                f"give one of {', '.join(formats)} as its 'format'"
            )
        count = options.get("batch_item_count", batch)
        if count and not _BATCH_PLACEHOLDER.search(name):
            problems.append(
                f"feed {name!r}: batches of {count} items need %(batch_id)d "
                "or %(batch_time)s in the feed name"
            )
    if not problems:
        return []
    return ["invalid feeds, nothing was sent:\n  " + "\n  ".join(problems)]


class DefaultFeed:
    preflight = staticmethod(feed_problems)

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
        # no item details in a feed that names no filter of its own: they
        # go to their own feed
        for options in feeds.values():
            options.setdefault("item_filter", NO_DETAILS)
        if details := settings.get("TMAPI_DETAILS_FEED"):
            feeds[details] = {
                **details_feed_options(details),
                "item_classes": [DETAIL_ITEM],
                "batch_item_count": 0,
                "fields": None,
            }
        if quarantine := settings.get("TMAPI_QUARANTINE_FEED"):
            for options in feeds.values():
                options.setdefault("item_classes", [PRODUCT_ITEM])
            feeds[quarantine] = {
                "format": "jsonlines",
                "item_classes": [INVALID_ITEM],
                "batch_item_count": 0,  # one file, whatever the other feeds do
                "fields": None,  # every field, whatever FEED_EXPORT_FIELDS says
            }
        if feeds:
            settings.set("FEEDS", feeds, priority=priority)
