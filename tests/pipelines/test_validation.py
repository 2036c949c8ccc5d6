"""The item pipelines never crash: whatever the API sent, an item passes typed
or is dropped and counted (property-based: see tests/strategies.py)."""

from __future__ import annotations

import contextlib
import functools
import io

from hypothesis import given
from hypothesis import strategies as st
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from tests.crawlers import project_crawler
from tests.strategies import SAMPLE_ITEM, item_fields
from tmapi_crawler.feeds.feedfile import LineFlushingJsonLinesExporter
from tmapi_crawler.pipelines.dedupe import DedupePipeline
from tmapi_crawler.pipelines.validation import ValidationPipeline


@functools.cache
def shared_crawler() -> Crawler:
    """One crawler with the project's settings for every example (it takes
    longer to build than an example to run); each example empties its stats."""
    return project_crawler()


@given(fields=item_fields, base=st.booleans())
def test_any_item_is_delivered_or_dropped_and_counted(fields, base):
    """Validation and dedupe never crash: an item passes (typed) or is dropped
    with DropItem and counted as invalid or duplicate."""
    crawler = shared_crawler()
    crawler.stats.clear_stats()
    validation = ValidationPipeline.from_crawler(crawler)
    dedupe = DedupePipeline.from_crawler(crawler)
    dedupe.open_spider()
    raw = {**(SAMPLE_ITEM if base else {}), **fields}
    feed = io.BytesIO()
    exporter = LineFlushingJsonLinesExporter(feed)
    for _ in range(2):  # the second time, a duplicate if valid
        with contextlib.suppress(DropItem):
            exporter.export_item(dedupe.process_item(validation.process_item(raw)))
    assert feed.getvalue().count(b"\n") <= 1  # what passes can be written
    stats = crawler.stats.get_stats()
    assert (
        stats.get("tmapi/items/invalid", 0) + stats.get("tmapi/items/duplicate", 0) >= 1
    )
