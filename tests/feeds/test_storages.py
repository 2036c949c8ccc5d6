"""The S3 feed storage in-process (:class:`RescuingS3FeedStorage`, registered
for ``s3://`` by the add-on), against a real S3 endpoint (moto): spooled in
the job directory while it fills, the spool removed once uploaded and kept
when the upload fails; without a spool a failed upload is kept under
``TMAPI_FEED_RESCUE_DIR``. Crawls that upload, killed and resumed:
tests/crawls/test_exports.py, tests/crawls/test_resume_feeds.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import SENTINEL_TOKEN
from tests.crawlers import project_crawler
from tests.servers import s3_settings
from tmapi_crawler.feeds.storages import (
    RescuingS3FeedStorage,
    spooled_files,
)

pytestmark = pytest.mark.timeout(60)

LINES = b'{"item_id": 1}\n{"item_id": 2}\n'


@pytest.fixture
def s3(s3_server) -> Any:
    server = s3_server()
    server.client().create_bucket(Bucket="feeds")
    return server


def store(feed: RescuingS3FeedStorage, file: Any, loop: Any) -> None:
    """*file* handed to ``store``, as the feed exporter does at the close."""
    loop.run_until_complete(asyncio.wait_for(feed.store(file).asFuture(loop), 30))


def body(s3: Any, key: str) -> bytes:
    return s3.client().get_object(Bucket="feeds", Key=key)["Body"].read()


@pytest.fixture
def make(s3, tmp_path) -> Any:
    """``make(uri, **settings)``: the storage the add-on registers, built as
    Scrapy builds it for the feed *uri*, and a file opened by it."""

    def build(uri: str, **settings: Any) -> tuple[RescuingS3FeedStorage, Any]:
        rescue = str(tmp_path / "rescue")
        crawler = project_crawler(
            settings=s3_settings(
                s3.url,
                TMAPI_TOKEN=SENTINEL_TOKEN,
                TMAPI_FEED_RESCUE_DIR=rescue,
                **settings,
            )
        )
        feed = RescuingS3FeedStorage.from_crawler(crawler, uri, feed_options={})
        file = feed.open(crawler._create_spider(cat_id="5"))
        file.write(LINES)
        return feed, file

    return build


def test_a_spooled_feed_is_uploaded_and_its_spool_removed(
    make, s3, tmp_path, reactor_loop
):
    jobdir = tmp_path / "job"
    feed, file = make("s3://feeds/items.jsonl", JOBDIR=str(jobdir))
    file.flush()
    [directory] = [p for p in (jobdir / "spool").iterdir() if p.is_dir()]
    [spooled] = spooled_files(directory)
    # while it fills: a named file, and which object it is for
    assert spooled.uri == "s3://feeds/items.jsonl"
    assert spooled.path.read_bytes() == LINES
    store(feed, file, reactor_loop)
    assert body(s3, "items.jsonl") == LINES
    assert spooled_files(directory) == [] and not spooled.path.exists()
    assert feed.already_stored(len(LINES))
    assert not feed.already_stored(len(LINES) + 1)


def test_a_spooled_feed_that_fails_to_upload_stays_in_the_spool(
    make, s3, tmp_path, reactor_loop, caplog
):
    jobdir = tmp_path / "job"
    feed, file = make("s3://no-such-bucket/items.jsonl", JOBDIR=str(jobdir))
    assert not feed.already_stored(len(LINES))  # cannot tell: upload again
    with pytest.raises(Exception, match="NoSuchBucket"):
        store(feed, file, reactor_loop)
    [directory] = [p for p in (jobdir / "spool").iterdir() if p.is_dir()]
    [spooled] = spooled_files(directory)
    assert spooled.path.read_bytes() == LINES  # for the next run to upload
    assert "the next run of the job uploads them" in caplog.text
    assert not (tmp_path / "rescue").exists()


def test_without_a_spool_a_failed_upload_is_kept_in_the_rescue_dir(
    make, tmp_path, reactor_loop
):
    for _ in range(2):
        feed, file = make("s3://no-such-bucket/day/items.jsonl")
        assert feed.spool is None  # Scrapy's temporary file
        with pytest.raises(Exception, match="NoSuchBucket"):
            store(feed, file, reactor_loop)
    kept = tmp_path / "rescue" / "no-such-bucket" / "day"
    # the second failure beside the first, never over it
    assert sorted(p.name for p in kept.iterdir()) == ["items.jsonl", "items.jsonl.1"]
    assert {p.read_bytes() for p in kept.iterdir()} == {LINES}


def test_the_uri_it_names_holds_no_credentials(make):
    feed, _ = make("s3://KEY:SECRET@feeds/items.jsonl")
    assert feed.uri == "s3://feeds/items.jsonl"
