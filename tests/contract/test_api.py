"""The API contract on its own: queries, pages, errors, the documented sample."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.conftest import ROOT
from tmapi_crawler.contract import api
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE

SHARED_SAMPLE = ROOT.parent / "shared/tmapi/category-items-v2.sample.json"


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_the_documentation_sample_is_a_page_of_three_items():
    page = api.parse_page(SAMPLE_RESPONSE.read_bytes())
    assert (page.page, page.page_size, page.total_count, page.has_next_page) == (
        1,
        20,
        2000,
        True,
    )
    assert [item["item_id"] for item in page.items] == [
        991188728585,
        740842253828,
        819097915075,
    ]
    assert page.items[0]["shop_info"]["score_info"]["composite_score"] == "4.0"
    assert page.last_page == 100
    assert page.problems == ()


@pytest.mark.skipif(
    not SHARED_SAMPLE.exists(), reason="../shared/tmapi is not beside this checkout"
)
def test_the_bundled_sample_is_the_documentation_sample():
    assert json.loads(SAMPLE_RESPONSE.read_bytes()) == json.loads(
        SHARED_SAMPLE.read_bytes()
    )


def test_query_url_carries_every_parameter_in_a_fixed_order_and_no_token():
    query = api.CategoryQuery(
        cat_id=1031922,
        language="zh",
        sort="sales",
        page_size=50,
        price_start=Decimal("1.50"),
        price_end=Decimal("20"),
        free_shipping=True,
        new_arrival=False,
    )
    url = api.page_url("http://127.0.0.1:8000/", query, 3)
    parts = urlsplit(url)
    assert parts.path == "/1688/category/items/v2"
    assert parse_qsl(parts.query) == [
        ("cat_id", "1031922"),
        ("language", "zh"),
        ("page", "3"),
        ("page_size", "50"),
        ("sort", "sales"),
        ("price_start", "1.5"),
        ("price_end", "20"),
        ("new_arrival", "false"),
        ("free_shipping", "true"),
    ]
    assert "apiToken" not in url
    assert (
        query.key == api.CategoryQuery.model_validate(query.model_dump(mode="json")).key
    )


@pytest.mark.parametrize("message_field", ["msg", "message"])
@pytest.mark.parametrize("code", [417, 422, 439, 499, 500, 503])
def test_error_code_in_the_body_of_an_http_200(code, message_field):
    with pytest.raises(api.ApiError) as raised:
        api.parse_page(body({"code": code, message_field: "boom", "data": None}), 200)
    assert (raised.value.code, raised.value.message, raised.value.source) == (
        code,
        "boom",
        "body",
    )


@pytest.mark.parametrize("code", [417, 422, 439, 499, 500, 503])
def test_error_code_as_http_status_with_a_plain_text_body(code):
    with pytest.raises(api.ApiError) as raised:
        api.parse_page(b"Please reduce concurrency", code)
    assert (raised.value.code, raised.value.source) == (code, "status")
    assert "reduce concurrency" in raised.value.message


def test_error_code_as_both_status_and_body_keeps_the_body_code():
    payload = body({"code": 4011, "message": "no API key found in request"})
    with pytest.raises(api.ApiError) as raised:
        api.parse_page(payload, 401)
    assert raised.value.code == 4011
    assert raised.value.kind is api.ErrorKind.BAD_TOKEN
    assert raised.value.http_status == 401


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (401, api.ErrorKind.BAD_TOKEN),
        (403, api.ErrorKind.BAD_TOKEN),
        (4011, api.ErrorKind.BAD_TOKEN),
        (439, api.ErrorKind.INSUFFICIENT_BALANCE),
        (422, api.ErrorKind.BAD_PARAMETER),
        (404, api.ErrorKind.BAD_PARAMETER),
        (503, api.ErrorKind.CONCURRENCY_LIMIT),
        (429, api.ErrorKind.CONCURRENCY_LIMIT),
        (417, api.ErrorKind.TEMPORARY),
        (499, api.ErrorKind.TEMPORARY),
        (500, api.ErrorKind.TEMPORARY),
        (502, api.ErrorKind.TEMPORARY),
    ],
)
def test_classification_of_codes(code, kind):
    assert api.classify(code) is kind


@pytest.mark.parametrize(
    "raw",
    [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b'{"code": 200, "msg": "success", "data": {"page": 1, "items": [',
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"code": 200, "msg": "success", "data": "nope"}',
        b'{"code": 200, "data": {"items": {"not": "a list"}}}',
        b'{"code": "abc", "data": {}}',
        '{"code": "²", "data": {}}'.encode(),  # str.isdigit says yes, int() no
        b'{"code": "--200", "data": {}}',
    ],
)
def test_bodies_that_are_not_the_promised_json_are_malformed(raw):
    with pytest.raises(api.ApiError) as raised:
        api.parse_page(raw, 200)
    assert raised.value.kind is api.ErrorKind.MALFORMED
    assert raised.value.code is None


def test_html_gateway_page_with_502_status_is_a_temporary_error():
    with pytest.raises(api.ApiError) as raised:
        api.parse_page(b"<html><title>502 Bad Gateway</title></html>", 502)
    assert raised.value.kind is api.ErrorKind.TEMPORARY
    assert "502 Bad Gateway" in raised.value.message


def test_survivable_departures_are_recorded_not_fatal():
    payload = {
        "code": 200,
        "msg": "ok",
        "data": {"items": [{"item_id": 1}, "junk", None], "has_next_page": "yes"},
    }
    page = api.parse_page(body(payload), requested_page=4, requested_page_size=20)
    assert page.page == 4 and page.page_size == 20
    assert page.items == [{"item_id": 1}]
    assert page.total_count is None and page.last_page is None
    assert page.has_next_page is False  # one item of twenty: no next page
    assert any("not objects" in problem for problem in page.problems)
    assert any("has_next_page" in problem for problem in page.problems)


def test_string_numbers_are_read_as_numbers():
    payload = {
        "code": "200",
        "data": {
            "page": "2",
            "page_size": "20",
            "total_count": "45",
            "items": [],
            "has_next_page": True,
        },
    }
    page = api.parse_page(body(payload))
    assert (page.page, page.page_size, page.total_count, page.last_page) == (
        2,
        20,
        45,
        3,
    )
