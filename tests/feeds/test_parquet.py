"""Parquet feeds read back with pyarrow: the types, one schema, row groups."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import run_crawl
from tests.servers import s3_settings
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.feeds.exporters import flat_row
from tmapi_crawler.feeds.parquet import CHANGE_SCHEMA, ITEM_SCHEMA, ParquetItemExporter
from tmapi_crawler.simulator.catalog import Catalog

BARE = {"item_id": "7", "product_url": "https://detail.1688.com/offer/7.html",
        "title": "t", "crawled_at": "2026-12-02T10:00:00+00:00"}  # fmt: skip
FULL = {
    **BARE,
    "item_id": 8,
    "price": "0.6",
    "shop_info": {"company_name": "c", "shop_years": "3", "new_field": 1},
    "category_path": [54, "80"],
    "not_in_the_model": {"a": 1},
}


def test_one_schema_whatever_the_first_item_held_in_row_groups():
    file = io.BytesIO()
    exporter = ParquetItemExporter(file, parquet_row_group=2)
    exporter.start_exporting()
    for raw in (BARE, FULL, BARE, FULL, BARE):
        exporter.export_item(ProductItem.model_validate(raw))
    exporter.finish_exporting()
    parquet = pq.ParquetFile(io.BytesIO(file.getvalue()))
    assert parquet.metadata.num_row_groups == 3
    table = parquet.read()
    assert table.schema == ITEM_SCHEMA
    assert table.schema.field("item_id").type == pa.int64()
    assert table.schema.field("price").type == pa.decimal128(18, 2)
    assert table.schema.field("crawled_at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_struct(table.schema.field("shop_info").type)
    assert pa.types.is_list(table.schema.field("category_path").type)
    first, second = table.slice(0, 2).to_pylist()
    assert first["shop_info"] is None and first["price"] is None
    assert second["price"] == Decimal("0.60")
    assert second["shop_info"]["shop_years"] == 3
    assert second["category_path"] == ["54", "80"]
    assert json.loads(second["extra"]) == {"not_in_the_model": {"a": 1}}


def test_an_empty_feed_still_has_its_schema():
    file = io.BytesIO()
    exporter = ParquetItemExporter(file)
    exporter.start_exporting()
    exporter.finish_exporting()
    assert pq.read_table(io.BytesIO(file.getvalue())).schema == ITEM_SCHEMA


def test_a_crawl_to_parquet_and_a_changes_feed_in_parquet(simulator, tmp_path):
    sim = simulator(size="61=45")
    changes = tmp_path / "changes.parquet"
    result = run_crawl(
        tmp_path,
        sim.url,
        {"cat_id": 61},
        {
            "TMAPI_STORE": f"sqlite:///{tmp_path}/c.sqlite",
            "TMAPI_CHANGES_FEED": str(changes),
        },
        output_name="items.parquet",
    )
    assert result.returncode == 0, result.log[-3000:]
    table = pq.read_table(result.output)
    assert table.schema == ITEM_SCHEMA and table.num_rows == 45
    crawled = table.column("crawled_at").to_pylist()
    assert all(moment.utcoffset().total_seconds() == 0 for moment in crawled)
    news = pq.read_table(changes)
    assert news.schema == CHANGE_SCHEMA
    assert news.column("change").to_pylist() == ["new"] * 45
    assert set(news.column("item_id").to_pylist()) == set(
        table.column("item_id").to_pylist()
    )


def test_parquet_items_and_changes_on_s3(simulator, s3_server, tmp_path):
    s3 = s3_server()
    client = s3.client()
    client.create_bucket(Bucket="tmapi-items")
    sim = simulator(size="61=45")
    feeds = {"s3://tmapi-items/items.parquet": {"format": "parquet"}}
    settings = s3_settings(
        s3.url,
        FEEDS=json.dumps(feeds),
        TMAPI_STORE=f"sqlite:///{tmp_path}/c.sqlite",
        TMAPI_CHANGES_FEED="s3://tmapi-items/changes.parquet",
    )
    result = run_crawl(tmp_path, sim.url, {"cat_id": 61}, settings, output_name=None)
    assert result.returncode == 0, result.log[-3000:]

    def read(key: str) -> pa.Table:
        body = client.get_object(Bucket="tmapi-items", Key=key)["Body"].read()
        return pq.read_table(io.BytesIO(body))

    items, changes = read("items.parquet"), read("changes.parquet")
    assert items.schema == ITEM_SCHEMA and items.num_rows == 45
    expected = {p.item_id for p in Catalog(sizes={61: 45}).expected(61)}
    assert set(items.column("item_id").to_pylist()) == expected
    assert changes.schema == CHANGE_SCHEMA
    assert changes.column("change").to_pylist() == ["new"] * 45
    assert set(changes.column("item_id").to_pylist()) == expected


def test_unknown_fields_are_strict_json_as_in_the_json_lines_feed():
    """An answer may hold NaN or Infinity (Python's JSON reader takes them):
    in ``extra`` they are null, as the JSON Lines feed writes them, so any
    JSON reader (a browser's, jq, PostgreSQL's) reads every row."""
    raw = {
        "item_id": 7,
        "product_url": "https://detail.1688.com/offer/7.html",
        "title": "t",
        "rank": float("nan"),
        "boost": {"up": float("inf"), "note": "加厚"},
    }
    item = ProductItem.model_validate(raw)
    file = io.BytesIO()
    exporter = ParquetItemExporter(file)
    exporter.start_exporting()
    exporter.export_item(item)
    exporter.finish_exporting()
    (record,) = pq.read_table(io.BytesIO(file.getvalue())).to_pylist()
    strict = json.loads(record["extra"], parse_constant=lambda name: name)
    assert strict == {"rank": None, "boost": {"up": None, "note": "加厚"}}
    assert strict == {
        key: value
        for key, value in json.loads(item.model_dump_json()).items()
        if key in raw and key not in ProductItem.model_fields
    }


def test_the_csv_feed_writes_unknown_fields_as_the_same_strict_json():
    raw = {
        "item_id": 7,
        "product_url": "https://detail.1688.com/offer/7.html",
        "title": "t",
        "rank": float("nan"),
        "boost": {"up": float("-inf")},
    }
    row = flat_row(ProductItem.model_validate(raw))
    extra = json.loads(row["extra"], parse_constant=lambda name: name)
    assert (extra["rank"], extra["boost.up"]) == (None, None)
