"""The Redis client of every distributed part: scrapy-redis's, made to fail fast.

Clients come from scrapy-redis's connection helpers (``REDIS_URL``,
``REDIS_PARAMS`` and its other ``REDIS_*`` settings, ``redis_cls``), with
:data:`FAIL_FAST` under ``REDIS_PARAMS``: short timeouts and no hidden
retries, where scrapy-redis's own defaults wait 30 s and redis-py 8 retries 3
times with backoff. The scheduler rides out outages itself (logged, retried
with backoff) without blocking the reactor; the item dedupe keeps an item it
could not check. ``REDIS_PARAMS`` overrides any of these options.
"""

from __future__ import annotations

import re
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from scrapy.settings import BaseSettings
from scrapy_redis.connection import (
    SETTINGS_PARAMS_MAP,
    get_redis,
    get_redis_from_settings,
)

from tmapi_crawler.contract.credentials import redis_url

# The project's client options, under REDIS_PARAMS (scrapy-redis's defaults
# are 30 s timeouts, and redis-py's own retries apply).
FAIL_FAST: dict[str, Any] = {
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    "retry": Retry(NoBackoff(), 0),
}


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


def connect(url: str) -> redis.Redis:
    """A fail-fast client of *url* (for tools that have no Scrapy settings)."""
    return get_redis(url=url, **FAIL_FAST)


def connect_from(settings: BaseSettings) -> redis.Redis:
    """The fail-fast client the settings describe, through scrapy-redis's
    ``get_redis_from_settings``: ``REDIS_PARAMS`` over :data:`FAIL_FAST`."""
    url = redis_url(settings)
    if not url:
        raise ValueError("REDIS_URL is not set")
    ours = BaseSettings({name: settings.get(name) for name in SETTINGS_PARAMS_MAP})
    ours.set("REDIS_URL", url)  # from the environment, maybe
    ours.set("REDIS_PARAMS", {**FAIL_FAST, **settings.getdict("REDIS_PARAMS")})
    return get_redis_from_settings(ours)
