"""The simulator follows the API contract: a real server answering HTTP calls."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

from tmapi_crawler.simulator.catalog import SAMPLE_CATEGORY


def call(base_url: str, token: str | None = "t", header: bool = False, **params: Any):
    """(HTTP status, decoded JSON or text) of one call to the items endpoint."""
    query = dict(params)
    if token and not header:
        query["apiToken"] = token
    request = urllib.request.Request(
        f"{base_url}/1688/category/items/v2?{urlencode(query)}"
    )
    if token and header:
        request.add_header("apikey", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def test_missing_token_is_answered_401_with_the_documented_body(simulator):
    sim = simulator()
    assert call(sim.url, token=None, cat_id=5) == (
        401,
        {"code": 4011, "message": "no API key found in request"},
    )


def test_only_configured_tokens_are_accepted_in_either_placement(simulator):
    sim = simulator(token="right")
    assert call(sim.url, token="wrong", cat_id=5)[0] == 401
    assert call(sim.url, token="right", cat_id=5)[1]["code"] == 200
    assert call(sim.url, token="right", header=True, cat_id=5)[1]["code"] == 200
    placements = [entry["token"] for entry in sim.calls()]
    assert placements == ["query", "query", "header"]
    assert (
        "right" not in sim.request_log.read_text()
        and "wrong" not in sim.request_log.read_text()
    )


def test_the_documentation_sample_opens_its_category(simulator):
    sim = simulator()
    _, answer = call(sim.url, cat_id=SAMPLE_CATEGORY, language="zh")
    ids = [item["item_id"] for item in answer["data"]["items"][:3]]
    assert ids == [991188728585, 740842253828, 819097915075]


def test_total_count_is_capped_at_2000_and_pages_stop_at_the_cap(simulator):
    sim = simulator(size="77=2345")
    _, first = call(sim.url, cat_id=77, page=1)
    _, last = call(sim.url, cat_id=77, page=100)
    _, beyond = call(sim.url, cat_id=77, page=101)
    assert (
        first["data"]["total_count"] == 2000 and first["data"]["has_next_page"] is True
    )
    assert len(last["data"]["items"]) == 20 and last["data"]["has_next_page"] is False
    assert beyond["data"]["items"] == [] and beyond["data"]["has_next_page"] is False


def test_small_categories_report_their_real_count(simulator):
    sim = simulator(size="78=45")
    pages = [call(sim.url, cat_id=78, page=n)[1]["data"] for n in (1, 2, 3)]
    assert [p["total_count"] for p in pages] == [45, 45, 45]
    assert [len(p["items"]) for p in pages] == [20, 20, 5]
    assert [p["has_next_page"] for p in pages] == [True, True, False]
    assert len({item["item_id"] for p in pages for item in p["items"]}) == 45


@pytest.mark.parametrize(
    ("sort", "descending"), [("price_up", False), ("price_down", True)]
)
def test_price_sorts_and_price_filters(simulator, sort, descending):
    sim = simulator(size="79=500")
    _, answer = call(
        sim.url, cat_id=79, sort=sort, price_start="5", price_end="30", page_size=50
    )
    prices = [Decimal(item["price"]) for item in answer["data"]["items"]]
    assert prices and all(Decimal(5) <= price <= Decimal(30) for price in prices)
    assert prices == sorted(prices, reverse=descending)


def test_boolean_filters_select_matching_items(simulator):
    sim = simulator(size="80=400")
    _, answer = call(
        sim.url, cat_id=80, free_shipping="true", is_super_factory="true", page_size=50
    )
    items = answer["data"]["items"]
    assert items
    assert all(item["delivery_info"]["free_shipping"] for item in items)
    assert all(item["shop_info"]["is_super_factory"] for item in items)
    assert answer["data"]["filters"] == {
        "free_shipping": "true",
        "is_super_factory": "true",
    }


def test_titles_are_translated_and_keep_the_chinese_origin(simulator):
    sim = simulator(size="81=30")
    zh = call(sim.url, cat_id=81, language="zh")[1]["data"]["items"][0]
    en = call(sim.url, cat_id=81, language="en")[1]["data"]["items"][0]
    assert zh["item_id"] == en["item_id"]
    assert "title_origin" not in zh
    assert en["title_origin"] == zh["title"] and en["title"] != zh["title"]
    assert en["title"].isascii()


def test_bad_parameters_are_answered_with_422(simulator):
    sim = simulator()
    assert call(sim.url, cat_id="x")[1]["code"] == 422
    assert call(sim.url, cat_id=5, page_size=500)[1]["code"] == 422
    assert call(sim.url, cat_id=5, sort="random")[1]["code"] == 422


@pytest.mark.parametrize(
    ("style", "status", "body_code"),
    [("status", 503, None), ("body", 200, 503), ("both", 503, 503)],
)
def test_scripted_faults_in_each_style_then_real_pages(
    simulator, style, status, body_code
):
    sim = simulator(size="82=60", fault=f"82:2=503@{style},499")
    first = call(sim.url, cat_id=82, page=2)
    assert first[0] == status
    if body_code is None:
        assert isinstance(first[1], str) and "concurrency" in first[1]
    else:
        assert first[1]["code"] == body_code
    assert call(sim.url, cat_id=82, page=2)[1]["code"] == 499
    assert call(sim.url, cat_id=82, page=2)[1]["code"] == 200
    assert call(sim.url, cat_id=82, page=1)[1]["code"] == 200
    assert [c["outcome"] for c in sim.calls()] == ["fault:503", "fault:499", "ok", "ok"]


def test_breakages(simulator):
    sim = simulator(size="83=60", fault=["83:1=html502,truncated,empty", "83:2=439*"])
    status, html = call(sim.url, cat_id=83, page=1)
    assert status == 502 and "Bad Gateway" in html
    status, truncated = call(sim.url, cat_id=83, page=1)
    assert (
        status == 200 and isinstance(truncated, str) and truncated.startswith('{"code"')
    )
    assert call(sim.url, cat_id=83, page=1) == (200, "")
    assert [call(sim.url, cat_id=83, page=2)[1]["code"] for _ in range(3)] == [439] * 3


def test_concurrency_cap_answers_503_to_calls_above_it(simulator):
    sim = simulator(size="84=400", latency=0.3, max_concurrency=2)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda n: call(sim.url, cat_id=84, page=n), range(1, 9))
        )
    codes = sorted(answer[1]["code"] for answer in answers)
    assert codes.count(503) >= 4 and codes.count(200) >= 2
    assert max(entry["in_flight"] for entry in sim.calls()) >= 3


@pytest.mark.parametrize(
    ("mode", "quick"), [("at-once", True), ("after-latency", False)]
)
def test_the_503_over_the_cap_comes_at_once_or_after_the_latency(
    simulator, mode, quick
):
    sim = simulator(size="85=400", latency=0.5, max_concurrency=1, cap_answer=mode)
    with ThreadPoolExecutor(3) as pool:
        answers = list(
            pool.map(lambda n: call(sim.url, cat_id=85, page=n), range(1, 4))
        )
    assert sorted(answer[1]["code"] for answer in answers) == [200, 503, 503]
    refused = [entry for entry in sim.calls() if entry["outcome"] == "cap"]
    assert len(refused) == 2
    assert all((entry["dt"] < 0.25) is quick for entry in refused), refused
    assert all(entry["status"] == 503 for entry in refused)


def test_the_hostile_quirk_serves_nine_hostile_listings_and_the_rest_intact(simulator):
    sim = simulator(size="84=100", quirk="84:3=hostile")
    status, plain = call(sim.url, cat_id=84, page=3, page_size=20)
    assert status == 200
    url = f"{sim.url}/1688/category/items/v2?" + urlencode(
        {"apiToken": "t", "cat_id": 84, "page": 3}
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        raw = response.read()
    assert b'"price": NaN' in raw and b'"price": 1e309' in raw  # raw JSON tokens
    items = json.loads(raw)["data"]["items"]
    assert len(items) == 20
    assert items[0]["item_id"] == 2**70 and items[1]["item_id"] < 0
    assert items[2]["item_id"] == "\uff11\uff12\uff13\uff14\uff15"
    assert items[3]["price"] != items[3]["price"]  # NaN
    assert items[4]["price"] == float("inf") and items[5]["price"] == "-3.00"
    assert isinstance(items[6]["shop_info"]["company_name"], dict)
    title = items[7]["title"]
    assert len(title) == 100_000 and "\x00" in title and "\u202e" in title
    assert items[8]["img"].startswith("javascript:")
    assert items[9:] == plain["data"]["items"][9:]  # the others as the catalog has them
    assert call(sim.url, cat_id=84, page=2)[1]["data"]["items"][0]["price"] != "-3.00"


def detail(base_url: str, **params: Any):
    url = f"{base_url}/1688/item_detail?{urlencode({'apiToken': 't', **params})}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_item_details_for_listed_gone_and_unknown_items(simulator):
    sim = simulator(size=["51=40"], day=1)
    _, page = call(sim.url, cat_id=51, page_size=50)
    listed = {item["item_id"] for item in page["data"]["items"]}
    item_id = min(listed)
    found = detail(sim.url, item_id=item_id, language="en")
    assert found["code"] == 200 and found["data"]["item_id"] == item_id
    assert found["data"]["skus"] and found["data"]["category_id"] == 51
    zh = detail(sim.url, item_id=item_id)  # the endpoint's default language: zh
    assert "颜色" in zh["data"]["skus"][0]["props_names"]
    from tmapi_crawler.simulator.catalog import Catalog

    day0 = {p.item_id for p in Catalog(0, {51: 40}).products(51)}
    gone = min(day0 - listed)
    assert detail(sim.url, item_id=gone, language="en")["data"] is None
    unknown = detail(sim.url, item_id=123, language="en")
    assert unknown["code"] == 422 and unknown["data"] is None
    logged = [c for c in sim.calls() if c["path"] == "/1688/item_detail"]
    assert [c["item_id"] for c in logged] == [item_id, item_id, gone, 123]


@pytest.mark.parametrize(
    ("over", "code", "items", "page_size"),
    [("refuse", 422, None, None), ("clamp", 200, 20, 20), ("clamp-echo", 200, 20, 50)],
)
def test_a_page_size_above_the_largest_served_is_refused_or_clamped(
    simulator, over, code, items, page_size
):
    sim = simulator(size=["5=100"], max_page_size=20, page_size_over=over)
    _, body = call(sim.url, cat_id=5, page_size=50)
    assert body["code"] == code
    if items is not None:
        data = body["data"]
        assert (len(data["items"]), data["page_size"]) == (items, page_size)
        assert data["has_next_page"] and data["total_count"] == 100
        second = call(sim.url, cat_id=5, page=2, page_size=50)[1]["data"]["items"]
        assert second[0]["item_id"] not in {i["item_id"] for i in data["items"]}
