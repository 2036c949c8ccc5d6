"""The learned limit of calls in flight, remembered between runs.

:class:`LearnedLimit` owns it: when the crawler is built it reads the limit
the last run with the same token ended at (the error middleware's window
starts there, proven, and goes on adapting), the window tells it what held
as the run goes, and it keeps that when the spider closes. Where: with
``REDIS_URL`` in the Redis hash ``tmapi:limits``, shared by every worker;
else ``TMAPI_LIMITS_FILE`` if set, ``<JOBDIR>/tmapi-limits.json`` with a job
directory, or ``$XDG_CACHE_HOME/tmapi-crawler/limits.json``
(:mod:`tmapi_crawler.contract.limits`). Keyed by a digest of the token, never
the token. ``TMAPI_REMEMBER_LIMIT = False`` neither reads nor keeps it.
Stats: ``tmapi/concurrency/remembered`` (where the run started) and
``tmapi/concurrency/learned`` (where it ended, kept for the next run).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from tmapi_crawler.contract import limits
from tmapi_crawler.contract.credentials import token_from, token_key
from tmapi_crawler.contract.operator_settings import problems_of, switch
from tmapi_crawler.contract.stats import CONCURRENCY_LEARNED, CONCURRENCY_REMEMBERED
from tmapi_crawler.distributed.connection import connect_from, redis_url

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


class LearnedLimit:
    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        return problems_of(lambda: switch(settings, "TMAPI_REMEMBER_LIMIT"))

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        token = token_from(settings)
        if not token or not switch(settings, "TMAPI_REMEMBER_LIMIT"):
            raise NotConfigured
        if not switch(settings, "TMAPI_ADAPTIVE_CONCURRENCY"):
            raise NotConfigured  # nothing is learnt
        self.crawler = crawler
        self.key = token_key(token)
        self.redis = connect_from(settings) if redis_url(settings) else None
        given = settings.get("TMAPI_LIMITS_FILE")
        self.path = (
            Path(given)
            if given
            else limits.default_path(os.environ, settings.get("JOBDIR"))
        )
        self.remembered = self._read()
        self.ended_at: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LearnedLimit:
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    @property
    def where(self) -> str:
        """Where the limit is kept, for the log and the summary."""
        if self.redis is not None:
            return f"Redis hash {limits.REDIS_KEY}, field {self.key}"
        return f"{self.path}, entry {self.key}"

    def held(self, limit: int) -> None:
        """The window's proven level now: what the next run starts from."""
        self.ended_at = limit

    def _read(self) -> int | None:
        try:
            if self.redis is not None:
                stored = self.redis.hget(limits.REDIS_KEY, self.key)
                return limits.parse_limit(stored)
            return limits.read_limit(self.path, self.key)
        except Exception as exc:  # no memory is no reason not to crawl
            logger.warning("Could not read the learned limit (%s): %s", self.where, exc)
            return None

    def spider_closed(self) -> None:
        stats = self.crawler.stats
        assert stats is not None
        if self.remembered is not None:
            stats.set_value(CONCURRENCY_REMEMBERED, self.remembered)
        if self.ended_at is None:  # no call held: nothing learnt
            return
        stats.set_value(CONCURRENCY_LEARNED, self.ended_at)
        try:
            if self.redis is not None:
                self.redis.hset(limits.REDIS_KEY, self.key, str(self.ended_at))
            else:
                limits.write_limit(self.path, self.key, self.ended_at)
        except Exception as exc:
            logger.warning("Could not keep the learned limit (%s): %s", self.where, exc)
            return
        logger.info(
            "Calls in flight: started at %s, ended at %d (kept in %s)",
            self.remembered or "the default start",
            self.ended_at,
            self.where,
        )
