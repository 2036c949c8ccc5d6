"""Bytes per id of the dedupe seen-sets (``python bench/seen_sets.py 1000000``).

Memory: tracemalloc of a :class:`MemorySeenSet` holding N random 12-digit
ids (the size of 1688 item ids), against a plain ``set`` of the same ints.
Redis: ``used_memory`` of a fresh ``redis-server`` on a free loopback port
before and after a :class:`RedisSeenSet` holds the same ids (buckets sized
with ``TMAPI_DEDUPE_EXPECTED_ITEMS`` = N), and the encodings Redis chose.
"""

from __future__ import annotations

import random
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import RedisServer
from tmapi_crawler.dedupe import MemorySeenSet, RedisSeenSet

BATCH = 10_000


def ids(count: int) -> list[int]:
    rng = random.Random(7)
    return [rng.randrange(500_000_000_000, 1_000_000_000_000) for _ in range(count)]


def memory_bytes(values: list[int], factory: type) -> int:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    seen = factory()
    for value in values:
        seen.add(value)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used


def redis_bytes(values: list[int]) -> tuple[int, Counter]:
    server = RedisServer(Path(tempfile.mkdtemp()) / "redis.log").start()
    try:
        client = Redis.from_url(server.url)
        before = int(client.info("memory")["used_memory"])
        seen = RedisSeenSet(client, "bench:seen", expected_items=len(values))
        for start in range(0, len(values), BATCH):
            pipe = client.pipeline(transaction=False)
            for value in values[start : start + BATCH]:
                bucket, member = divmod(value, seen.buckets)[::-1]
                pipe.sadd(f"{seen.key}:{bucket}", member)
            pipe.execute()
        used = int(client.info("memory")["used_memory"]) - before
        sample = range(0, seen.buckets, max(1, seen.buckets // 200))
        encodings = Counter(
            client.object("encoding", f"{seen.key}:{b}").decode() for b in sample
        )
        return used, encodings
    finally:
        server.stop()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    values = ids(count)
    unique = len(set(values))
    for name, factory in (("MemorySeenSet", MemorySeenSet), ("set()", set)):
        used = memory_bytes(values, factory)
        print(f"{name:14} {unique:>10,} ids {used / unique:6.1f} bytes/id")
    used, encodings = redis_bytes(values)
    print(f"{'RedisSeenSet':14} {unique:>10,} ids {used / unique:6.1f} bytes/id")
    print(f"  bucket encodings (sampled): {dict(encodings)}")


if __name__ == "__main__":
    main()
