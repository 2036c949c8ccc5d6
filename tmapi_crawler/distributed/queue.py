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

import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from scrapy.utils.request import request_from_dict
from scrapy_redis.queue import Base as ScrapyRedisQueue

from tmapi_crawler.meta import ATTEMPT_KEYS, REDELIVERED

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlKeys:
    """The Redis keys of one crawl."""

    prefix: str

    @classmethod
    def of(cls, crawl_id: str) -> CrawlKeys:
        return cls(f"tmapi:{crawl_id}")

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> CrawlKeys:
        assert crawler.spidercls is not None
        crawl_id = crawler.settings.get("TMAPI_CRAWL_ID") or crawler.spidercls.name
        return cls.of(crawl_id)

    @property
    def queue(self) -> str:
        return f"{self.prefix}:queue"

    @property
    def requests(self) -> str:
        return f"{self.prefix}:requests"

    @property
    def leases(self) -> str:
        return f"{self.prefix}:leases"

    @property
    def dupefilter(self) -> str:
        return f"{self.prefix}:dupefilter"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def owners(self) -> str:
        return f"{self.prefix}:owners"

    @property
    def leased(self) -> list[str]:
        """The keys the lease scripts work on."""
        return [self.queue, self.leases, self.requests, self.owners]


def request_to_json(request: Request, spider: Spider) -> str:
    """The request as JSON, through Scrapy's ``Request.to_dict`` (not pickle)."""
    data = request.to_dict(spider=spider)
    data["headers"] = {
        key.decode("latin-1"): [value.decode("latin-1") for value in values]
        for key, values in data["headers"].items()
    }
    data["body"] = data["body"].decode("latin-1")
    data["meta"] = _json_meta(data["meta"])
    return json.dumps(data, separators=(",", ":"))


def request_from_json(text: str | bytes, spider: Spider) -> Request:
    data = json.loads(text)
    data["headers"] = {
        key.encode("latin-1"): [value.encode("latin-1") for value in values]
        for key, values in data["headers"].items()
    }
    data["body"] = data["body"].encode("latin-1")
    return request_from_dict(data, spider=spider)


def _json_meta(meta: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for key, value in meta.items():
        if key in ATTEMPT_KEYS:  # meaningless to another worker
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            logger.warning("meta[%r] is not JSON: left out of the shared queue", key)
            continue
        kept[key] = value
    return kept


_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""


# KEYS of every script but PUSH and FINISH: queue, leases, requests, owners
_REQUEUE = f"""
local function requeue(id)
  redis.call('HDEL', KEYS[4], id)
  local data = redis.call('HGET', KEYS[3], id)
  if data then
    local ok, request = pcall(cjson.decode, data)
    local score = 0
    if ok and request.priority then score = -request.priority end
    if ok and type(request.meta) == 'table' then
      -- taken back from a worker: its items may be marked seen but never written
      request.meta.{REDELIVERED} = true
      redis.call('HSET', KEYS[3], id, cjson.encode(request))
    end
    redis.call('ZADD', KEYS[1], score, id)
  end
end
"""


PUSH = """
local queued = {}
for i = 1, #ARGV, 4 do
  local fingerprint = ARGV[i]
  if fingerprint == '' or redis.call('SADD', KEYS[1], fingerprint) == 1 then
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 3])
    redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i + 1])
    table.insert(queued, 1)
  else
    table.insert(queued, 0)
  end
end
return queued
"""


POP = (
    _NOW_MS
    + """
local deadline = now + tonumber(ARGV[2])
local out = {}
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local data = redis.call('HGET', KEYS[3], id)
  if data then
    redis.call('ZADD', KEYS[2], deadline, id)
    redis.call('HSET', KEYS[4], id, ARGV[3])
    table.insert(out, id)
    table.insert(out, data)
  end
end
return out
"""
)


RENEW = (
    _NOW_MS
    + """
local deadline = now + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i])
end
return #ARGV - 1
"""
)


REQUEUE_EXPIRED = (
    _NOW_MS
    + _REQUEUE
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 500)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  requeue(id)
end
return #ids
"""
)


RELEASE = (
    _REQUEUE
    + """
local released = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[2], ARGV[i]) == 1 then
    requeue(ARGV[i])
    released = released + 1
  end
end
return released
"""
)


FINISH = """
if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0
   and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class SharedState:
    queued: int
    leased: int
    jobs: int

    @property
    def empty(self) -> bool:
        return not (self.queued or self.leased or self.jobs)


