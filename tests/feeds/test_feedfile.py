"""The JSON Lines feed writes a typed item as Scrapy's own exporter would
(property-based: see tests/strategies.py)."""

from __future__ import annotations

import functools
import io
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from scrapy.exceptions import DropItem
from scrapy.exporters import JsonLinesItemExporter

from tests.crawlers import project_crawler
from tests.strategies import SAMPLE_ITEM, item_fields
from tmapi_crawler.feeds.feedfile import LineFlushingJsonLinesExporter
from tmapi_crawler.pipelines.validation import ValidationPipeline


@functools.cache
def validation() -> ValidationPipeline:
    """One pipeline for every example (it keeps nothing but counters): a
    crawler with the project's settings takes longer to build than an example
    takes to run."""
    return ValidationPipeline.from_crawler(project_crawler())


@given(fields=item_fields, encoding=st.sampled_from(["utf-8", None]))
def test_a_typed_item_is_written_as_scrapys_own_exporter_writes_it(fields, encoding):
    """The JSON Lines exporter encodes typed items with pydantic, not Scrapy's
    generic path: for any item that validates, the line holds the same JSON
    (the same keys in the same order, the same values), or both fail. One
    difference, on purpose: a number JSON cannot hold (an API value of 1e999,
    kept in an extra field) is null, where Scrapy writes Infinity, which JSON
    readers refuse."""
    try:
        item = validation().process_item({**SAMPLE_ITEM, **fields})
    except DropItem:
        return

    def line(exporter_class: type) -> Any:
        feed = io.BytesIO()
        try:
            exporter_class(feed, encoding=encoding).export_item(item)
        except (TypeError, ValueError) as error:  # UnicodeEncodeError among them
            return type(error).__mro__[-2]
        raw = feed.getvalue()
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1
        if encoding is None:
            assert raw.isascii()
        return json.loads(raw, object_pairs_hook=list, parse_constant=lambda _: None)

    assert line(LineFlushingJsonLinesExporter) == line(JsonLinesItemExporter)
