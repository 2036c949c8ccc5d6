"""The shared crawl in Redis: its keys, and the leased queue every worker pops.

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

:class:`LeasedQueue` is a scrapy-redis queue (``push``, ``pop(timeout)``,
``len``, ``clear``, on scrapy-redis's ``Base``), but a pop is a lease: the
entry moves from ``queue`` to ``leases`` in one Lua script, and is
acknowledged (removed everywhere) once its answer was processed. A lease past
its deadline belongs to a worker that died: any worker puts it back in the
queue. A push given a fingerprint adds it to the seen-set in the same script,
so a lost connection can neither lose a request nor queue it twice.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy_redis.queue import Base

from tmapi_crawler.meta import REDELIVERED, from_jsonable, jsonable

if TYPE_CHECKING:
    import redis
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler


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


class RequestJson:
    """scrapy-redis's serializer (``dumps``/``loads``) of ``Request.to_dict()``,
    as JSON rather than pickle: the Lua scripts read it, and no code runs when
    it is read back. Bytes (headers, body) are kept exactly, as latin-1 text;
    meta that is not JSON, or belongs to one attempt, is left out."""

    @staticmethod
    def dumps(data: dict[str, Any]) -> str:
        return json.dumps(jsonable(data), separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes) -> dict[str, Any]:
        return from_jsonable(json.loads(text))


_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""


# KEYS of the lease scripts: queue, leases, requests, owners (CrawlKeys.leased)
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


# KEYS: dupefilter, queue, requests; ARGV: fingerprint ('' for none), entry,
# score, request
PUSH = """
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""


POP = (
    _NOW_MS
    + """
while true do
  local first = redis.call('ZPOPMIN', KEYS[1])
  if #first == 0 then return false end
  local id = first[1]
  local data = redis.call('HGET', KEYS[3], id)
  if data then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), id)
    redis.call('HSET', KEYS[4], id, ARGV[2])
    return {id, data}
  end
end
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


# KEYS: queue, leases, jobs, then the keys deleted; ARGV[1] '1': only if
# nothing is queued, leased or waiting as a job
CLEAR = """
if ARGV[1] == '1' and (redis.call('ZCARD', KEYS[1]) > 0
    or redis.call('ZCARD', KEYS[2]) > 0 or redis.call('LLEN', KEYS[3]) > 0) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6])