class LeasedQueue(ScrapyRedisQueue):
    """scrapy-redis's per-spider queue, reworked: JSON requests, and pops that
    lease instead of delete, so a worker's death loses nothing."""

    def __init__(
        self,
        server: redis.Redis,
        spider: Spider,
        keys: CrawlKeys,
        lease_ms: int,
        worker: str,
    ) -> None:
        super().__init__(server, spider, keys.queue, serializer=json)
        self.keys = keys
        self.lease_ms = lease_ms
        self.worker = worker
        self._push = server.register_script(PUSH)
        self._pop = server.register_script(POP)
        self._renew = server.register_script(RENEW)
        self._requeue = server.register_script(REQUEUE_EXPIRED)
        self._release = server.register_script(RELEASE)
        self._finish = server.register_script(FINISH)

    def _encode_request(self, request: Request) -> str:
        return request_to_json(request, self.spider)

    def _decode_request(self, encoded_request: bytes) -> Request:
        return request_from_json(encoded_request, self.spider)

    def __len__(self) -> int:
        return self.server.zcard(self.keys.queue)

    def push(self, request: Request) -> None:
        self.push_many([(request, None)])

    def push_many(self, requests: list[tuple[Request, str | None]]) -> list[bool]:
        """Queue each request whose fingerprint (if given) is new to the
        seen-set, in one atomic step; which ones were queued."""
        args: list[Any] = []
        for request, fingerprint in requests:
            entry = uuid.uuid4().hex
            data = self._encode_request(request)
            args += [fingerprint or "", entry, -request.priority, data]
        keys = [self.keys.dupefilter, self.keys.queue, self.keys.requests]
        return [bool(flag) for flag in self._push(keys=keys, args=args)]

    def pop(self, timeout: int = 0) -> Request | None:
        """scrapy-redis's interface; never blocks (``timeout`` is ignored)."""
        popped = self.lease(1)
        return popped[0][1] if popped else None

    def lease(self, count: int) -> list[tuple[str, Request]]:
        """Up to *count* requests, each leased for ``lease_ms``: (entry, request)."""
        args = [count, self.lease_ms, self.worker]
        flat = self._pop(keys=self.keys.leased, args=args)
        return [
            (flat[i].decode(), self._decode_request(flat[i + 1]))
            for i in range(0, len(flat), 2)
        ]

    def ack(self, entries: list[str]) -> None:
        """Done with these entries: gone from the queue, the leases and the data."""
        if not entries:
            return
        pipe = self.server.pipeline(transaction=True)
        pipe.zrem(self.keys.queue, *entries)
        pipe.zrem(self.keys.leases, *entries)
        pipe.hdel(self.keys.requests, *entries)
        pipe.hdel(self.keys.owners, *entries)
        pipe.execute()

    def renew(self, entries: list[str]) -> None:
        if entries:
            self._renew(keys=[self.keys.leases], args=[self.lease_ms, *entries])

    def requeue_expired(self) -> int:
        """Put leases past their deadline back in the queue; how many."""
        return int(self._requeue(keys=self.keys.leased))

    def release(self, entries: list[str]) -> int:
        """Give leased, unprocessed entries back to the queue at once."""
        if not entries:
            return 0
        return int(self._release(keys=self.keys.leased, args=entries))

    def orphans(self, held: set[str]) -> list[str]:
        """Entries leased to this worker that it does not know of: taken by a
        pop whose answer a lost connection swallowed."""
        owners = self.server.hgetall(self.keys.owners)
        mine = [e.decode() for e, w in owners.items() if w.decode() == self.worker]
        return [entry for entry in mine if entry not in held]

    def state(self) -> SharedState:
        pipe = self.server.pipeline(transaction=False)
        pipe.zcard(self.keys.queue)
        pipe.zcard(self.keys.leases)
        pipe.llen(self.keys.jobs)
        queued, leased, jobs = pipe.execute()
        return SharedState(queued, leased, jobs)

    def finish(self) -> bool:
        """Forget the crawl's seen-set if nothing is left anywhere, so the next
        crawl under this id starts afresh; whether it was finished."""
        k = self.keys
        keys = [k.queue, k.leases, k.jobs, k.dupefilter, k.requests, k.owners]
        return bool(self._finish(keys=keys))

    def clear(self) -> None:
        self.server.delete(*self.keys.leased)
