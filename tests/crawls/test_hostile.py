"""Hostile input: whatever the API or the user sends, the crawler answers with a
page, an :class:`~tmapi_crawler.contract.api.ApiError` or an
:class:`~tmapi_crawler.contract.arguments.ArgumentError`, never another exception.

Property-based (hypothesis, derandomized: see the profile in conftest.py),
plus the shapes seen in the wild, in a real crawl against the simulator."""

from __future__ import annotations

import contextlib
import io
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrapy.exceptions import DropItem
from scrapy.exporters import JsonLinesItemExporter

from tests.crawlers import project_crawler
from tmapi_crawler.contract import api
from tmapi_crawler.contract.arguments import (
    ARGUMENT_NAMES,
    ArgumentError,
    parse_arguments,
)
from tmapi_crawler.distributed.jobs import JobError, parse_job
from tmapi_crawler.feeds.feedfile import LineFlushingJsonLinesExporter
from tmapi_crawler.pipelines.dedupe import DedupePipeline
from tmapi_crawler.pipelines.validation import ValidationPipeline
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE, Catalog

SAMPLE_ITEM = {
    **json.loads(SAMPLE_RESPONSE.read_text("utf-8"))["data"]["items"][0],
    "cat_id": 1031922,
    "language": "en",
    "sort": "default",
    "filters": {},
    "page": 1,
    "position": 1,
    "crawled_at": "2026-11-27T00:00:00+00:00",
}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
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
        page = api.parse_page(body, status, requested_page=3, requested_page_size=20)
    except api.ApiError as error:
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
    page = api.parse_page(b'{"code": 200, "data": {}}', requested_page=2)
    assert page.page == 2 and page.items == [] and page.problems


def sample(items: list[dict[str, Any]], **data: Any) -> bytes:
    base = {"page": 1, "page_size": 20, "total_count": 45, "has_next_page": True}
    return json.dumps({"code": 200, "data": {**base, "items": items, **data}}).encode()


def test_a_ten_megabyte_body_is_read():
    body = sample([{"item_id": 1, "title": "x" * (10 * 1024 * 1024)}])
    page = api.parse_page(body)
    assert len(page.items) == 1 and len(page.items[0]["title"]) == 10 * 1024 * 1024


def test_bytes_that_are_not_utf8_in_a_title_keep_the_page_and_are_reported():
    body = sample([{"item_id": 1, "title": "AB"}, {"item_id": 2, "title": "ok"}])
    body = body.replace(b"AB", b"A\xff\xfeB")
    page = api.parse_page(body)
    assert [item["item_id"] for item in page.items] == [1, 2]
    assert page.items[0]["title"] == "A\ufffd\ufffdB"
    assert any("UTF-8" in problem for problem in page.problems)


def test_a_lone_surrogate_escape_is_replaced_so_the_item_can_be_written():
    """``"\\ud800"`` is valid JSON but decodes to a character no UTF-8 file
    can hold: the item would be lost at export. It becomes U+FFFD, reported
    once; a pair (an emoji) is left as it is."""
    body = sample([{**SAMPLE_ITEM, "item_id": 1, "title": "A\ud800B \U0001f600"}])
    assert b"\\ud800" in body and b"\\ud83d\\ude00" in body
    page = api.parse_page(body)
    assert page.items[0]["title"] == "A\ufffdB \U0001f600"
    assert any("surrogate" in problem for problem in page.problems)
    item = ValidationPipeline.from_crawler(project_crawler()).process_item(
        page.items[0]
    )
    feed = io.BytesIO()
    LineFlushingJsonLinesExporter(feed, encoding="utf-8").export_item(item)
    assert json.loads(feed.getvalue())["title"] == "A\ufffdB \U0001f600"


def test_an_empty_items_list_that_says_more_follow_is_reported():
    page = api.parse_page(sample([], page=7))
    assert page.has_next_page and page.items == []
    assert any("empty but has_next_page" in problem for problem in page.problems)


# --- spider arguments and jobs -------------------------------------------------

