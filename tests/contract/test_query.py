"""The query a category page is fetched with, and its URL."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

from tmapi_crawler.contract.query import CategoryQuery, page_url


def test_query_url_carries_every_parameter_in_a_fixed_order_and_no_token():
    query = CategoryQuery(
        cat_id=1031922,
        language="zh",
        sort="sales",
        page_size=50,
        price_start=Decimal("1.50"),
        price_end=Decimal("20"),
        free_shipping=True,
        new_arrival=False,
    )
    url = page_url("http://127.0.0.1:8000/", query, 3)
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
    assert query.key == CategoryQuery.model_validate(query.model_dump(mode="json")).key
