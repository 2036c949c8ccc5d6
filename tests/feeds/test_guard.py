"""One item never costs a feed: an item a writer cannot hold costs that item
(cut out, counted, quarantined with the reason), never the file; read back as
a user would (pyarrow, json)."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
from scrapy import signals

from tests.conftest import json_lines
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.feeds.feedfile import LineFlushingJsonLinesExporter
from tmapi_crawler.feeds.guard import WholeWriteFile, disk_of
from tmapi_crawler.feeds.parquet import ParquetItemExporter


def product(item_id: int, **fields: object) -> ProductItem:
    raw = {
        "item_id": item_id,
        "product_url": f"https://detail.1688.com/offer/{item_id}.html",
        "title": "t",
        "price": "1.50",
        "crawled_at": "2026-12-02T10:00:00+00:00",
    }
    return ProductItem.model_validate({**raw, **fields})


def unchecked(item_id: int) -> ProductItem:
    """An item past what the model allows (as one made before the bounds)."""
    item = product(1)
    object.__setattr__(item, "__dict__", {**item.__dict__, "item_id": item_id})
    return item


def test_a_parquet_row_group_is_written_without_the_row_its_schema_cannot_hold():
    file = io.BytesIO()
    exporter = ParquetItemExporter(file, parquet_row_group=3)
    exporter.start_exporting()
    for item in (product(1), unchecked(2**70), product(3), product(4), product(5)):
        exporter.export_item(item)
    exporter.finish_exporting()
    table = pq.read_table(io.BytesIO(file.getvalue()))  # the footer is there
    assert table.column("item_id").to_pylist() == [1, 3, 4, 5]
    assert (exporter.written, exporter.refused) == (4, 1)


def test_a_json_lines_item_the_encoder_refuses_is_cut_out_and_the_next_written(
    tmp_path: Path,
):
    path = tmp_path / "items.jsonl"
    with WholeWriteFile(path, "wb") as file:
        exporter = LineFlushingJsonLinesExporter(file)
        exporter.start_exporting()
        exporter.export_item({"item_id": 1})
        exporter.export_item({"item_id": 2, "bad": object()})  # not JSON
        exporter.export_item({"item_id": 3})
        exporter.finish_exporting()
    assert json_lines(path) == [{"item_id": 1}, {"item_id": 3}]
    assert (exporter.written, exporter.refused) == (2, 1)


def test_in_a_crawl_the_refused_item_is_counted_and_quarantined_with_the_reason(
    open_crawler, tmp_path: Path
):
    parquet, jsonl = tmp_path / "items.parquet", tmp_path / "items.jsonl"
    quarantine = tmp_path / "invalid.jsonl"
    feeds = {str(parquet): {"format": "parquet"}, str(jsonl): {"format": "jsonlines"}}
    crawler = open_crawler({"FEEDS": feeds, "TMAPI_QUARANTINE_FEED": str(quarantine)})
    items = [product(1), unchecked(2**70), product(3)]
    for item in items:
        crawler.run(
            crawler.crawler.signals.send_catch_log_async,
            signals.item_scraped,
            item=item,
            response=None,
            spider=crawler.spider,
        )
    crawler.close()
    assert pq.read_table(parquet).column("item_id").to_pylist() == [1, 3]
    assert [i["item_id"] for i in json_lines(jsonl)] == [1, 2**70, 3]
    (record,) = json_lines(quarantine)
    assert record["item_id"] == 2**70
    (error,) = record["errors"]
    assert error["kind"] == "feed" and str(parquet) in error["message"]
    assert crawler.stats["tmapi/feeds/refused"] == 1
    assert crawler.stats["tmapi/items/quarantined"] == 1


def test_the_disk_of_a_file_is_its_mount_point(tmp_path: Path):
    assert disk_of(tmp_path / "a" / "b.jsonl") in {
        *map(str, tmp_path.parents),
        str(tmp_path),
    }
    assert disk_of("/proc/self/status") == "/proc"
