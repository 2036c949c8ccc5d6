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
import os
import re
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


logger = logging.getLogger(__name__)


def redis_url(settings: BaseSettings) -> str | None:
    """``REDIS_URL`` from the settings, else the environment."""
    return settings.get("REDIS_URL") or os.environ.get("REDIS_URL") or None


def redis_problems(settings: BaseSettings) -> list[str]:
    """Why ``REDIS_URL`` cannot work, if it cannot; checked before any call."""
    url = redis_url(settings)
    if url is None:
        return []
    try:
        redis.connection.parse_url(url)
    except ValueError as exc:
        return [f"REDIS_URL={safe_url(url)!r}: {exc}"]
    return []


def safe_url(url: str) -> str:
    """The URL for log lines, without a password."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def connect(url: str, params: dict[str, Any] | None = None) -> redis.Redis:
    """A client that fails fast: the scheduler handles outages itself, without
    blocking the reactor in redis-py's own retries (3 by default in redis-py 8)."""
    options: dict[str, Any] = {
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "retry": Retry(NoBackoff(), 0),
        **(params or {}),
    }
    return redis.Redis.from_url(url, **options)


def connect_from(settings: BaseSettings) -> redis.Redis:
    url = redis_url(settings)
    if not url:
        raise ValueError("REDIS_URL is not set")
    return connect(url, settings.getdict("REDIS_PARAMS"))
