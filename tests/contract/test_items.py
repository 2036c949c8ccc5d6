"""The item model: normalisation of every field kind, and every validation failure."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from itemadapter import ItemAdapter
from pydantic import ValidationError
from pydantic_core import PydanticCustomError
from scrapy.utils.serialize import ScrapyJSONEncoder

from tmapi_crawler.contract.items import (
    ERROR_KINDS,
    KNOWN_FIELDS,
    ProductItem,
    parse_count,
    parse_item_id,
    parse_price,
    parse_rate,
    parse_sales,
    parse_score,
    parse_url,
    problems,
)
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE

SAMPLE_ITEMS = json.loads(SAMPLE_RESPONSE.read_text("utf-8"))["data"]["items"]


def sample() -> dict:
    return copy.deepcopy(SAMPLE_ITEMS[0])


def exported(item: ProductItem) -> dict:
    """The item as a JSON feed writes it."""
    encoder = ScrapyJSONEncoder(ensure_ascii=False)
    return json.loads(encoder.encode(dict(ItemAdapter(item).items())))


def test_the_documented_sample_items_normalise():
    for raw in SAMPLE_ITEMS:
        item = ProductItem.model_validate(raw)
        assert item.item_id == raw["item_id"]
        assert item.price == Decimal(raw["price"])
    item = ProductItem.model_validate(sample())
    assert item.price == Decimal("0.60") and str(item.price) == "0.60"
    assert item.price_info.origin_price is None  # "" in the sample
    assert (item.moq, item.quantity_begin) == (1, 1)
    assert item.sale_info.sale_quantity_90days == 100000
    assert item.sale_info.sale_quantity_90days_text == "100000+"
    assert item.item_repurchase_rate == 0.6
    assert item.shop_info.shop_years == 1
    assert item.shop_info.score_info.composite_score == 4.0
    assert item.delivery_info.area_from == ["浙江", "台州市"]
    assert item.category_path == ["54", "80"]


def test_the_feed_writes_exact_prices_as_strings_and_keeps_chinese():
    row = exported(ProductItem.model_validate(sample()))
    assert row["price"] == "0.60"
    assert row["price_info"] == {
        "price": "0.60",
        "sale_price": "0.60",
        "origin_price": None,
    }
    assert row["sale_info"] == {
        "sale_quantity_90days": 100000,
        "sale_quantity_90days_text": "100000+",
    }
    assert row["item_repurchase_rate"] == 0.6
    assert row["shop_info"]["score_info"]["composite_score"] == 4.0
    assert row["shop_info"]["company_name"] == "台州市路桥喜字电子商务商行"


def test_item_id_is_an_int_whether_sent_as_number_or_string():
    as_number = ProductItem.model_validate(sample())
    as_text = ProductItem.model_validate({**sample(), "item_id": " 991188728585 "})
    assert as_number.item_id == as_text.item_id == 991188728585
    assert type(as_text.item_id) is int


def test_unknown_fields_are_kept_at_every_level():
    raw = sample()
    raw["title_origin"] = "原标题"
    raw["video_url"] = "https://v.example/1.mp4"
    raw["shop_info"]["scoer_info"] = {"composite_score": "4.5"}  # misspelled key
    row = exported(ProductItem.model_validate(raw))
    assert row["title_origin"] == "原标题"
    assert row["video_url"] == "https://v.example/1.mp4"
    assert row["shop_info"]["scoer_info"] == {"composite_score": "4.5"}


def test_null_where_a_string_is_documented_is_accepted():
    raw = sample()
    raw.update(moq=None, currency=None, item_repurchase_rate=None, img=None)
    raw["shop_info"]["score_info"]["composite_score"] = None
    item = ProductItem.model_validate(raw)
    assert item.moq is None and item.item_repurchase_rate is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.60", Decimal("0.60")),
        (" 12.5 ", Decimal("12.5")),
        ("¥3.90", Decimal("3.90")),
        ("1,280.00", Decimal("1280.00")),
        ("1E+2", Decimal("100")),
        (7, Decimal("7")),
        ("", None),
        (None, None),
    ],
)
def test_prices(text, expected):
    price = parse_price(text)
    assert price == expected
    if expected is not None:
        assert str(price) == str(expected)  # digits kept, no exponent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100000+", 100000),
        ("500", 500),
        ("1,200+", 1200),
        ("1.5万+", 15000),
        ("3w+", 30000),
        (42, 42),
        ("", None),
    ],
)
def test_sales_become_a_lower_bound(text, expected):
    assert parse_sales(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("57%", 0.57), ("60%", 0.6), ("0%", 0.0), ("100%", 1.0), ("12.5%", 0.125)],
)
def test_repurchase_rates_become_fractions(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1), (" 20 ", 20), (3, 3), ("1,000", 1000), ("3年", 3), ("", None)],
)
def test_counts(text, expected):
    assert parse_count(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("4.0", 4.0), ("5", 5.0), (4.5, 4.5)])
def test_scores(text, expected):
    assert parse_score(text) == expected


def test_urls():
    assert parse_url(" https://detail.1688.com/offer/1.html ") == (
        "https://detail.1688.com/offer/1.html"
    )
    assert parse_url("//detail.1688.com/offer/1.html").startswith("https://")
    assert parse_item_id("42") == 42


@pytest.mark.parametrize("text", ["4²", "--4", "", "4 2"])
def test_an_item_id_of_other_characters_is_an_invalid_item(text):
    with pytest.raises(PydanticCustomError):
        parse_item_id(text)


SALES, FREE = "sale_info.sale_quantity_90days", "delivery_info.free_shipping"


def invalid(**changes) -> list[tuple[str, str]]:
    raw = sample()
    for path, value in changes.items():
        target = raw
        *parents, name = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is KeyError:
            del target[name]
        else:
            target[name] = value
    with pytest.raises(ValidationError) as caught:
        ProductItem.model_validate(raw)
    return [(p.field, p.kind) for p in problems(caught.value)]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"item_id": KeyError}, ("item_id", "missing")),
        ({"item_id": None}, ("item_id", "missing")),
        ({"title": ""}, ("title", "missing")),
        ({"product_url": KeyError}, ("product_url", "missing")),
        ({"item_id": "99x"}, ("item_id", "type")),
        ({"item_id": 0}, ("item_id", "range")),
        ({"price": "abc"}, ("price", "type")),
        ({"price": "NaN"}, ("price", "type")),
        ({"price_info__sale_price": "-0.60"}, ("price_info.sale_price", "negative")),
        ({"price": "-1"}, ("price", "negative")),
        ({"moq": "many"}, ("moq", "type")),
        ({"moq": "-2"}, ("moq", "range")),
        ({"item_repurchase_rate": "157%"}, ("item_repurchase_rate", "range")),
        ({"item_repurchase_rate": "high"}, ("item_repurchase_rate", "type")),
        ({"sale_info__sale_quantity_90days": "lots"}, (SALES, "type")),
        ({"product_url": "detail.1688.com/offer/1.html"}, ("product_url", "url")),
        ({"product_url": "ftp://detail.1688.com/1"}, ("product_url", "url")),
        ({"product_url": "https://1688.com/of fer"}, ("product_url", "url")),
        ({"img": "not a url"}, ("img", "url")),
        ({"delivery_info__free_shipping": "maybe"}, (FREE, "type")),
        ({"category_path": "54/80"}, ("category_path", "type")),
        ({"shop_info": "none"}, ("shop_info", "type")),
        # bounded where typed: what every sink (Parquet, SQLite, PostgreSQL) holds
        ({"item_id": 2**70}, ("item_id", "range")),
        ({"item_id": str(2**63)}, ("item_id", "range")),
        ({"item_id": -610947572360}, ("item_id", "range")),
        ({"item_id": "\uff11\uff12\uff13\uff14\uff15"}, ("item_id", "type")),
        ({"price": float("nan")}, ("price", "type")),
        ({"price": float("inf")}, ("price", "type")),
        ({"price": "1e309"}, ("price", "range")),
        ({"price": "1000000000"}, ("price", "range")),
        ({"price": "-3.00"}, ("price", "negative")),
        ({"moq": 2**63}, ("moq", "range")),
        ({"moq": str(2**64)}, ("moq", "range")),
        ({"sale_info__sale_quantity_90days": "9" * 30 + "+"}, (SALES, "range")),
        ({"shop_info__company_name": {"en": "x"}}, ("shop_info.company_name", "type")),
        ({"title": "x" * 100_000}, ("title", "text")),
        ({"title": "bag\x00"}, ("title", "text")),
        ({"title": "\u202egab"}, ("title", "text")),
        ({"title_origin": "a\x1bb"}, ("title_origin", "text")),
        ({"category_path": ["54", "8\x000"]}, ("category_path", "text")),
        ({"img": "javascript:alert(1)"}, ("img", "url")),
        ({"img": "https://cbu01.alicdn.com/a\x00.jpg"}, ("img", "url")),
    ],
)  # fmt: skip
def test_each_validation_failure_is_named_by_field_and_kind(changes, expected):
    assert invalid(**changes) == [expected]


def test_failure_stat_keys_are_bounded():
    found = invalid(item_id="x", price="-1", product_url="nope", title=None)
    assert {kind for _, kind in found} <= set(ERROR_KINDS)
    assert {field for field, _ in found} <= KNOWN_FIELDS
    assert len(KNOWN_FIELDS) < 50


def test_the_largest_values_every_sink_holds_are_valid():
    item = ProductItem.model_validate(sample() | dict(
        item_id=2**63 - 1, price="999999999.99", moq=str(2**63 - 1),
        title="\u65b0\u6b3e\t" + "x" * 9_990, category_path=["54", "80"],
    ))  # fmt: skip
    assert item.item_id == 2**63 - 1 and item.moq == 2**63 - 1
    assert item.price == Decimal("999999999.99")
