"""What an answer means, on its own: pages, errors, the documented sample;
whatever the API sends, a page or an ApiError (property-based: see
tests/strategies.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.answers import parse_page
from tests.conftest import ROOT
from tests.crawlers import project_crawler
from tests.strategies import SAMPLE_ITEM, json_values
from tmapi_crawler.contract.answer import ApiError, ErrorKind, classify
from tmapi_crawler.feeds.feedfile import LineFlushingJsonLinesExporter
from tmapi_crawler.pipelines.validation import ValidationPipeline
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE

SHARED_SAMPLE = ROOT.parent / "shared/tmapi/category-items-v2.sample.json"


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_the_documentation_sample_is_a_page_of_three_items():
    page = parse_page(SAMPLE_RESPONSE.read_bytes())
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


@pytest.mark.parametrize("message_field", ["msg", "message"])
@pytest.mark.parametrize("code", [417, 422, 439, 499, 500, 503])
def test_error_code_in_the_body_of_an_http_200(code, message_field):
    with pytest.raises(ApiError) as raised:
        parse_page(body({"code": code, message_field: "boom", "data": None}), 200)
    assert (raised.value.code, raised.value.message, raised.value.source) == (
        code,
        "boom",
        "body",
    )


@pytest.mark.parametrize("code", [417, 422, 439, 499, 500, 503])
def test_error_code_as_http_status_with_a_plain_text_body(code):
    with pytest.raises(ApiError) as raised:
        parse_page(b"Please reduce concurrency", code)
    assert (raised.value.code, raised.value.source) == (code, "status")
    assert "reduce concurrency" in raised.value.message


def test_error_code_as_both_status_and_body_keeps_the_body_code():
    payload = body({"code": 4011, "message": "no API key found in request"})
    with pytest.raises(ApiError) as raised:
        parse_page(payload, 401)
    assert raised.value.code == 4011
    assert raised.value.kind is ErrorKind.BAD_TOKEN
    assert raised.value.http_status == 401


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (401, ErrorKind.BAD_TOKEN),
        (403, ErrorKind.BAD_TOKEN),
        (4011, ErrorKind.BAD_TOKEN),
        (439, ErrorKind.INSUFFICIENT_BALANCE),
        (422, ErrorKind.BAD_PARAMETER),
        (404, ErrorKind.BAD_PARAMETER),
        (503, ErrorKind.CONCURRENCY_LIMIT),
        (429, ErrorKind.CONCURRENCY_LIMIT),
        (417, ErrorKind.TEMPORARY),
        (499, ErrorKind.TEMPORARY),
        (500, ErrorKind.TEMPORARY),
        (502, ErrorKind.TEMPORARY),
    ],
)
def test_classification_of_codes(code, kind):
    assert classify(code) is kind


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
    with pytest.raises(ApiError) as raised:
        parse_page(raw, 200)
    assert raised.value.kind is ErrorKind.MALFORMED
    assert raised.value.code is None


def test_html_gateway_page_with_502_status_is_a_temporary_error():
    with pytest.raises(ApiError) as raised:
        parse_page(b"<html><title>502 Bad Gateway</title></html>", 502)
    assert raised.value.kind is ErrorKind.TEMPORARY
    assert "502 Bad Gateway" in raised.value.message


def test_survivable_departures_are_recorded_not_fatal():
    payload = {
        "code": 200,
        "msg": "ok",
        "data": {"items": [{"item_id": 1}, "junk", None], "has_next_page": "yes"},
    }
    page = parse_page(body(payload), requested_page=4, requested_page_size=20)
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
    page = parse_page(body(payload))
    assert (page.page, page.page_size, page.total_count, page.last_page) == (
        2,
        20,
        45,
        3,
    )


# --- hostile answers: a page or an ApiError, never another exception ---------

PAGE_FIELDS = ("page", "page_size", "total_count", "has_next_page", "items")
# data objects that look like pages: every documented field, each of any type
page_like = st.fixed_dictionaries(
    {},
    optional={
        "page": json_values,
        "page_size": json_values,
        "total_count": json_values,
        "has_next_page": json_values,
        "items": st.lists(
            st.dictionaries(st.sampled_from(["item_id", "title", "price"]), json_values)
            | json_values,
            max_size=6,
        )
        | json_values,
    },
)
answers = st.fixed_dictionaries(
    {},
    optional={
        "code": st.sampled_from([200, "200", 0, 417, 439, 4011, "x", None])
        | json_values,
        "msg": json_values,
        "data": page_like | json_values,
    },
)
statuses = st.sampled_from([200, 201, 204, 400, 401, 422, 439, 499, 500, 502, 503])


def check_parse(body: bytes, status: int) -> None:
    """Either a sound page or an ApiError; nothing else gets out."""
    try:
        page = parse_page(body, status, requested_page=3, requested_page_size=20)
    except ApiError as error:
        assert str(error)  # printable, with a reason for stats
        assert error.reason
        return
    assert page.page >= 1 and page.page_size >= 1
    assert isinstance(page.has_next_page, bool)
    assert all(isinstance(item, dict) for item in page.items)
    assert page.total_count is None or page.total_count >= 0
    assert page.last_page is None or page.last_page >= 1


@given(body=st.binary(max_size=2000), status=statuses)
def test_any_bytes_give_a_page_or_an_api_error(body, status):
    check_parse(body, status)


@given(payload=json_values, status=statuses)
def test_any_json_gives_a_page_or_an_api_error(payload, status):
    check_parse(json.dumps(payload).encode(), status)


@given(payload=answers, status=statuses)
def test_any_answer_shaped_json_gives_a_page_or_an_api_error(payload, status):
    check_parse(json.dumps(payload).encode(), status)


@given(payload=answers, cut=st.integers(min_value=0, max_value=400))
def test_any_answer_cut_short_or_with_bad_bytes_gives_a_page_or_an_api_error(
    payload, cut
):
    body = json.dumps(payload, ensure_ascii=False).encode()
    check_parse(body[:cut], 200)
    check_parse(body.replace(b'"', b'"\xff', 1), 200)


def test_any_data_with_a_success_code_is_read_as_a_page():
    """Not vacuous: the answer strategy does reach page_from_data."""
    page = parse_page(b'{"code": 200, "data": {}}', requested_page=2)
    assert page.page == 2 and page.items == [] and page.problems


def sample(items: list[dict[str, Any]], **data: Any) -> bytes:
    base = {"page": 1, "page_size": 20, "total_count": 45, "has_next_page": True}
    return json.dumps({"code": 200, "data": {**base, "items": items, **data}}).encode()


def test_a_ten_megabyte_body_is_read():
    body = sample([{"item_id": 1, "title": "x" * (10 * 1024 * 1024)}])
    page = parse_page(body)
    assert len(page.items) == 1 and len(page.items[0]["title"]) == 10 * 1024 * 1024


def test_bytes_that_are_not_utf8_in_a_title_keep_the_page_and_are_reported():
    body = sample([{"item_id": 1, "title": "AB"}, {"item_id": 2, "title": "ok"}])
    body = body.replace(b"AB", b"A\xff\xfeB")
    page = parse_page(body)
    assert [item["item_id"] for item in page.items] == [1, 2]
    assert page.items[0]["title"] == "A\ufffd\ufffdB"
    assert any("UTF-8" in problem for problem in page.problems)


def test_a_lone_surrogate_escape_is_replaced_so_the_item_can_be_written():
    """``"\\ud800"`` is valid JSON but decodes to a character no UTF-8 file
    can hold: the item would be lost at export. It becomes U+FFFD, reported
    once; a pair (an emoji) is left as it is."""
    body = sample([{**SAMPLE_ITEM, "item_id": 1, "title": "A\ud800B \U0001f600"}])
    assert b"\\ud800" in body and b"\\ud83d\\ude00" in body
    page = parse_page(body)
    assert page.items[0]["title"] == "A\ufffdB \U0001f600"
    assert any("surrogate" in problem for problem in page.problems)
    item = ValidationPipeline.from_crawler(project_crawler()).process_item(
        page.items[0]
    )
    feed = io.BytesIO()
    LineFlushingJsonLinesExporter(feed, encoding="utf-8").export_item(item)
    assert json.loads(feed.getvalue())["title"] == "A\ufffdB \U0001f600"


def test_an_empty_items_list_that_says_more_follow_is_reported():
    page = parse_page(sample([], page=7))
    assert page.has_next_page and page.items == []
    assert any("empty but has_next_page" in problem for problem in page.problems)
