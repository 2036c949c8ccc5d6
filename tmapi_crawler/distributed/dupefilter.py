"""The shared crawl state in Redis: keys, JSON requests, a leased queue, seen-set.

One crawl lives under ``tmapi:<crawl id>:`` (the crawl id is ``TMAPI_CRAWL_ID``,
by default the spider name):

==============  =====  =========================================================
``queue``       zset   entry id -> score (``-priority``: lower pops first)
``requests``    hash   entry id -> the request as JSON (never the token)
``leases``      zset   entry id -> deadline (Redis server time, ms) while taken
``dupefilter``  set    request fingerprints (Scrapy's ``REQUEST_FINGERPRINTER``)
``owners``      hash   entry id -> the worker holding its lease
``jobs``        list   JSON jobs for the ``category_jobs`` spider
==============  =====  =========================================================

A pop moves entries from ``queue`` to ``leases`` in one Lua script; the entry
is acknowledged (removed everywhere) once its answer was processed. A lease
past its deadline belongs to a worker that died: any worker puts it back in
the queue. Built on scrapy-redis's queue and dupefilter classes, with what
they do wrong on Scrapy 2.19 replaced (see the README, "Distributed crawling").
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import redis
from scrapy_redis.dupefilter import RFPDupeFilter

from tmapi_crawler.distributed.connection import connect_from
from tmapi_crawler.distributed.queue import CrawlKeys

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)


class RedisDupeFilter(RFPDupeFilter):
    """scrapy-redis's seen-set, fingerprinting with Scrapy's own
    ``REQUEST_FINGERPRINTER`` and counting ``dupefilter/filtered``."""

    def __init__(self, crawler: Crawler, server: redis.Redis, key: str) -> None:
        super().__init__(
            server, key, debug=crawler.settings.getbool("DUPEFILTER_DEBUG")
        )
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedisDupeFilter:
        keys = CrawlKeys.for_crawler(crawler)
        return cls(crawler, connect_from(crawler.settings), keys.dupefilter)

    def request_fingerprint(self, request: Request) -> str:
        return self.crawler.request_fingerprinter.fingerprint(request).hex()

    def close(self, reason: str = "") -> None:
        """Keep the seen-set: the crawl may go on in other workers."""

    def log(self, request: Request, spider: Spider) -> None:
        if self.debug or self.logdupes:
            logger.debug(
                "Filtered duplicate request: %(request)s", {"request": request}
            )
            self.logdupes = self.debug
        if self.crawler.stats:
            self.crawler.stats.inc_value("dupefilter/filtered")
