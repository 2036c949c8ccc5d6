"""Which endpoint a call asks, and how each reads its answer's data."""

from __future__ import annotations

import pytest

from tmapi_crawler.contract import api
from tmapi_crawler.contract.endpoints import CATEGORY_INFO, ITEMS, endpoint_of


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://api.tmapi.io/1688/category/items/v2?cat_id=1&page=2", ITEMS),
        ("http://127.0.0.1:8080/prefix/1688/category/items/v2/", ITEMS),
        ("https://api.tmapi.io/1688/category/info?cat_id=1", CATEGORY_INFO),
        ("https://api.tmapi.io/1688/category/info", CATEGORY_INFO),
    ],
)
def test_the_endpoint_is_found_by_the_path_the_call_went_to(url, endpoint):
    assert endpoint_of(url) is endpoint


def test_a_path_no_endpoint_owns_is_refused_by_name():
    with pytest.raises(ValueError, match="/1688/item_ratings"):
        endpoint_of("https://api.tmapi.io/1688/item_ratings?item_id=1")


def test_a_page_is_read_with_what_was_asked_where_the_answer_is_silent():
    items = [{"item_id": n} for n in range(30)]
    data = {"items": items, "has_next_page": True, "total_count": 900}
    asked = {"query": {"cat_id": 5, "page_size": 30}, "page": 3, "last": 3}
    page = ITEMS.parse(data, asked)
    assert isinstance(page, api.Page)
    assert (page.page, page.page_size, page.total_count) == (3, 30, 900)
    assert page.problems == ("page is 'missing'", "page_size is 'missing'")


def test_a_page_before_the_last_with_fewer_items_than_asked_says_the_size_served():
    """Asked 50, silent on page_size, 20 items and more to come: the API
    clamps, and the page is read at 20 (at 50, the plan would skip pages)."""
    items = [{"item_id": n} for n in range(20)]
    data = {"items": items, "has_next_page": True, "total_count": 900, "page": 1}
    page = ITEMS.parse(data, {"query": {"cat_id": 5, "page_size": 50}, "page": 1})
    assert page.page_size == 20
    assert "page_size is 50 but 20 are served" in page.problems


def test_a_category_info_answer_keeps_its_children_and_names_its_problems():
    data = {"id": 9, "children": [{"id": 10, "has_children": False}, {"name": "x"}]}
    info = CATEGORY_INFO.parse(data, {"info": 9, "label": "category info of 9"})
    assert isinstance(info, api.CategoryInfo)
    assert [child.id for child in info.children] == [10]
    assert len(info.problems) == 1 and "not a category" in info.problems[0]
