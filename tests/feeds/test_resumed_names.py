"""The names a resumed run's feeds get, and the spool's own bookkeeping."""

from __future__ import annotations

import fcntl

from tmapi_crawler.feeds.feedfile import FeedMemory, run_uri
from tmapi_crawler.feeds.storages import (
    LOCK_NAME,
    ProcessSpool,
    dead_spools,
    recovered_uri,
    spooled_files,
)


def test_a_feed_that_cannot_be_appended_to_gets_a_name_per_run():
    assert run_uri("s3://b/items.jsonl", 1) == "s3://b/items.jsonl"
    assert run_uri("s3://b/items.jsonl", 3) == "s3://b/items-run3.jsonl"
    assert run_uri("s3://b/items-%(time)s.jsonl", 3) == "s3://b/items-%(time)s.jsonl"
    assert run_uri("b-%(batch_id)03d.csv", 2) == "b-%(batch_id)03d-run2.csv"


def test_a_resumed_run_continues_local_files_only(tmp_path):
    memory = FeedMemory(tmp_path)
    first = (tmp_path / "items-T1.jsonl").as_uri()
    memory.save({"items-%(time)s.jsonl": first, first: first})
    feeds = {
        "items-%(time)s.jsonl": {"format": "jsonlines"},
        "s3://b/items.jsonl": {"format": "jsonlines"},
        "out/b-%(batch_id)d.jsonl": {"format": "jsonlines", "batch_item_count": 5},
    }
    resumed = memory.resumed_feeds(feeds, run=2)
    assert resumed == {
        first: {"format": "jsonlines", "overwrite": False},
        "s3://b/items-run2.jsonl": {"format": "jsonlines"},
        "out/b-%(batch_id)d-run2.jsonl": {"format": "jsonlines", "batch_item_count": 5},
    }


def test_a_spool_nobody_holds_is_a_dead_process_s(tmp_path):
    root = tmp_path / "spool"
    mine = ProcessSpool(root)
    spooled = mine.new_file("s3://b/items.jsonl")
    spooled.path.write_bytes(b'{"item_id": 1}\n')
    dead = root / "deadbeef"
    dead.mkdir()
    (dead / LOCK_NAME).touch()
    alive = root / "alive"
    alive.mkdir()
    with (alive / LOCK_NAME).open("wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        found = dead_spools(root)
    # the process itself holds its own directory locked: not dead either
    assert found == [dead] or set(found) == {dead, mine.directory}
    assert [f.uri for f in spooled_files(mine.directory)] == ["s3://b/items.jsonl"]
    assert recovered_uri("s3://b/items.jsonl") == "s3://b/items.recovered.jsonl"
    mine.release()  # a file left to upload: kept
    assert spooled.path.exists()
