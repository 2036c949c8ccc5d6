"""One window of calls in flight per account, shared by every worker on it.

A concurrency limit belongs to the token (API.md), so workers that share one
share one window: :class:`SharedWindow` keeps the window's state and every
call's place in Redis, under ``tmapi:account:<token key>:`` (a digest of the
token, :func:`tmapi_crawler.contract.credentials.token_key`; workers on other
tokens have windows of their own):

=========  =====  ==========================================================
``state``  hash   the window (``size``, ``proven``, ``wait``...: the fields
                  of :class:`~tmapi_crawler.contract.concurrency.ConcurrencyWindow`)
``places`` zset   place -> lease deadline (Redis time, ms): the calls in flight
``calls``  hash   place -> ``level:seq:sent`` of each call in flight
``recent`` zset   ``seq:sent:back`` of the last calls that succeeded (proofs)
=========  =====  ==========================================================

Taking a place is one Lua script: drop the places whose lease ran out (a
worker killed mid-call gives its places back that way), then admit the call
if the account's window does, its level counted over every worker. A call
above the proven level is a probe: never a second call at an unproven level
while one is unanswered (by the same rule as one process), and past the
opening window (``TMAPI_CONCURRENCY_START`` + 1, the levels every run tries
at once) the account has one probe at a time, whichever worker sent it. A
window that grew past the levels proven (climbing: each round that held
triples it) would otherwise fill every unproven level together, each a 503
where the limit is lower: a probe for a higher limit costs the account at
most one 503, however many workers share it. Settling a place (its answer
read) is another, which also says, for a success, how many of the account's
successful calls were surely in flight together with it, over every worker's
calls, by the same rule as one process
(:func:`~tmapi_crawler.contract.concurrency.held_together`; the worker says
how long after taking its place the call went out, and how long ago its
answer came back: a busy worker does both late). What an answer teaches is
applied to the state by the same pure logic as one process, under ``WATCH``
so two workers' answers cannot overwrite each other. Times are the
Redis server's, so every worker reads one clock.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import redis

from tmapi_crawler.contract.concurrency import (
    INF,
    PROOF_MARGIN,
    Call,
    ConcurrencyWindow,
)

if TYPE_CHECKING:
    from redis.commands.core import Script

logger = logging.getLogger(__name__)

RECENT = 64  # successful calls kept for proofs
# how clearly another call overlapped, as a share of a call's duration (the
# same as one process's: PROOF_MARGIN)
SHARED_MARGIN = PROOF_MARGIN
ACCOUNT_CEILING = 4096
STATE = (
    *("size", "proven", "step", "held", "successes", "wait", "last_cut", "peak"),
    *("refuted", "climbing"),
)

TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for _, place in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[3], place)
  redis.call('ZREM', KEYS[2], place)
end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
local proven = tonumber(redis.call('HGET', KEYS[1], 'proven'))
if not size or not proven then return -1 end
local level = redis.call('ZCARD', KEYS[2]) + 1
if level > size then return false end
if level > proven then
  local opening = tonumber(ARGV[3])
  for _, call in ipairs(redis.call('HVALS', KEYS[3])) do
    local other = tonumber(string.match(call, '^(%d+):'))
    if other == level or (level > opening and other > proven) then
      return false
    end
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], level .. ':' .. seq .. ':' .. now)
return {level, seq, now, proven}
"""

SETTLE = """
local call = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if not call then return false end
redis.call('HDEL', KEYS[2], ARGV[1])
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local level, seq, sent = string.match(call, '^(%d+):(%d+):(%d+)$')
level, seq = tonumber(level), tonumber(seq)
sent = math.min(now, tonumber(sent) + tonumber(ARGV[6]))
local back = math.max(sent, now - tonumber(ARGV[5]))
if ARGV[4] ~= '1' then return {level, sent, back} end
local clearly = tonumber(ARGV[2]) * (back - sent)
local alive = {{sent, back}}
for _, other in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local _, s, b = string.match(other, '^(%d+):(%d+):(%d+)$')
  s, b = tonumber(s), tonumber(b)
  if b > sent + clearly then alive[#alive + 1] = {s, b} end
end
local together = 1
for _, moment in ipairs(alive) do
  local t = moment[1]
  if t >= sent and t < back - clearly then
    local n = 0
    for _, life in ipairs(alive) do
      if life[1] <= t and t < life[2] - clearly then n = n + 1 end
    end
    together = math.max(together, n)
  end
end
redis.call('ZADD', KEYS[3], seq, seq .. ':' .. sent .. ':' .. back)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -1 - tonumber(ARGV[3]))
return {together, sent, back}
"""


