"""Dedupe by item_id: the Redis seen-set, the pipeline, and real crawls (memory,
Redis). The in-memory seen-sets: tests/contract/test_seen.py."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis import Redis
from scrapy.exceptions import DropItem

from tests.conftest import stat
from tests.crawlers import project_crawler
from tests.servers import free_port
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.contract.seen import RedisSeenSet, redis_buckets
from tmapi_crawler.pipelines.dedupe import DedupePipeline
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE, Catalog

SAMPLE = json.loads(SAMPLE_RESPONSE.read_text("utf-8"))["data"]["items"][0]


def some_ids(count: int, seed: int = 1) -> list[int]:
    return random.Random(seed).sample(range(500_000_000_000, 10**12), count)


# A crawl with REDIS_URL ends once the whole crawl has been idle for
# TMAPI_IDLE_CLOSE seconds (10 by default): these crawls run alone, or two at
# once kept overlapping by the simulator's latency, so half a second does.
IDLE = {"TMAPI_IDLE_CLOSE": 0.5}


def crawl_keys(client) -> list[bytes]:
    """Every key but the account's window, learned limit and page size served
    (``tmapi:account:*``, ``tmapi:limits``, ``tmapi:page_sizes``), which
    outlive a crawl on purpose."""
    kept = (b"tmapi:limits", b"tmapi:page_sizes")
    return [
        key
        for key in client.keys("*")
        if not key.startswith(b"tmapi:account:") and key not in kept
    ]


def test_redis_seen_set_is_shared_and_stored_as_intsets(redis_server):
    one, two = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    first = RedisSeenSet(one, "t:seen", expected_items=10_000)
    second = RedisSeenSet(two, "t:seen", expected_items=5)  # the stored count wins
    assert first.buckets == second.buckets == redis_buckets(10_000)
    ids = some_ids(10_000)
    assert all(first.add(i) for i in ids)
    assert not any(second.add(i) for i in ids)
    assert len(second) == len(ids)
    encodings = {one.object("encoding", f"t:seen:{b}") for b in range(first.buckets)}
    assert encodings == {b"intset"}


def item(item_id: int, language: str = "en", page: int = 1) -> ProductItem:
    return ProductItem.model_validate(
        {**SAMPLE, "item_id": item_id, "language": language, "page": page}
    )


@pytest.mark.parametrize("across_languages", [False, True])
def test_the_pipeline_drops_repeats_within_a_page_and_across_languages(
    across_languages,
):
    crawler = project_crawler(
        settings={"TMAPI_DEDUPE_ACROSS_LANGUAGES": across_languages}
    )
    pipeline = DedupePipeline.from_crawler(crawler)
    pipeline.open_spider()
    assert pipeline.process_item(item(1)).item_id == 1
    with pytest.raises(DropItem, match="duplicate item 1 of category"):
        pipeline.process_item(item(1))  # the same page again
    with pytest.raises(DropItem):
        pipeline.process_item(item(1, page=7))
    if across_languages:
        with pytest.raises(DropItem):
            pipeline.process_item(item(1, language="zh"))
    else:
        assert pipeline.process_item(item(1, language="zh")).language == "zh"
    assert crawler.stats.get_value("tmapi/items/duplicate") == 2 + across_languages


def test_a_crawl_drops_items_repeated_across_pages_and_categories(simulator, crawl):
    catalog = Catalog(sizes={41: 95, 42: 30})
    in_41, in_42 = catalog.expected(41)[50], catalog.expected(42)[3]
    # one item of category 42 is also listed in category 41 (as a string id)
    same = f'{in_42.item_id}:item_id="{in_41.item_id}"'
    sim = simulator(size=["41=95", "42=30"], repeat_rate=1.0, override_item=same)
    result = crawl(sim.url, {"cat_id": "41,42"})
    assert result.returncode == 0, result.log[-3000:]
    served = sum(c["items"] for c in sim.calls())
    ids = [i["item_id"] for i in result.items]
    assert len(ids) == len(set(ids)) == 95 + 29 < served
    assert in_41.item_id in ids and in_42.item_id not in ids
    assert stat(result.log, "tmapi/items/duplicate") == served - len(ids)


def test_the_same_item_in_two_languages_is_kept_once_per_language(simulator, crawl):
    sim = simulator(size="43=25")
    kept = crawl(sim.url, {"cat_id": "43", "language": "en,zh"})
    assert kept.returncode == 0, kept.log[-3000:]
    assert len(kept.items) == 50
    merged = crawl(
        sim.url,
        {"cat_id": "43", "language": "en,zh"},
        {"TMAPI_DEDUPE_ACROSS_LANGUAGES": "True"},
        output_name="merged.jsonl",
    )
    assert merged.returncode == 0, merged.log[-3000:]
    assert len({i["item_id"] for i in merged.items}) == len(merged.items) == 25


def test_two_crawls_sharing_a_redis_deliver_each_item_once(
    simulator, crawl, redis_server
):
    sim = simulator(size="44=45", repeat_rate=1.0)
    settings = {"REDIS_URL": redis_server.url, "TMAPI_DEDUPE_PERSIST": "True", **IDLE}
    first = crawl(sim.url, {"cat_id": "44"}, settings, output_name="first.jsonl")
    assert first.returncode == 0, first.log[-3000:]
    expected = {p.item_id for p in Catalog(sizes={44: 45}).expected(44)}
    assert {i["item_id"] for i in first.items} == expected
    assert len(first.items) == 45
    served_first = sum(c["items"] for c in sim.calls())  # with repeats in pages
    second = crawl(sim.url, {"cat_id": "44"}, settings, output_name="second.jsonl")
    assert second.returncode == 0, second.log[-3000:]
    assert second.items == []
    served_second = sum(c["items"] for c in sim.calls()) - served_first
    assert stat(second.log, "tmapi/items/duplicate") == served_second
    assert Redis.from_url(redis_server.url).keys("category:seen_items:*")


def test_without_persist_a_rerun_delivers_everything_and_redis_is_left_clean(
    simulator, crawl, redis_server
):
    sim = simulator(size="45=30")
    settings = {"REDIS_URL": redis_server.url, **IDLE}
    for name in ("first.jsonl", "second.jsonl"):
        result = crawl(sim.url, {"cat_id": "45"}, settings, output_name=name)
        assert result.returncode == 0, result.log[-3000:]
        assert len(result.items) == 30
        assert crawl_keys(Redis.from_url(redis_server.url)) == []


def test_an_unreachable_redis_stops_the_run_before_any_call(simulator, crawl):
    sim = simulator(size="46=30")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    result = crawl(sim.url, {"cat_id": "46"}, {"REDIS_URL": closed})
    assert result.returncode == 1
    assert "REDIS_URL cannot be reached, nothing was sent" in result.log
    assert sim.calls() == []


def test_when_redis_fails_mid_run_items_are_kept_not_lost(redis_server):
    crawler = project_crawler(settings={"REDIS_URL": redis_server.url})
    pipeline = DedupePipeline.from_crawler(crawler)
    pipeline.open_spider()
    assert pipeline.process_item(item(1)).item_id == 1
    redis_server.stop()
    assert pipeline.process_item(item(2)).item_id == 2
    assert crawler.stats.get_value("tmapi/dedupe/errors") == 1
    redis_server.start()  # empty again: no persistence
    pipeline.close_spider()


def test_when_redis_hangs_the_item_is_kept_and_the_crawl_goes_on(redis_server):
    """The dedupe's client is the distributed crawl's: REDIS_PARAMS honoured
    (redis-py's own client waited its 5 s, ignoring them, and got the answer
    of a Redis hung for 2 s), no hidden retry."""
    settings = {"REDIS_URL": redis_server.url, "REDIS_PARAMS": {"socket_timeout": 0.3}}
    crawler = project_crawler(settings=settings)
    pipeline = DedupePipeline.from_crawler(crawler)
    pipeline.open_spider()
    admin = redis_server.client()
    admin.execute_command("CLIENT", "PAUSE", 2000, "WRITE")  # Redis hangs
    try:
        assert pipeline.process_item(item(1)).item_id == 1
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    assert crawler.stats.get_value("tmapi/dedupe/errors") == 1
    assert pipeline.process_item(item(2)).item_id == 2  # Redis answers again
    with pytest.raises(DropItem):
        pipeline.process_item(item(2))
    pipeline.close_spider()


def test_ids_left_by_a_killed_run_do_not_hide_items_from_the_next(
    simulator, crawl, redis_server
):
    # a killed worker left its seen ids behind (its heartbeat key has expired)
    client = Redis.from_url(redis_server.url)
    stale = RedisSeenSet(client, "category:seen_items:en", expected_items=10**6)
    for product in Catalog(sizes={47: 30}).expected(47):
        stale.add(product.item_id)
    sim = simulator(size="47=30")
    result = crawl(sim.url, {"cat_id": "47"}, {"REDIS_URL": redis_server.url, **IDLE})
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 30
    assert crawl_keys(client) == []


def test_workers_running_at_once_share_the_seen_set(simulator, crawl, redis_server):
    # two workers crawl the same category at the same time (2 s per call keeps
    # them overlapping); between them every item is delivered exactly once
    sim = simulator(size="48=60", latency=2.0)
    # idle for 2 s (not the default 10): still outlasts the gap between the
    # two workers' start-ups, so neither ends before the other has begun
    settings = {"REDIS_URL": redis_server.url, "TMAPI_IDLE_CLOSE": 2}
    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(
                lambda name: crawl(
                    sim.url, {"cat_id": "48"}, settings, output_name=name
                ),
                ["one.jsonl", "two.jsonl"],
            )
        )
    assert [r.returncode for r in runs] == [0, 0], runs[0].log[-2000:]
    ids = [i["item_id"] for run in runs for i in run.items]
    assert len(ids) == len(set(ids)) == 60
    assert crawl_keys(Redis.from_url(redis_server.url)) == []  # the last one cleared


def test_coverage_counts_the_repeats_the_dedupe_drops_category_by_category(
    simulator, crawl
):
    """Pages repeat items of the page before (within a category); categories
    finish one after another and let their ids go, and the coverage still
    counts every repeat the item dedupe drops."""
    sizes = {61: 900, 62: 450, 63: 1000, 64: 30}
    sim = simulator(size=[f"{c}={n}" for c, n in sizes.items()], repeat_rate=0.5)
    result = crawl(
        sim.url, {"cat_id": ",".join(map(str, sizes))}, {"CONCURRENT_REQUESTS": 4}
    )
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == len({i["item_id"] for i in result.items}) == 2380
    served = sum(c["items"] for c in sim.calls())
    duplicates = stat(result.log, "tmapi/items/duplicate")
    assert duplicates == served - 2380 > 0
    assert stat(result.log, "tmapi/coverage/duplicates") == duplicates
    assert stat(result.log, "tmapi/coverage/distinct") == 2380