argument_values = (
    st.text(max_size=12)
    | st.integers(min_value=-5, max_value=10**12)
    | st.floats()
    | st.booleans()
    | st.none()
    | st.lists(st.text(max_size=5) | st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
    | st.sampled_from(["1,2,3", " 7 ", "en,zh", "sales", "yes", "9.9", "1e3", "NaN"])
)
argument_names = st.sampled_from([*ARGUMENT_NAMES, "_job", "colour", ""]) | st.text(
    max_size=6
)


@given(arguments=st.dictionaries(argument_names, argument_values, max_size=6))
def test_any_arguments_parse_or_name_every_bad_one(arguments):
    """Strings from ``-a`` or JSON values from an enqueued job: either a valid
    crawl, or an ArgumentError whose every line names an argument."""
    try:
        parsed = parse_arguments(arguments)
    except ArgumentError as error:
        assert error.problems
        for problem in error.problems:
            named = [*map(str, arguments), *ARGUMENT_NAMES, "price_start/price_end"]
            assert any(
                problem.startswith((f"{name}=", f"{name}:")) for name in named
            ), problem
        assert "nothing was sent" in str(error)
        return
    assert parsed.cat_id and all(cat_id > 0 for cat_id in parsed.cat_id)
    assert parsed.queries()


@given(
    job=st.binary(max_size=300)
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(argument_names, argument_values, max_size=5).map(
        lambda job: json.dumps(job, default=str).encode()
    )
)
def test_any_enqueued_job_parses_or_is_refused_with_a_reason(job):
    try:
        parsed = parse_job(job)
    except JobError as error:
        assert str(error)
    else:
        assert parsed.queries()


def test_a_job_nested_too_deep_is_refused():
    with pytest.raises(JobError, match="not JSON"):
        parse_job("[" * 100_000)


@given(cat_id=st.text(max_size=15))
def test_any_category_text_parses_or_names_cat_id(cat_id):
    try:
        parsed = parse_arguments({"cat_id": cat_id})
    except ArgumentError as error:
        assert any(problem.startswith("cat_id") for problem in error.problems)
    else:
        assert all(str(c) in cat_id for c in parsed.cat_id)


# --- the shapes seen in the wild, in a real crawl -------------------------------


def test_quirky_pages_are_logged_once_counted_and_their_valid_items_kept(
    simulator, crawl
):
    sim = simulator(
        size=["44=70", "45=30"],
        miscount="44=-15",  # total_count says 55: three pages, there are four
        quirk=[
            "44:2=item_id_string,null_strings,missing_nested,extra_fields",
            "44:3=not_object,non_utf8",
            "44:4=huge",
            "45:*=endless",  # has_next_page true for ever, empty pages past the end
        ],
    )
    result = crawl(sim.url, {"cat_id": "44,45"})
    assert result.returncode == 0, result.log[-3000:]
    catalog = Catalog(seed=0, sizes={44: 70, 45: 30})
    delivered = {(i["cat_id"], str(i["item_id"])) for i in result.items}
    expected = {(c, str(p.item_id)) for c in (44, 45) for p in catalog.expected(c)}
    replaced = {(44, str(catalog.expected(44)[40].item_id))}  # page 3's first item
    untitled = {(44, str(catalog.expected(44)[20].item_id))}  # null title: invalid
    assert delivered == expected - replaced - untitled
    assert len(result.items) == len(delivered)
    assert "'tmapi/items/invalid': 1," in result.log  # logged and counted
    invalid = [line for line in result.log.splitlines() if "Invalid item" in line]
    assert len(invalid) == 1 and "category 44" in invalid[0] and "page 2" in invalid[0]
    warnings = [line for line in result.log.splitlines() if "WARNING" in line]
    page_3 = [line for line in warnings if "page 3 of category 44" in line]
    assert len(page_3) == 1  # once, however many problems
    assert "not objects" in page_3[0] and "UTF-8" in page_3[0]
    assert any("page 3 of category 45" in line for line in warnings)
    calls = [(c["cat_id"], c["page"]) for c in sim.calls()]
    assert sorted(p for c, p in calls if c == 45) == [1, 2, 3]  # the walk ended
    stat = re.search(r"'tmapi/pages/with_problems': (\d+)", result.log)
    assert stat and int(stat.group(1)) >= 3


@pytest.mark.parametrize("quirk", ["item_id_string", "null_strings", "extra_fields"])
def test_item_shapes_never_crash_the_crawl(simulator, crawl, quirk):
    sim = simulator(size="46=5", quirk=f"46:1={quirk}")
    result = crawl(sim.url, {"cat_id": "46"})
    assert result.returncode == 0, result.log[-3000:]
    assert "Traceback" not in result.log


# --- the item pipeline ------------------------------------------------------------

ITEM_FIELDS = [
    "item_id",
    "title",
    "price",
    "img",
    "product_url",
    "shop_info",
    "price_info",
    "sale_info",
    "delivery_info",
    "cat_id",
    "page",
]


@given(
    fields=st.dictionaries(
        st.sampled_from(ITEM_FIELDS) | st.text(max_size=8), json_values, max_size=12
    ),
    base=st.booleans(),
)
def test_any_item_is_delivered_or_dropped_and_counted(fields, base):
    """Validation and dedupe never crash: an item passes (typed) or is dropped
    with DropItem and counted as invalid or duplicate."""
    crawler = project_crawler()
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


@given(
    fields=st.dictionaries(
        st.sampled_from(ITEM_FIELDS) | st.text(max_size=8), json_values, max_size=12
    ),
    encoding=st.sampled_from(["utf-8", None]),
)
def test_a_typed_item_is_written_as_scrapys_own_exporter_writes_it(fields, encoding):
    """The JSON Lines exporter encodes typed items with pydantic, not Scrapy's
    generic path: for any item that validates, the line holds the same JSON
    (the same keys in the same order, the same values), or both fail. One
    difference, on purpose: a number JSON cannot hold (an API value of 1e999,
    kept in an extra field) is null, where Scrapy writes Infinity, which JSON
    readers refuse."""
    validation = ValidationPipeline.from_crawler(project_crawler())
    try:
        item = validation.process_item({**SAMPLE_ITEM, **fields})
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
