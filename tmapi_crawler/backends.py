"""The run's backends, chosen once: what this run keeps where.

A run is one of three kinds, read from the settings in this one place:

==============  ==========================  ==================================
kind            when                        what it keeps where
==============  ==========================  ==================================
``local``       neither below               everything in this process's
                                            memory; the learned limit in the
                                            user's cache directory
``job``         ``JOBDIR``                  the journal, the request queue
                                            and the seen-set, the learned
                                            limit and the spool in the job
                                            directory; the store's log there
``distributed`` ``REDIS_URL`` (a setting    the request queue, the seen-set,
                or the environment)         the item dedupe, the window of
                                            calls in flight and the learned
                                            limit in Redis; the spool in
                                            ``TMAPI_SPOOL_DIR``
==============  ==========================  ==================================

The add-on (:mod:`tmapi_crawler.addon`) wires the components of the kind;
each component asks :meth:`RunBackends.of` what it needs and never reads
``REDIS_URL`` or ``JOBDIR`` itself. A combination that cannot work is refused
here, before any call (:meth:`RunBackends.preflight`). A distributed crawl's
components get their Redis client from :func:`redis_client`: redis-py is
imported by distributed crawls alone (it costs ~70 ms of CPU at every start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from tmapi_crawler.contract import limits
from tmapi_crawler.contract.credentials import redis_url, store_uri

if TYPE_CHECKING:
    from redis import Redis
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

SPOOL_NAME = "spool"  # under the job directory


def redis_client(settings: BaseSettings) -> Redis:
    """The fail-fast client of the crawl's Redis
    (:func:`tmapi_crawler.distributed.connection.connect_from`), for a
    distributed crawl's components; imported here, when one asks."""
    from tmapi_crawler.distributed.connection import connect_from

    return connect_from(settings)


_OF_CRAWLER: WeakKeyDictionary[Crawler, RunBackends] = WeakKeyDictionary()


@dataclass(frozen=True)
class RunBackends:
    redis: str | None  # REDIS_URL: a distributed crawl
    jobdir: Path | None  # JOBDIR: a job, resumable
    store: str | None  # TMAPI_STORE: the catalog store
    spool_dir: Path | None  # TMAPI_SPOOL_DIR
    limits_file: Path | None  # TMAPI_LIMITS_FILE
    crawl_id: str | None  # TMAPI_CRAWL_ID

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> RunBackends:
        jobdir = settings.get("JOBDIR")
        spool = settings.get("TMAPI_SPOOL_DIR")
        limits_file = settings.get("TMAPI_LIMITS_FILE")
        return cls(
            redis=redis_url(settings) or None,
            jobdir=Path(jobdir) if jobdir else None,
            store=store_uri(settings) or None,
            spool_dir=Path(spool) if spool else None,
            limits_file=Path(limits_file) if limits_file else None,
            crawl_id=settings.get("TMAPI_CRAWL_ID") or None,
        )

    @classmethod
    def of(cls, crawler: Crawler) -> RunBackends:
        """The crawler's, read from its settings once."""
        if (found := _OF_CRAWLER.get(crawler)) is None:
            found = _OF_CRAWLER[crawler] = cls.from_settings(crawler.settings)
        return found

    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        """The combinations that cannot work, refused before any call."""
        backends = RunBackends.from_settings(settings)
        problems = []
        if backends.redis and backends.store and backends.store.startswith("sqlite:"):
            problems.append(
                "TMAPI_STORE=sqlite:/// with REDIS_URL: workers on several "
                "machines cannot share one SQLite file, and workers on one "
                "machine would each judge the crawl; use TMAPI_STORE="
                "postgresql://USER@HOST/DBNAME, a server every worker reaches"
            )
        return problems

    @property
    def kind(self) -> str:
        """``distributed``, ``job`` or ``local`` (see the module doc)."""
        if self.redis:
            return "distributed"
        return "job" if self.jobdir else "local"

    @property
    def distributed(self) -> bool:
        return bool(self.redis)

    def store_job(self, spider_name: str) -> str | None:
        """What makes several processes one run of the store: a shared crawl
        (its id), a job directory; None: this run alone."""
        if self.redis:
            return "redis:" + (self.crawl_id or spider_name)
        if self.jobdir:
            return f"jobdir:{self.jobdir.resolve()}"
        return None

    def spool_root(self) -> Path | None:
        """Where feeds that upload spool their items: ``JOBDIR/spool`` in a
        job, ``TMAPI_SPOOL_DIR`` in a distributed crawl; None otherwise
        (Scrapy's temporary files)."""
        if self.jobdir:
            return self.jobdir / SPOOL_NAME
        if self.redis and self.spool_dir:
            return self.spool_dir
        return None

    def limits_path(self, environ: Any = os.environ) -> Path:
        """The file of learned limits (without Redis)."""
        if self.limits_file:
            return self.limits_file
        return limits.default_path(environ, str(self.jobdir) if self.jobdir else None)
