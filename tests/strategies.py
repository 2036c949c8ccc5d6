"""Hostile input for property-based tests (hypothesis, derandomized: see the
profile in conftest.py): any JSON, any spider argument, any item field."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from tmapi_crawler.contract.arguments import ARGUMENT_NAMES
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE

# The documentation's first sample item with the context the spider adds.
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

# Spider arguments: strings from ``-a`` or JSON values from an enqueued job.
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

# Items: the documented fields and any other, each of any JSON value.
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
item_fields = st.dictionaries(
    st.sampled_from(ITEM_FIELDS) | st.text(max_size=8), json_values, max_size=12
)
