"""The category info endpoint: its URL and its answers."""

from __future__ import annotations

import json

import pytest

from tests.answers import parse_category_info
from tmapi_crawler.contract.answer import ApiError
from tmapi_crawler.contract.categoryinfo import (
    category_info_from_data,
    category_info_url,
)


def envelope(data) -> bytes:
    return json.dumps({"code": 200, "msg": "success", "data": data}).encode()


def test_info_urls_and_answers_are_read_as_documented():
    assert category_info_url("http://h/", 7) == "http://h/1688/category/info?cat_id=7"
    assert category_info_url("http://h") == "http://h/1688/category/info"
    parsed = parse_category_info(
        envelope(
            {
                "id": 7,
                "name": "服装",
                "level": 1,
                "parent_id": 0,
                "path": [{"id": 7}],
                "children": [
                    {"id": 71, "has_children": True},
                    {"id": "72", "has_children": False},
                    {"id": 73},
                    "junk",
                ],
            }
        )
    )
    assert parsed.id == 7 and parsed.path == (7,)
    assert [(c.id, c.has_children) for c in parsed.children] == [
        (71, True),
        (72, False),
        (73, True),  # unknown: asked rather than lost
    ]
    assert len(parsed.problems) == 2
    top = category_info_from_data([{"id": 1, "has_children": True}])
    assert top.id is None and [c.id for c in top.children] == [1]


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, b'{"code": 439, "msg": "no balance", "data": null}', 439),
        (503, b"busy", 503),
        (200, b"<html>", None),
    ],
)
def test_info_errors_are_api_errors(status, body, code):
    with pytest.raises(ApiError) as raised:
        parse_category_info(body, status)
    assert raised.value.code == code
