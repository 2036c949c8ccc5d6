"""The item dedupe: an item whose ``item_id`` was seen before is dropped.

:class:`DedupePipeline` (after validation) drops an item whose ``item_id`` was
seen before in this run (or, with ``REDIS_URL``, by any worker sharing the
Redis, and by earlier runs with ``TMAPI_DEDUPE_PERSIST``), counted in
``tmapi/items/duplicate``. With ``REDIS_URL`` it talks to Redis through the
distributed crawl's client
(:func:`~tmapi_crawler.backends.redis_client`: ``REDIS_PARAMS``,
short timeouts, no hidden retries): an item Redis could not check is kept, not
lost. A page taken back from a worker that died (``tmapi_redelivered``) has
its ids let through once more.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from twisted.internet.task import LoopingCall

from tmapi_crawler.backends import RunBackends, redis_client
from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.contract.endpoints import ITEMS, Endpoint
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.contract.seen import (
    MemorySeenSet,
    RedisSeenSet,
    SeenSet,
    clear_redis_keys,
)
from tmapi_crawler.contract.stats import (
    DEDUPE_ERRORS,
    ITEMS_DUPLICATE,
    PAGES_REDELIVERED,
)
from tmapi_crawler.exceptions import DuplicateItem
from tmapi_crawler.meta import REDELIVERED, TMAPI
from tmapi_crawler.pipelines.validation import _where
from tmapi_crawler.signals import answer_read, items_delivered_before

if TYPE_CHECKING:
    from redis import Redis
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

    from tmapi_crawler.contract.api import Page


logger = logging.getLogger(__name__)


HEARTBEAT_TTL = 60  # seconds a worker counts as alive after its last heartbeat


class DedupePipeline:
    """Drops items already seen; in memory, or in Redis when ``REDIS_URL`` is set."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.settings = settings
        self.stats: StatsCollector = crawler.stats
        self.across_languages = settings.getbool("TMAPI_DEDUPE_ACROSS_LANGUAGES")
        self.redis_url = RunBackends.of(crawler).redis
        self.persist = settings.getbool("TMAPI_DEDUPE_PERSIST")
        name = crawler.spidercls.name if crawler.spidercls else "spider"
        key = settings.get("TMAPI_DEDUPE_KEY")
        self.key = key % {"spider": name}
        self.expected_items = settings.getint("TMAPI_DEDUPE_EXPECTED_ITEMS")
        self.redis: Redis | None = None
        # what Redis raises, once there is one (redis-py is imported by a
        # distributed crawl alone, see tmapi_crawler.backends)
        self.errors: tuple[type[Exception], ...] = ()
        self.seen: dict[str, SeenSet] = {}
        self._worker_key = f"{self.key}:worker:{uuid.uuid4().hex}"
        self._beat: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.answer_read, signal=answer_read)
        crawler.signals.connect(
            pipeline.items_delivered_before, signal=items_delivered_before
        )
        return pipeline

    def answer_read(self, request: Request, endpoint: Endpoint, answer: Any) -> None:
        """A page taken back from a worker that died: its ids may be marked
        seen without its feed ever writing them, so they go through once more."""
        if endpoint is ITEMS and request.meta.get(REDELIVERED):
            page: Page = answer
            self.stats.inc_value(PAGES_REDELIVERED)
            language = CategoryQuery.model_validate(
                request.meta[TMAPI]["query"]
            ).language
            self.forget([item.get("item_id") for item in page.items], language)

    def _live_workers(self) -> list[str]:
        assert self.redis is not None
        pattern = f"{self.key}:worker:*"
        return [k.decode() for k in self.redis.scan_iter(match=pattern, count=1000)]

    def _heartbeat(self) -> None:
        """Say this worker is alive; a killed worker's key expires on its own."""
        assert self.redis is not None
        try:
            self.redis.set(self._worker_key, 1, ex=HEARTBEAT_TTL)
        except self.errors as error:
            logger.warning("Redis heartbeat failed: %s", error)

    def open_spider(self) -> None:
        if not self.redis_url:
            return
        from redis import RedisError

        self.errors = (RedisError,)
        client = redis_client(self.settings)
        try:
            client.ping()
        except RedisError as error:  # the URL may hold a password: not logged
            logger.error("REDIS_URL cannot be reached, nothing was sent: %s", error)
            raise
        self.redis = client
        where = "kept across runs" if self.persist else "cleared when the run ends"
        logger.info("Seen item ids in Redis under %s:* (%s)", self.key, where)
        if self.persist:
            return
        if not self._live_workers():
            # the first worker of a fresh run: forget what a killed run left
            clear_redis_keys(self.redis, self.key)
        self._beat = LoopingCall(self._heartbeat)
        self._beat.start(HEARTBEAT_TTL / 3, now=True)

    def close_spider(self) -> None:
        if self.redis is None:
            return
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        try:
            if not self.persist:
                self.redis.delete(self._worker_key)
                if not self._live_workers():  # the last worker of the run
                    clear_redis_keys(self.redis, self.key)
        except self.errors as error:
            logger.error("Could not clear the seen item ids in Redis: %s", error)
        self.redis.close()

    def _seen_set(self, language: str | None) -> SeenSet:
        scope = "all" if self.across_languages else (language or "none")
        if scope not in self.seen:
            if self.redis is None:
                self.seen[scope] = MemorySeenSet()
            else:
                key = f"{self.key}:{scope}"
                self.seen[scope] = RedisSeenSet(self.redis, key, self.expected_items)
        return self.seen[scope]

    def forget(self, item_ids: list[Any], language: str | None) -> None:
        """Let these ids through once more: a page taken back from a worker that
        died may have marked them seen without its feed ever writing them."""
        seen = self._seen_set(language)
        if not isinstance(seen, RedisSeenSet):
            return
        for raw in item_ids:
            with contextlib.suppress(ValueError, TypeError, *self.errors):
                seen.discard(int(str(raw).strip()))

    def items_delivered_before(self, items: list[dict[str, Any]]) -> None:
        """Items an earlier run of the job wrote (read back from the feeds by
        :mod:`tmapi_crawler.resume.extension`): their ids count as seen."""
        for item in items:
            with contextlib.suppress(KeyError, TypeError, ValueError, *self.errors):
                self._seen_set(item.get("language")).add(int(item["item_id"]))

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, ProductItem):
            return item
        try:
            new = self._seen_set(item.language).add(item.item_id)
        except self.errors as error:
            # a possible duplicate is better than a lost item
            self.stats.inc_value(DEDUPE_ERRORS)
            logger.error("Redis failed, %s kept unchecked: %s", _where(item), error)
            return item
        if not new:
            self.stats.inc_value(ITEMS_DUPLICATE)
            raise DuplicateItem(f"duplicate {_where(item)}")
        return item
