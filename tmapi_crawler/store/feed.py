"""The changes feed (``TMAPI_CHANGES_FEED``): one record per change, to any
Scrapy feed URI (a path, ``file://``, ``s3://``...), through the crawler's
feed storages (``FEED_STORAGES``) and exporters (``FEED_EXPORTERS``): the
format is the URI's suffix (``.jsonl``, ``.csv``, ``.parquet``...), JSON
Lines otherwise. ``%(name)s`` and ``%(time)s`` are filled as in ``FEEDS``.

It is written whole, once, by the process that judges the run, from the
changes the store holds for the run (every process's, every run of a job):
a kill before then leaves nothing to repair, and a close tried again
writes the whole file again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from scrapy.utils.misc import build_from_crawler, load_object

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)
DEFAULT_FORMAT = "jsonlines"


def feed_format(uri: str, exporters: Mapping[str, Any]) -> str:
    suffix = PurePosixPath(urlparse(uri).path).suffix.lstrip(".")
    return suffix if suffix in exporters else DEFAULT_FORMAT


class ChangesFeed:
    def __init__(self, crawler: Crawler, uri: str) -> None:
        self.crawler = crawler
        self.template = uri
        self.exporters = crawler.settings.getwithbase("FEED_EXPORTERS")
        self.storages = crawler.settings.getwithbase("FEED_STORAGES")
        self.uri = uri
        self.storage: Any = None
        self.file: Any = None
        self.exporter: Any = None
        self.count = 0

    def open(self, spider: Spider) -> None:
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace(":", "-")
        self.uri = self.template % {"name": spider.name, "time": stamp}
        scheme = urlparse(self.uri).scheme
        storage_class = load_object(self.storages.get(scheme, self.storages["file"]))
        self.storage = build_from_crawler(
            storage_class, self.crawler, self.uri, feed_options={"overwrite": True}
        )
        self.file = self.storage.open(spider)
        exporter_class = load_object(
            self.exporters[feed_format(self.uri, self.exporters)]
        )
        self.exporter = exporter_class(self.file, encoding="utf-8")
        self.exporter.start_exporting()

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Records as :meth:`~tmapi_crawler.store.changes.Change.as_dict`
        makes them (the store's read back: the same)."""
        if self.exporter is None:
            return
        for record in records:
            self.exporter.export_item(dict(record))
            self.count += 1

    def close(self) -> Deferred | None:
        """Finish the file and hand it to its storage (an upload, for S3)."""
        if self.exporter is None:
            return None
        self.exporter.finish_exporting()
        self.exporter = None
        result = self.storage.store(self.file)
        logger.info("%d changes in the changes feed %s", self.count, self.uri)
        return result
