"""The item details contract: the URL, the choice of listings, and the
tolerant parser of answers whose variant fields are unconfirmed."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tmapi_crawler.contract import api
from tmapi_crawler.contract.details import (
    DETAIL_PATH,
    detail_from_data,
    detail_url,
    parse_detail_kinds,
)
from tmapi_crawler.contract.endpoints import DETAILS, endpoint_of
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.simulator.variants import detail_data

NOW = "2026-01-01T00:00:00+00:00"
ITEM = 610000000001


def answer(**data):
    return detail_from_data({"item_id": ITEM, **data}, ITEM, "en", NOW)


def test_the_url_always_says_the_language_and_is_the_details_endpoint():
    url = detail_url("http://127.0.0.1:1/base/", ITEM, "en")
    assert url == f"http://127.0.0.1:1/base{DETAIL_PATH}?item_id={ITEM}&language=en"
    assert endpoint_of(url) is DETAILS and DETAILS.null_data


@pytest.mark.parametrize(
    ("given", "kinds"),
    [
        (None, set()),
        ("none", set()),
        ("all", {"all"}),
        ("new,price", {"new", "price"}),
        (" back , new ", {"back", "new"}),
    ],
)
def test_detail_kinds(given, kinds):
    assert parse_detail_kinds(given) == kinds


@pytest.mark.parametrize("given", ["newest", "all,new", "none,price", "price,gone"])
def test_detail_kinds_refused_name_what_is_allowed(given):
    with pytest.raises(ValueError, match="'all', 'none', or one or more of new"):
        parse_detail_kinds(given)


def test_a_simulator_answer_is_read_whole():
    catalog = Catalog(0, {51: 10})
    product = catalog.products(51)[0]
    data = json.loads(json.dumps(detail_data(0, 51, product, 0, "zh")))
    read = detail_from_data(data, product.item_id, "zh", NOW)
    assert read.problems == () and read.item is not None
    item = read.item
    assert item.item_id == product.item_id and item.language == "zh"
    assert item.category_id == 51 and item.offer_unit == "件"
    assert item.seller.member_id and item.seller.company_name
    assert item.properties == [{"材质": "塑料"}, {"产地": "义乌"}]
    assert item.tiers[0].price == str(product.price)
    assert len(item.images) == 3
    assert item.skus and all(isinstance(sku.stock, int) for sku in item.skus)
    assert item.skus[0].price == str(product.price)  # the cheapest: the listing's
    assert set(item.skus[0].properties) == {"颜色", "尺码"}


def test_numbers_strings_and_full_width_colons_are_all_read():
    read = answer(
        skus=[
            {"skuid": 123, "sale_price": 9.9, "origin_price": "12", "stock": "7",
             "sale_count": 3.0, "props_names": "颜色\uff1a黑色;尺码:M"},
        ],
        sku_price_range={"sku_param": [{"beginAmount": "2", "price": 1.5}]},
        category_id="1031922",
    )  # fmt: skip
    assert read.problems == ()
    (sku,) = read.item.skus
    assert (sku.id, sku.price, sku.origin_price, sku.stock, sku.sale_count) == (
        "123", "9.9", "12", 7, 3,
    )  # fmt: skip
    assert sku.properties == {"颜色": "黑色", "尺码": "M"}
    assert read.item.tiers[0].min_quantity == 2 and read.item.tiers[0].price == "1.5"
    assert read.item.category_id == 1031922
    assert Decimal(sku.price) == Decimal("9.9")


def test_what_does_not_fit_is_left_out_and_named_never_a_crash():
    read = answer(
        skus=[
            {"skuid": "1", "stock": "many", "sale_price": "abc"},
            "not an object",
            {"stock": 5},  # no id
            {"skuid": "2", "stock": -3, "props_names": "no colon here"},
        ],
        main_imgs="one.jpg",
        shop_info=["a list"],
        sku_price_range={"sku_param": [{"beginAmount": "x", "price": "1"}]},
        product_props=["text"],
        video_url="not a url",
    )
    item = read.item
    assert [sku.id for sku in item.skus] == ["1", "2"]
    assert item.skus[0].stock is None and item.skus[0].price is None
    assert item.images == [] and item.tiers == [] and item.properties == []
    assert item.video is None
    assert set(read.unfit_fields) == {
        "skus.stock", "skus.sale_price", "skus", "skus.skuid", "skus.props_names",
        "main_imgs", "shop_info", "sku_price_range.sku_param.beginAmount",
        "product_props", "video_url",
    }  # fmt: skip
    assert len(read.problems) == len(read.unfit)


def test_unknown_fields_are_kept_raw():
    read = answer(
        delivery_info={"free": True},
        skus=[{"skuid": "1", "weight": "0.2kg"}],
        skus_null_safe=None,
    )
    assert read.item.extra == {"delivery_info": {"free": True}, "skus_null_safe": None}
    assert read.item.skus[0].extra == {"weight": "0.2kg"}


def test_null_lists_and_missing_fields_are_empty():
    read = answer(skus=None, main_imgs=None, product_props=None, shop_info=None)
    assert read.problems == ()
    assert read.item.skus == [] and read.item.seller.member_id is None


def test_another_item_than_asked_is_a_problem():
    read = detail_from_data({"item_id": 5}, ITEM, "en", NOW)
    assert read.unfit_fields == ("item_id",)
    assert read.item.item_id == ITEM


def test_data_null_is_an_item_that_no_longer_exists():
    body = json.dumps({"code": 200, "msg": "success", "data": None}).encode()
    with pytest.raises(api.ApiError):  # other endpoints: a broken answer
        api.parse_data(body)
    data = api.parse_data(body, null_data=True)
    read = detail_from_data(data, ITEM, "en", NOW)
    assert read.item is None and read.problems == ()
