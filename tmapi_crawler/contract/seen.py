"""Sets of seen item ids, compact in memory or shared in Redis.

Both split an id into a bucket (``id % buckets``) and a member
(``id // buckets``): the pair gives the id back, so no two ids collide, and a
member is small enough to be stored in 4 bytes.

- :class:`MemorySeenSet` keeps one sorted ``array('I')`` of members per
  bucket (4 bytes per id; members that do not fit 32 bits go to a small
  overflow set). Looking an id up is a binary search in one bucket of a few
  dozen entries per million ids. With few buckets (a set per category) the members take
  8 bytes, so any id fits.
- :class:`DistinctIds` counts the distinct ids of one category as the API
  sent them (for the coverage report): integers compactly, anything else as
  text.
- :class:`RedisSeenSet` keeps one Redis set per bucket, ``<key>:<bucket>``.
  With a bucket count chosen so that buckets stay under Redis'
  ``set-max-intset-entries`` (512), Redis stores every bucket as an intset:
  4 bytes per id while members stay under 2**31. ``SADD`` answers whether the
  id was new, atomically, for every worker sharing the Redis.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from tmapi_crawler.contract.api import int_of_digits

if TYPE_CHECKING:
    from redis import Redis

MEMORY_BUCKETS = 16_381  # a prime: ids that share a pattern still spread out
SMALL_BUCKETS = 61  # one category's ids: ~4 KB fixed, then 8 bytes per id
UINT32_LIMIT = 2**32
UINT64_LIMIT = 2**64
REDIS_BUCKET_FILL = 256  # ids per Redis bucket on average; intsets hold up to 512
DELETE_BATCH = 1000


class SeenSet(Protocol):
    def add(self, item_id: int) -> bool:
        """Record *item_id*; True if it had not been seen before."""
        ...

    def __len__(self) -> int: ...


class MemorySeenSet:
    """Seen ids of one process: about 4 bytes per id plus ~1.5 MB of buckets
    (8 bytes per id and a few KB with ``member_bytes=8`` and few buckets)."""

    def __init__(self, buckets: int = MEMORY_BUCKETS, member_bytes: int = 4) -> None:
        self.buckets = buckets
        self._typecode, self._limit = (
            ("I", UINT32_LIMIT) if member_bytes == 4 else ("Q", UINT64_LIMIT)
        )
        self._members: list[array[int] | None] = [None] * buckets
        self._overflow: set[int] = set()
        self._count = 0

    def add(self, item_id: int) -> bool:
        bucket, member = item_id % self.buckets, item_id // self.buckets
        if member >= self._limit or item_id < 0:
            if item_id in self._overflow:
                return False
            self._overflow.add(item_id)
        else:
            members = self._members[bucket]
            if members is None:
                members = self._members[bucket] = array(self._typecode)
            at = bisect_left(members, member)
            if at < len(members) and members[at] == member:
                return False
            members.insert(at, member)
        self._count += 1
        return True

    def __contains__(self, item_id: int) -> bool:
        bucket, member = item_id % self.buckets, item_id // self.buckets
        if member >= self._limit or item_id < 0:
            return item_id in self._overflow
        members = self._members[bucket]
        if members is None:
            return False
        at = bisect_left(members, member)
        return at < len(members) and members[at] == member

    def __len__(self) -> int:
        return self._count


class DistinctIds:
    """The distinct item ids of one category, as the API sent them: an integer
    and its string of digits are one id, kept in 8 bytes; other values (a
    broken id) are kept as text. A ``set`` of the ids as strings cost ~100
    bytes each, the crawl's largest growth (``BENCHMARKS.md``, benchmark 4)."""

    def __init__(self) -> None:
        self._ids: MemorySeenSet | None = None  # made by the first id
        self._other: set[str] = set()

    def add(self, raw: object) -> bool:
        """Count *raw*; True if it had not been seen in this category."""
        if isinstance(raw, str) and (digits := int_of_digits(raw.strip())) is not None:
            raw = digits
        if isinstance(raw, int) and not isinstance(raw, bool):
            if self._ids is None:
                self._ids = MemorySeenSet(SMALL_BUCKETS, member_bytes=8)
            return self._ids.add(raw)
        text = str(raw)
        if text in self._other:
            return False
        self._other.add(text)
        return True

    def update(self, raws: Iterable[object]) -> None:
        for raw in raws:
            self.add(raw)

    def __len__(self) -> int:
        return (len(self._ids) if self._ids else 0) + len(self._other)


def redis_buckets(expected_items: int) -> int:
    """Buckets for about *expected_items* ids, each small enough to be an intset."""
    return max(1, math.ceil(expected_items / REDIS_BUCKET_FILL)) | 1  # odd


class RedisSeenSet:
    """Seen ids in Redis under ``<key>:<bucket>``, shared by every worker.

    The bucket count is stored in ``<key>:buckets`` by the first user of the
    key and read back by every later one, so workers and later runs agree on
    where an id lives even if their expected size differs.
    """

    def __init__(self, client: Redis, key: str, expected_items: int) -> None:
        self.client = client
        self.key = key
        self.client.set(f"{key}:buckets", redis_buckets(expected_items), nx=True)
        self.buckets = int(self.client.get(f"{key}:buckets"))  # type: ignore[arg-type]

    def add(self, item_id: int) -> bool:
        bucket, member = item_id % self.buckets, item_id // self.buckets
        return bool(self.client.sadd(f"{self.key}:{bucket}", member))

    def __contains__(self, item_id: int) -> bool:
        bucket, member = item_id % self.buckets, item_id // self.buckets
        # the digits, as redis-py sends an int anyway
        return bool(self.client.sismember(f"{self.key}:{bucket}", str(member)))

    def discard(self, item_id: int) -> None:
        bucket, member = item_id % self.buckets, item_id // self.buckets
        self.client.srem(f"{self.key}:{bucket}", member)

    def __len__(self) -> int:
        total = 0
        for start in range(0, self.buckets, DELETE_BATCH):
            pipe = self.client.pipeline(transaction=False)
            for bucket in range(start, min(start + DELETE_BATCH, self.buckets)):
                pipe.scard(f"{self.key}:{bucket}")
            total += sum(pipe.execute())
        return total


def clear_redis_keys(client: Redis, prefix: str) -> int:
    """Delete every key under ``<prefix>:``; how many were deleted."""
    deleted, batch = 0, []
    for key in client.scan_iter(match=f"{prefix}:*", count=DELETE_BATCH):
        batch.append(key)
        if len(batch) >= DELETE_BATCH:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted
