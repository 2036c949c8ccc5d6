"""Where items go: the default feed, the quarantine feed, batch file names.

:class:`DefaultFeed` (run by the project's add-on, :mod:`tmapi_crawler.addon`):

- unless ``-o``/``-O`` or ``FEEDS`` name a feed, it adds ``TMAPI_DEFAULT_FEED``
  (one JSON Lines file per run under ``out/``, named after the spider and the
  start time); with ``FEED_EXPORT_BATCH_ITEM_COUNT`` set, the default name
  gets ``-%(batch_id)05d`` before its extension, so each batch has its own file;
- with ``TMAPI_QUARANTINE_FEED`` set, it adds that feed for
  :class:`~tmapi_crawler.contract.items.InvalidItem` only, and restricts every
  other feed that names no ``item_classes`` to
  :class:`~tmapi_crawler.contract.items.ProductItem`, so invalid items never
  mix with good ones (Scrapy's own ``item_classes`` feed option does the sorting).

:func:`feed_problems` refuses, before any call, feeds Scrapy would reject.
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from scrapy.settings import SETTINGS_PRIORITIES

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


logger = logging.getLogger(__name__)


PRODUCT_ITEM = "tmapi_crawler.contract.items.ProductItem"


INVALID_ITEM = "tmapi_crawler.contract.items.InvalidItem"


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
