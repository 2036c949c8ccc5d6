"""Benchmark 4: memory as the crawl grows.

a) Peak RSS of the item path (the project's ``ITEM_PIPELINES`` and the JSON
   Lines exporter, bench/pipeline_path.py) for 10k, 100k and 1M synthetic
   items, each in a fresh process: apart from the dedupe state it must stay
   flat. Baseline: the 10k run.
b) The dedupe state alone, for 1M and 10M random 12-digit item_ids (the size
   of 1688's): bytes per id in the process (resident memory before and after,
   in a fresh process each) against a plain ``set`` of the same ints, and in
   Redis (``INFO memory`` used_memory before and after, on a redis-server of
   its own) against a plain Redis set.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.common import Row, Section, check, count_lines, run_process
from bench.redis_server import RedisServer
from bench.seen_bytes import random_ids

TARGET_BYTES = 16
BUDGET_SECONDS = 300  # CPU allowed for one item-path run
BATCH = 10_000


@dataclass(frozen=True)
class Params:
    crawl_items: tuple[int, ...]
    seen_ids: tuple[int, ...]


SIZES = {
    "tiny": Params(crawl_items=(1_000, 5_000), seen_ids=(20_000,)),
    "quick": Params(crawl_items=(10_000, 100_000), seen_ids=(1_000_000,)),
    "full": Params(
        crawl_items=(10_000, 100_000, 1_000_000), seen_ids=(1_000_000, 10_000_000)
    ),
}


def process_bytes(kind: str, count: int, workdir: Path) -> float:
    """Bytes per id of a seen-set in a fresh process (bench/seen_bytes.py)."""
    argv = [sys.executable, "-m", "bench.seen_bytes", kind, str(count)]
    run = run_process(argv, log=workdir / f"seen-{kind}-{count}.log")
    check(run.returncode == 0, f"seen_bytes {kind} exited {run.returncode}", run)
    return float(json.loads(run.output.strip().splitlines()[-1])["bytes_per_id"])


def redis_bytes(
    ids: list[int], fill: Callable[[redis.Redis, list[int]], None]
) -> float:
    """Bytes per id in a fresh Redis after *fill* stored the ids."""
    with RedisServer() as server:
        client = redis.Redis(port=server.port)
        before = int(client.info("memory")["used_memory"])
        fill(client, ids)
        used = int(client.info("memory")["used_memory"]) - before
        client.close()
    return used / len(ids)


def plain_redis_set(client: redis.Redis, ids: list[int]) -> None:
    for start in range(0, len(ids), BATCH):
        client.sadd("plain:seen", *ids[start : start + BATCH])


def seen_set_in_redis(client: redis.Redis, ids: list[int]) -> None:
    """The ids as RedisSeenSet stores them. Its ``add`` is one round trip per
    id (as in a crawl); here the same members go in one SADD per bucket, to the
    buckets its own formula picks (bucket = id % buckets, member = id // buckets),
    so 10M ids take seconds, not many minutes."""
    from tmapi_crawler.dedupe import RedisSeenSet  # issue 4: on main once `items` lands

    seen = RedisSeenSet(client, "bench:seen", expected_items=len(ids))
    buckets: dict[int, list[int]] = {}
    for item_id in ids:
        buckets.setdefault(item_id % seen.buckets, []).append(item_id // seen.buckets)
    pipe = client.pipeline(transaction=False)
    for number, (bucket, members) in enumerate(buckets.items(), 1):
        pipe.sadd(f"{seen.key}:{bucket}", *members)
        if number % 1000 == 0:
            pipe.execute()
    pipe.execute()
    del buckets
    check(all(i in seen for i in ids[:100]), "RedisSeenSet does not find its ids")


def crawl_rss(items: int, workdir: Path) -> tuple[int, float]:
    """Peak RSS (bytes) and CPU seconds of the item path for *items* items."""
    output = workdir / f"items-{items}.jsonl"
    argv = [sys.executable, "-m", "bench.pipeline_path", str(items), str(output)]
    run = run_process(argv, log=workdir / f"items-{items}.log")
    check(run.returncode == 0, f"item path exited {run.returncode}", run)
    check(count_lines(output) == items, "item path lost items", run)
    output.unlink()
    return run.max_rss, run.cpu


def run(size: str, workdir: Path, repeat: int | None = None) -> Section:
    p = SIZES[size]
    section = Section(
        number=4,
        title="Memory as the crawl grows",
        setup=(
            "a) bench/pipeline_path.py pushes N synthetic items (the documentation's "
            "sample items with distinct random item_ids and the crawl context) "
            "through the project's `ITEM_PIPELINES`, built by Scrapy's "
            "ItemPipelineManager as in a crawl, and the `jsonlines` feed exporter, "
            "in a fresh process per N; peak RSS from `wait4`. No HTTP and no "
            "engine (1M items through HTTP would need a simulator holding 1M "
            "products and most of an hour on 2 cores). b) the seen-sets alone, "
            "random 12-digit ids, one run each (memory is deterministic here)."
        ),
        baseline=(
            "a) the 10k-item run's peak RSS. b) a plain Python `set` of the same "
            "ints (resident memory before and after) and a plain Redis set "
            "(`SADD`) of the same ids."
        ),
        reproduce="python -m bench --only 4",
    )
    small = p.crawl_items[0]
    rss: dict[int, tuple[int, float]] = {}
    for n in p.crawl_items:
        if rss and rss[small][1] / small * n > BUDGET_SECONDS:
            section.notes.append(
                f"{n:,} items skipped: the item path costs "
                f"{rss[small][1] / small * 1e6:.0f} us of CPU per item here, "
                f"{rss[small][1] / small * n / 60:.0f} min for {n:,}, over this "
                f"run's budget of {BUDGET_SECONDS / 60:.0f} min."
            )
            continue
        rss[n] = crawl_rss(n, workdir)
    base_rss = rss[small][0]
    largest = max(rss)
    for n, (peak, cpu) in rss.items():
        growth = (peak - base_rss) / max(1, n - small)
        row = Row(
            f"peak RSS, {n:,} items (MiB)",
            f"{peak / 2**20:.1f}",
            f"{base_rss / 2**20:.1f}",
            f"{peak / base_rss:.2f}",
        )
        if n != small:
            row.measure += f"; growth {growth:.1f} bytes/item over {small:,}"
        if n == largest and n != small:
            row.target = f"growth <= {TARGET_BYTES} bytes/item (the dedupe state)"
            row.met = growth <= TARGET_BYTES
        section.rows.append(row)
        section.notes.append(f"{n:,} items: {cpu:.0f} s CPU in the item path.")
    section.notes.append(
        "The in-process seen-set has a fixed part (its bucket table, a few MB) "
        "that fills in between 10k and 100k ids; so growth per item is judged "
        "on the largest run, where that fixed part is spread over every item."
    )

    if importlib.util.find_spec("tmapi_crawler.dedupe") is None:
        section.notes.append(
            "b) pending: tmapi_crawler/dedupe.py (issue 4, branch `items`) is not "
            "on main yet."
        )
        section.pending = "dedupe seen-sets (issue 4) not on main yet"
        return section
    for count in p.seen_ids:
        ours = process_bytes("memory", count, workdir)
        plain = process_bytes("set", count, workdir)
        section.rows.append(
            Row(
                f"seen-set in the process, {count:,} ids (bytes/id)",
                f"{ours:.1f}",
                f"{plain:.1f}",
                f"{plain / ours:.1f}x smaller",
                f"≤ {TARGET_BYTES}",
                ours <= TARGET_BYTES,
            )
        )
        ids = random_ids(count)
        ours = redis_bytes(ids, seen_set_in_redis)
        plain = redis_bytes(ids, plain_redis_set)
        section.rows.append(
            Row(
                f"seen-set in Redis, {count:,} ids (bytes/id)",
                f"{ours:.1f}",
                f"{plain:.1f}",
                f"{plain / ours:.1f}x smaller",
                f"≤ {TARGET_BYTES}",
                ours <= TARGET_BYTES,
            )
        )
        del ids
    return section