return 1
"""


@dataclass(frozen=True)
class SharedState:
    queued: int
    leased: int
    jobs: int

    @property
    def empty(self) -> bool:
        return not (self.queued or self.leased or self.jobs)


class LeasedQueue(Base):
    """A scrapy-redis queue of the crawl under *key* (a ``tmapi:<crawl id>``
    prefix; scrapy-redis fills in ``%(spider)s``) whose pops are leases of
    ``TMAPI_LEASE_SECONDS``, so a worker's death loses nothing.

    :attr:`held` maps every request this worker leased to its entry, until
    it is acknowledged (:meth:`ack`) or given back (:meth:`release`).
    """

    def __init__(
        self, server: redis.Redis, spider: Spider, key: str, serializer: Any = None
    ) -> None:
        if serializer not in (None, RequestJson):
            raise TypeError(
                "LeasedQueue stores requests as JSON (its Lua scripts read them): "
                f"no other serializer ({serializer!r})"
            )
        super().__init__(server, spider, key, serializer=RequestJson)
        self.keys = CrawlKeys(self.key)
        settings = spider.settings
        self.lease_ms = int(settings.getfloat("TMAPI_LEASE_SECONDS") * 1000)
        self.poll_interval = settings.getfloat("TMAPI_POLL_INTERVAL")
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held: dict[Request, str] = {}
        self._push = server.register_script(PUSH)
        self._pop = server.register_script(POP)
        self._renew = server.register_script(RENEW)
        self._requeue = server.register_script(REQUEUE_EXPIRED)
        self._release = server.register_script(RELEASE)
        self._clear = server.register_script(CLEAR)

    # --- scrapy-redis's queue interface ------------------------------------

    def __len__(self) -> int:
        """Requests waiting in the shared queue (leased ones not counted)."""
        return self.server.zcard(self.keys.queue)

    def push(self, request: Request, fingerprint: str | None = None) -> bool:
        """Queue *request*; given its *fingerprint*, only if that is new to the
        crawl's seen-set, in the same atomic step. Whether it was queued."""
        entry = uuid.uuid4().hex
        data = self._encode_request(request)
        keys = [self.keys.dupefilter, self.keys.queue, self.keys.requests]
        args = [fingerprint or "", entry, -request.priority, data]
        return bool(self._push(keys=keys, args=args))

    def pop(self, timeout: float = 0) -> Request | None:
        """Lease the first request (by priority), or None if there is none;
        with *timeout*, wait up to that many seconds for one, looking every
        ``TMAPI_POLL_INTERVAL`` (a lease is a script, and scripts cannot block
        as scrapy-redis's ``BRPOP`` does). The scheduler never waits."""
        deadline = time.monotonic() + timeout
        while True:
            popped = self._pop(keys=self.keys.leased, args=[self.lease_ms, self.worker])
            if popped:
                entry, data = popped
                request = self._decode_request(data)
                self.held[request] = entry.decode()
                return request
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(self.poll_interval, left))

    def clear(self, only_if_finished: bool = False) -> bool:
        """Forget the crawl: its queue, leases and seen-set; with
        *only_if_finished*, only if nothing is queued, leased or waiting as a
        job anywhere (checked in the same atomic step), so the next crawl under
        this id starts afresh. Whether it was cleared."""
        k = self.keys
        keys = [k.queue, k.leases, k.jobs, k.requests, k.owners, k.dupefilter]
        cleared = bool(self._clear(keys=keys, args=[int(only_if_finished)]))
        if cleared:
            self.held.clear()
        return cleared

    # --- leases --------------------------------------------------------------

    def ack(self, requests: Iterable[Request]) -> None:
        """Done with these leased requests: gone from the queue, the leases
        and the data. Kept in :attr:`held` if Redis fails (acks repeat safely)."""
        requests = list(requests)
        if not requests:
            return
        entries = [self.held[request] for request in requests]
        pipe = self.server.pipeline(transaction=True)
        pipe.zrem(self.keys.queue, *entries)
        pipe.zrem(self.keys.leases, *entries)
        pipe.hdel(self.keys.requests, *entries)
        pipe.hdel(self.keys.owners, *entries)
        pipe.execute()
        for request in requests:
            del self.held[request]

    def release(self, requests: Iterable[Request]) -> int:
        """Give leased, unprocessed requests back to the queue at once; how
        many went back."""
        requests = list(requests)
        if not requests:
            return 0
        entries = [self.held[request] for request in requests]
        released = int(self._release(keys=self.keys.leased, args=entries))
        for request in requests:
            del self.held[request]
        return released

    def renew(self) -> None:
        """Push back the deadline of every lease this worker holds."""
        if self.held:
            args: list[int | str] = [self.lease_ms, *self.held.values()]
            self._renew(keys=[self.keys.leases], args=args)

    def requeue_expired(self) -> int:
        """Put leases past their deadline (of any worker) back in the queue;
        how many."""
        return int(self._requeue(keys=self.keys.leased))

    def release_orphans(self) -> int:
        """Give back the entries Redis says this worker holds but it never
        received (a pop whose answer a lost connection swallowed); how many."""
        held = set(self.held.values())
        owners = self.server.hgetall(self.keys.owners)
        orphans = [
            entry.decode()
            for entry, worker in owners.items()
            if worker.decode() == self.worker and entry.decode() not in held
        ]
        if not orphans:
            return 0
        return int(self._release(keys=self.keys.leased, args=orphans))

    def state(self) -> SharedState:
        pipe = self.server.pipeline(transaction=False)
        pipe.zcard(self.keys.queue)
        pipe.zcard(self.keys.leases)
        pipe.llen(self.keys.jobs)
        queued, leased, jobs = pipe.execute()
        return SharedState(queued, leased, jobs)