class SharedWindow(ConcurrencyWindow):
    """A :class:`ConcurrencyWindow` whose state and places live in Redis.

    The pure logic is the parent's; this worker's ``ceiling`` bounds its own
    calls in flight (``local_ceiling``), not the account's window. ``lease``
    (seconds) is how long a place outlives a worker that died holding it."""

    poll = 0.01  # seconds between looks while calls wait: others free places

    def __init__(
        self,
        client: redis.Redis,
        account: str,
        lease: float,
        ceiling: int,
        start: int = 4,
        probe_after: int = 32,
        remembered: int | None = None,
    ) -> None:
        # the account's window has no ceiling of its own: each worker's
        # ceiling bounds its calls, and a level no worker reaches is never proven
        super().__init__(
            ACCOUNT_CEILING, start, probe_after=probe_after, remembered=remembered
        )
        self.local_ceiling = ceiling
        self.opening = start + 1  # the levels tried at once at the start
        self.client = client
        prefix = f"tmapi:account:{account}"
        self.keys = {k: f"{prefix}:{k}" for k in ("state", "places", "calls", "recent")}
        self.lease_ms = int(lease * 1000)
        self.worker = uuid.uuid4().hex[:12]
        self._take: Script = client.register_script(TAKE)
        self._settle: Script = client.register_script(SETTLE)
        self._mine: dict[str, Call] = {}
        self._down_until = 0.0  # Redis failed: no look before this (monotonic)
        self._unfreed: list[str] = []  # places Redis was away to free
        # the state is set (or read) at the first take: building the crawler
        # needs no Redis yet, so the pre-flight checks can say it is away
        self._initial = {name: _dump(getattr(self, name)) for name in STATE}

    def _init_state(self) -> None:
        """The first worker on the account sets the start (or after the
        state was lost: a Redis restarted empty)."""
        for name, value in self._initial.items():
            self.client.hsetnx(self.keys["state"], name, value)
        self._load(self.client.hgetall(self.keys["state"]))

    def _redis(self, action: Any) -> Any:
        """*action()*, or None while Redis is away (then no look for a second:
        the gate keeps waiting, the reactor is not held up by retries)."""
        if time.monotonic() < self._down_until:
            return None
        try:
            return action()
        except redis.RedisError as exc:
            if not self._down_until:
                logger.warning(
                    "Redis is unreachable for the shared window (%s); calls "
                    "wait until it is back",
                    type(exc).__name__,
                )
            self._down_until = time.monotonic() + 1.0
            return None

    @property
    def in_flight(self) -> int:
        return len(self._mine)

    def take(self, in_use: int, now: float) -> Call | None:
        if in_use >= self.local_ceiling:
            return None
        place = f"{self.worker}:{uuid.uuid4().hex[:8]}"
        if self._unfreed and not self._redis(self._free_unfreed):
            return None
        keys = [self.keys["state"], self.keys["places"], self.keys["calls"]]

        def take() -> Any:
            return self._take(keys=keys, args=[place, self.lease_ms, self.opening])

        taken = self._redis(take)
        if taken == -1:  # no state yet (or Redis restarted empty): set it
            self._redis(self._init_state)
            taken = self._redis(take)
        if not taken:
            return None
        self._down_until = 0.0
        level, seq, sent, proven = (int(x) for x in taken)
        call = Call(
            seq,
            level,
            sent / 1000,
            probe=level > proven,
            place=place,
            took=time.monotonic(),
        )
        self.probes += call.probe
        self._mine[place] = call
        return call

    def settle(self, call: Call) -> None:
        self._settled(call)

    def _settled(
        self, call: Call, succeeded: bool = False, sent_at: float | None = None
    ) -> tuple[int, float, float] | None:
        """Free *call*'s place; (for a success: how many successful calls were
        surely in flight with it, else its level; sent; back) the first time,
        None if it was settled already (or its lease ran out)."""
        if self._mine.pop(call.place, None) is None:
            return None
        keys = [self.keys["places"], self.keys["calls"], self.keys["recent"]]
        # how long after taking its place the call went out, and how long
        # ago its answer came back (ms): a busy worker does both late
        held = 0.0 if sent_at is None else max(0.0, sent_at - call.took)
        late = 0.0 if call.back == INF else time.monotonic() - call.back
        args: list[str | float] = [call.place, SHARED_MARGIN, RECENT, int(succeeded)]
        args += [int(late * 1000), int(held * 1000)]
        done = self._redis(lambda: self._settle(keys=keys, args=args))
        if done is None and self._down_until:  # free it once Redis is back
            self._unfreed.append(call.place)
        if not done:
            return None
        level, sent, answered = (int(x) for x in done)
        return level, sent / 1000, answered / 1000

    def _free_unfreed(self) -> bool:
        """Free the places of calls that ended while Redis was away (else they
        would hold the account's window until their lease ran out)."""
        with self.client.pipeline(transaction=False) as pipe:
            for place in self._unfreed:
                pipe.zrem(self.keys["places"], place)
                pipe.hdel(self.keys["calls"], place)
            pipe.execute()
        self._unfreed.clear()
        return True

    def on_success(self, call: Call, now: float, sent_at: float | None = None) -> None:
        if settled := self._settled(call, succeeded=True, sent_at=sent_at):
            self._update(lambda: self.held_at(settled[0]))

    def on_throttle(self, call: Call, now: float, in_flight_at_send: int) -> None:
        if settled := self._settled(call):
            # what this worker counted says nothing of the others' calls
            self._update(lambda: self.refused_at(call.level, settled[1], settled[2]))

    def _update(self, change: Any) -> None:
        """Apply *change* to the account's state, as one transaction (not at
        all while Redis is away: a lesson lost, not a call)."""
        self._redis(lambda: self._transaction(change))

    def _transaction(self, change: Any) -> None:
        for _ in range(20):
            with self.client.pipeline() as pipe:
                try:
                    pipe.watch(self.keys["state"])
                    self._load(pipe.hgetall(self.keys["state"]))
                    change()
                    pipe.multi()
                    pipe.hset(
                        self.keys["state"],
                        mapping={name: _dump(getattr(self, name)) for name in STATE},
                    )
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _load(self, state: Mapping[Any, Any]) -> None:
        for name in STATE:
            raw = state.get(name.encode())
            if raw is not None:
                with contextlib.suppress(ValueError):
                    setattr(self, name, _load(name, raw.decode()))


def _dump(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def _load(name: str, text: str) -> Any:
    if name in ("held", "climbing"):
        return text == "1"
    if name == "last_cut":
        return float(text)
    if name == "refuted":
        return int(text) if text else None
    return int(text)
