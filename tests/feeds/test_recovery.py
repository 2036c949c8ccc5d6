"""The spool's recovery in-process (:class:`SpoolRecovery`, wired by the
add-on with ``JOBDIR``), against a real S3 endpoint (moto): what a killed
run left spooled is uploaded as ``.recovered`` objects when the spider
opens, an upload that ended before the kill is not made twice, a failed one
waits for the next run; this run's own spool is removed once its feeds are
stored. Crawls killed and resumed: tests/crawls/test_resume_feeds.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import s3_settings
from tmapi_crawler.feeds.storages import LOCK_NAME, ProcessSpool

pytestmark = pytest.mark.timeout(60)

LINES = b'{"item_id": 1}\n{"item_id": 2}\n'


@pytest.fixture
def reactor_threads() -> Iterator[None]:
    """The reactor's thread pool, which only a running reactor starts (the
    recovery uploads in it, through Twisted's ``deferToThread``)."""
    from twisted.internet import reactor

    pool = reactor.getThreadPool()  # type: ignore[attr-defined]
    pool.start()
    yield
    pool.stop()  # a stopped pool does not start again: the next test makes one
    reactor.threadpool = None  # type: ignore[attr-defined]


@pytest.fixture
def s3(s3_server) -> Any:
    server = s3_server()
    server.client().create_bucket(Bucket="feeds")
    return server


def dead_spool(jobdir: Path, files: dict[str, bytes]) -> Path:
    """A spool directory as a killed run leaves it: unlocked, each file
    beside the name of the object it was for."""
    directory = jobdir / "spool" / "0123456789ab"
    directory.mkdir(parents=True)
    (directory / LOCK_NAME).touch()
    for number, (uri, content) in enumerate(files.items(), 1):
        part = directory / f"{number:05d}.part"
        part.write_bytes(content)
        part.with_suffix(".json").write_text(json.dumps({"uri": uri}))
    return directory


def keys(s3: Any) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket="feeds").get("Contents", [])
    return {
        o["Key"]: client.get_object(Bucket="feeds", Key=o["Key"])["Body"].read()
        for o in listed
    }


@pytest.fixture
def job(reactor_threads, open_crawler, s3, tmp_path) -> Any:
    """``job(**settings)``: a crawler of the job in ``tmp_path/job``, its S3
    feeds on moto (closed before the reactor's threads stop)."""

    def start(**settings: Any) -> Any:
        # an S3 feed alone: the summary file would go to out/, not tmp_path
        settings.setdefault("TMAPI_SUMMARY_FILE", str(tmp_path / "summary.json"))
        return open_crawler(
            s3_settings(s3.url, JOBDIR=str(tmp_path / "job"), **settings)
        )

    return start


def test_what_a_killed_run_spooled_is_uploaded_before_any_call(job, s3, tmp_path):
    jobdir = tmp_path / "job"
    s3.client().put_object(Bucket="feeds", Key="done.jsonl", Body=LINES)
    dead = dead_spool(
        jobdir,
        {
            "s3://feeds/items.jsonl": LINES,
            "s3://feeds/done.jsonl": LINES,  # uploaded; the kill cut the removal
            "s3://feeds/empty.jsonl": b"",
        },
    )
    opened = job()
    assert keys(s3) == {"done.jsonl": LINES, "items.recovered.jsonl": LINES}
    assert opened.stats["tmapi/spool/files_recovered"] == 1
    assert opened.stats["tmapi/spool/items_recovered"] == 2
    assert not dead.exists()


def test_a_spool_that_cannot_be_uploaded_waits_for_the_next_run(job, s3, tmp_path):
    jobdir = tmp_path / "job"
    dead = dead_spool(jobdir, {"s3://no-such-bucket/items.jsonl": LINES})
    opened = job()
    assert (dead / "00001.part").read_bytes() == LINES
    assert opened.stats.get("tmapi/spool/files_recovered", 0) == 0
    assert keys(s3) == {}


def test_this_run_s_spool_is_removed_once_its_feeds_are_stored(job, s3, tmp_path):
    jobdir = tmp_path / "job"
    feeds = {"s3://feeds/items.jsonl": {"format": "jsonlines"}}
    opened = job(FEEDS=feeds)
    opened.scraped({"item_id": 7})
    root = jobdir / "spool"
    mine = ProcessSpool._mine[root].directory
    assert [p.name for p in mine.glob("*.part")] == ["00001.part"]  # spooled
    opened.close()
    assert keys(s3) == {"items.jsonl": b'{"item_id": 7}\n'}
    assert not mine.exists() and root not in ProcessSpool._mine
