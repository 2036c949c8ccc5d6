"""The spool a killed run or a dead worker left, uploaded before this run
finishes (see :mod:`tmapi_crawler.feeds.storages`).

:class:`SpoolRecovery` runs with a spool directory (``JOBDIR``, or
``REDIS_URL`` with ``TMAPI_SPOOL_DIR``): when the spider opens, before any
call, it uploads what earlier runs of the job left spooled; when it closes it
looks again, for the files of a worker that died during this run (workers of
one machine share ``TMAPI_SPOOL_DIR``); when the feeds are closed it removes
this process's spool directory, empty by then unless an upload failed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from tmapi_crawler.contract.stats import SPOOL_FILES_UPLOADED, SPOOL_ITEMS_UPLOADED
from tmapi_crawler.feeds.storages import (
    ProcessSpool,
    Recovered,
    dead_spools,
    recover_spool,
    spool_root,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)


class SpoolRecovery:
    """Uploads the files dead processes left in the spool (see the module doc)."""

    def __init__(self, crawler: Crawler, root: Path) -> None:
        self.crawler = crawler
        self.root = root

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SpoolRecovery:
        root = spool_root(crawler.settings)
        if root is None:
            raise NotConfigured
        extension = cls(crawler, root)
        connect = crawler.signals.connect
        connect(extension.recover, signal=signals.spider_opened)
        connect(extension.recover, signal=signals.spider_closed)
        connect(extension.feeds_closed, signal=signals.feed_exporter_closed)
        return extension

    async def recover(self) -> None:
        if not dead_spools(self.root):  # the usual case: no thread needed
            return
        done = deferToThread(recover_spool, self.crawler, self.root)
        self._count(await maybe_deferred_to_future(done))

    def _count(self, done: Recovered) -> None:
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(SPOOL_FILES_UPLOADED, done.files)
        stats.inc_value(SPOOL_ITEMS_UPLOADED, done.items)
        if done.files:
            logger.warning(
                "Recovered %d spooled items (%d files) that killed runs had "
                "not uploaded",
                done.items,
                done.files,
            )

    def feeds_closed(self) -> None:
        spool = ProcessSpool._mine.pop(self.root, None)
        if spool is not None:
            spool.release()
