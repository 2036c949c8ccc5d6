"""Real crawls to every output: JSON Lines, batches, CSV, quarantine, S3."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest

from tests.conftest import SENTINEL_TOKEN, stat
from tests.servers import s3_settings
from tmapi_crawler.feeds.exporters import CSV_COLUMNS
from tmapi_crawler.simulator.catalog import SAMPLE_CATEGORY, Catalog


def test_a_full_crawl_writes_typed_unique_readable_json_lines(simulator, crawl):
    sim = simulator(size="51=70", repeat_rate=0.5)
    result = crawl(sim.url, {"cat_id": f"51,{SAMPLE_CATEGORY}", "max_pages": "4"})
    assert result.returncode == 0, result.log[-3000:]
    text = result.output.read_text("utf-8")
    assert "台州市" in text and "\\u" not in text  # Chinese stays readable
    items = [json.loads(line) for line in text.splitlines()]
    ids = [item["item_id"] for item in items]
    assert len(ids) == len(set(ids)) == 70 + 80
    assert all(type(i) is int for i in ids)
    for item in items:
        assert Decimal(item["price"]) >= 0 and isinstance(item["price"], str)
        assert isinstance(item["sale_info"]["sale_quantity_90days"], int)
        assert item["sale_info"]["sale_quantity_90days_text"].rstrip("+").isdigit()
        assert 0 <= item["item_repurchase_rate"] <= 1
        assert isinstance(item["moq"], int)
    first = next(i for i in items if i["item_id"] == 991188728585)  # the doc's sample
    assert first["price_info"] == {
        "price": "0.60",
        "sale_price": "0.60",
        "origin_price": None,
    }


def test_the_default_feed_splits_into_batches_under_out(simulator, crawl, tmp_path):
    sim = simulator(size="52=45")
    settings = {
        "TMAPI_DEFAULT_FEED": f"{tmp_path}/out/%(name)s-%(time)s.jsonl",
        "FEED_EXPORT_BATCH_ITEM_COUNT": 20,
    }
    result = crawl(sim.url, {"cat_id": "52"}, settings, output_name=None)
    assert result.returncode == 0, result.log[-3000:]
    files = sorted((tmp_path / "out").glob("category-*.jsonl"))
    assert [f.name[-11:] for f in files] == [
        "00001.jsonl",
        "00002.jsonl",
        "00003.jsonl",
    ]
    counts = [len(f.read_text("utf-8").splitlines()) for f in files]
    assert counts == [20, 20, 5]


def test_csv_flattens_nested_fields_into_fixed_columns(simulator, crawl):
    sim = simulator(size="53=30")
    result = crawl(
        sim.url,
        {"cat_id": f"53,{SAMPLE_CATEGORY}", "max_pages": "1", "free_shipping": "no"},
        output_name="items.csv",
    )
    assert result.returncode == 0, result.log[-3000:]
    with result.output.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    assert "CSVExporter dropped fields" not in result.log
    catalog = Catalog(sizes={53: 30})
    expected = {p.item_id for p in catalog.expected(53, free_shipping=False)}
    assert {int(r["item_id"]) for r in rows if r["cat_id"] == "53"} <= expected
    sample = next(r for r in rows if r["item_id"] == "991188728585")
    assert sample["price_info.price"] == "0.60"
    assert sample["price_info.origin_price"] == ""
    assert sample["delivery_info.area_from"] == "浙江|台州市"
    assert sample["shop_info.score_info.composite_score"] == "4.0"
    assert sample["sale_info.sale_quantity_90days"] == "100000"
    assert sample["filters.free_shipping"] == "false"
    assert sample["extra"] == ""
    translated = next(r for r in rows if r["cat_id"] == "53")
    assert translated["title_origin"]  # the Chinese title beside the English one


def bad_items():
    """Two items of category 54 the simulator serves broken."""
    first, second = Catalog(sizes={54: 45}).expected(54)[4:6]
    overrides = [
        f'{first.item_id}:price="-3.50"',
        f'{second.item_id}:product_url="detail.1688.com/offer/1.html"',
    ]
    return first.item_id, second.item_id, overrides


def test_invalid_items_are_dropped_counted_and_logged(simulator, crawl):
    negative, bad_url, overrides = bad_items()
    sim = simulator(size="54=45", override_item=overrides)
    result = crawl(sim.url, {"cat_id": "54"})
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 43
    assert {negative, bad_url}.isdisjoint(i["item_id"] for i in result.items)
    assert stat(result.log, "tmapi/items/invalid") == 2
    assert stat(result.log, "tmapi/items/invalid/price/negative") == 1
    assert stat(result.log, "tmapi/items/invalid/product_url/url") == 1
    assert f"Invalid item {negative} of category 54 (en) page 1" in result.log


def test_the_quarantine_feed_keeps_invalid_items_apart(simulator, crawl, tmp_path):
    negative, bad_url, overrides = bad_items()
    sim = simulator(size="54=45", override_item=overrides)
    quarantine = tmp_path / "invalid.jsonl"
    result = crawl(sim.url, {"cat_id": "54"}, {"TMAPI_QUARANTINE_FEED": quarantine})
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 43
    kept = [json.loads(line) for line in quarantine.read_text("utf-8").splitlines()]
    assert {k["item_id"] for k in kept} == {negative, bad_url}
    by_id = {k["item_id"]: k for k in kept}
    assert by_id[negative]["errors"][0]["field"] == "price"
    assert by_id[negative]["errors"][0]["kind"] == "negative"
    assert by_id[negative]["item"]["price"] == "-3.50"  # as the API sent it
    assert by_id[bad_url]["cat_id"] == 54 and by_id[bad_url]["page"] == 1
    assert stat(result.log, "tmapi/items/quarantined") == 2


def test_an_s3_feed_round_trip(simulator, crawl, s3_server):
    s3 = s3_server()
    client = s3.client()
    client.create_bucket(Bucket="tmapi-items")
    sim = simulator(size="55=45")
    feeds = {"s3://tmapi-items/runs/%(name)s.jsonl": {"format": "jsonlines"}}
    aws_secrets = {  # moto takes any keys; Scrapy prints overridden settings
        "AWS_SECRET_ACCESS_KEY": "aws-SECRET-never-logged",
        "AWS_SESSION_TOKEN": "aws-SESSION-never-logged",
    }
    settings = s3_settings(s3.url, FEEDS=json.dumps(feeds), **aws_secrets)
    result = crawl(sim.url, {"cat_id": "55"}, settings, output_name=None)
    assert result.returncode == 0, result.log[-3000:]
    stored = client.get_object(Bucket="tmapi-items", Key="runs/category.jsonl")
    body = stored["Body"].read().decode("utf-8")
    items = [json.loads(line) for line in body.splitlines()]
    expected = {p.item_id for p in Catalog(sizes={55: 45}).expected(55)}
    assert {i["item_id"] for i in items} == expected and len(items) == 45
    assert SENTINEL_TOKEN not in body
    assert SENTINEL_TOKEN not in json.dumps(stored["Metadata"])
    assert SENTINEL_TOKEN not in result.log
    assert "'AWS_SECRET_ACCESS_KEY': '***'" in result.log  # "Overridden settings"
    for secret in aws_secrets.values():
        assert secret not in result.log


@pytest.mark.parametrize("failure", ["missing bucket", "bad credentials"])
def test_an_s3_upload_that_fails_fails_the_run_and_keeps_the_items(
    simulator, crawl, s3_server, failure, tmp_path
):
    if failure == "missing bucket":
        s3, error = s3_server(), "NoSuchBucket"
    else:  # every call but the first (creating the bucket) needs real keys
        s3, error = s3_server(authenticated_after=1), "InvalidAccessKeyId"
        s3.client().create_bucket(Bucket="tmapi-items")
    sim = simulator(size="56=25")
    feeds = {"s3://tmapi-items/items.jsonl": {"format": "jsonlines"}}
    rescue = tmp_path / "unstored"
    settings = s3_settings(
        s3.url, FEEDS=json.dumps(feeds), TMAPI_FEED_RESCUE_DIR=str(rescue)
    )
    result = crawl(sim.url, {"cat_id": "56"}, settings, output_name=None)
    assert result.returncode == 5, result.log[-3000:]
    kept = rescue / "tmapi-items" / "items.jsonl"
    assert f"the feed is kept in {kept}" in result.log
    lines = kept.read_text("utf-8").splitlines()
    assert len({json.loads(line)["item_id"] for line in lines}) == 25
    assert "Error storing jsonlines feed (25 items) in: s3://tmapi-items/" in (
        result.log
    )
    assert error in result.log
    assert "1 feed(s) could NOT be stored" in result.log


def test_a_feed_that_cannot_be_written_fails_the_run(simulator, crawl, tmp_path):
    # Scrapy logs an error per item but counts nothing; the run must still fail.
    (tmp_path / "a-file").write_text("not a directory")
    sim = simulator(size="57=25")
    result = crawl(sim.url, {"cat_id": "57"}, output_name="a-file/items.jsonl")
    assert result.returncode == 5, result.log[-3000:]
    assert "a-file/items.jsonl: 25 of 25 items never written" in result.log
    assert "1 feed(s) could NOT be stored" in result.log


@pytest.mark.parametrize(
    ("settings", "output_name", "named"),
    [
        ({"FEED_EXPORT_BATCH_ITEM_COUNT": 10}, "items.jsonl", "need %(batch_id)d"),
        ({"FEEDS": json.dumps({"items.txt": {}})}, None, "format 'txt' is unknown"),
    ],
)
def test_a_feed_scrapy_would_refuse_stops_the_run_before_any_call(
    simulator, crawl, settings, output_name, named
):
    # Scrapy would log an error and export nothing, after paying for the calls.
    sim = simulator(size="58=25")
    result = crawl(sim.url, {"cat_id": "58"}, settings, output_name=output_name)
    assert result.returncode == 2, result.log[-3000:]
    assert named in result.log and "nothing was sent" in result.log
    assert sim.calls() == []
