"""The details feed as Parquet (``TMAPI_DETAILS_FEED=details.parquet``): one
row per item, its variants a list of structs (pyarrow).

:data:`DETAIL_SCHEMA` is the fixed schema of
:class:`~tmapi_crawler.contract.details.DetailItem` for the project's Parquet
exporter (:mod:`.parquet`, which picks it when the first item is a detail
item): prices ``decimal128(18, 2)`` as the listings', properties maps of
strings, the fields not read (``extra``, the item's and each variant's) as
one JSON string.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tmapi_crawler.contract.details import DetailItem, Seller
from tmapi_crawler.feeds.exporters import strict_json

PRICE = pa.decimal128(18, 2)  # to the fen: every price of every feed
PROPERTIES = pa.map_(pa.string(), pa.string())
SELLER = tuple(Seller.model_fields)  # the seller's fields, as the model has them

DETAIL_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("language", pa.string()),
        ("title", pa.string()),
        ("category_id", pa.int64()),
        ("root_category_id", pa.int64()),
        ("currency", pa.string()),
        ("offer_unit", pa.string()),
        ("product_url", pa.string()),
        ("images", pa.list_(pa.string())),
        ("video", pa.string()),
        ("seller", pa.struct([(name, pa.string()) for name in SELLER])),
        ("properties", pa.list_(PROPERTIES)),
        (
            "tiers",
            pa.list_(pa.struct([("min_quantity", pa.int64()), ("price", PRICE)])),
        ),
        (
            "skus",
            pa.list_(
                pa.struct(
                    [
                        ("id", pa.string()),
                        ("spec_id", pa.string()),
                        ("properties", PROPERTIES),
                        ("price", PRICE),
                        ("origin_price", PRICE),
                        ("stock", pa.int64()),
                        ("sale_count", pa.int64()),
                        ("extra", pa.string()),
                    ]
                )
            ),
        ),
        ("sale_count", pa.int64()),
        ("crawled_at", pa.timestamp("us", tz="UTC")),
        ("extra", pa.string()),
    ]
)


def _json(value: dict[str, Any]) -> str | None:
    return strict_json(value) if value else None


def detail_record(item: DetailItem, cell: Any) -> dict[str, Any]:
    """One row of the file; *cell* puts prices and instants in their types
    (the listings' :func:`~tmapi_crawler.feeds.parquet.cell`)."""
    data = item.model_dump()
    data["properties"] = [list(found.items()) for found in item.properties]
    data["tiers"] = [cell("tiers", tier) for tier in data["tiers"]]
    data["skus"] = [
        {
            **cell("skus", sku),
            "properties": list(sku["properties"].items()),
            "extra": _json(sku["extra"]),
        }
        for sku in data["skus"]
    ]
    data["crawled_at"] = cell("crawled_at", data["crawled_at"])
    data["extra"] = _json(item.extra)
    return {name: data.get(name) for name in DETAIL_SCHEMA.names}
