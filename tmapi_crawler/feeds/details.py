"""The details feed's CSV (``TMAPI_DETAILS_FEED=details.csv``): one row per
variant.

:class:`DetailCsvItemExporter` writes each
:class:`~tmapi_crawler.contract.details.DetailItem` as one row per SKU, the
item's own columns repeated on each (an item without variants: one row, the
variant's columns empty), in the fixed order of :data:`DETAIL_CSV_COLUMNS`.
A variant's properties are ``name:value`` pairs joined with ``;``
(``颜色:黑色;尺码:M``), the quantity tiers ``min_quantity:price`` pairs joined
with ``|``, the images joined with ``|``. Cells as the flat CSV writes them
(:func:`~tmapi_crawler.feeds.exporters.cell`).
"""

from __future__ import annotations

from typing import Any

from scrapy.exporters import CsvItemExporter

from tmapi_crawler.contract.details import DetailItem
from tmapi_crawler.feeds.exporters import LIST_SEPARATOR, cell
from tmapi_crawler.feeds.guard import GuardedExport

ITEM_COLUMNS = (
    "item_id", "language", "title", "category_id", "currency", "offer_unit",
    "product_url", "seller.member_id", "seller.company_name", "seller.shop_name",
    "tiers", "images", "video", "sale_count", "crawled_at",
)  # fmt: skip
SKU_COLUMNS = (
    "sku.id", "sku.spec_id", "sku.properties", "sku.price", "sku.origin_price",
    "sku.stock", "sku.sale_count",
)  # fmt: skip
DETAIL_CSV_COLUMNS = (*ITEM_COLUMNS, *SKU_COLUMNS)


def detail_rows(item: DetailItem) -> list[dict[str, str]]:
    """The item's rows: one per variant (one, without any)."""
    shared = {
        "item_id": cell(item.item_id),
        "language": cell(item.language),
        "title": cell(item.title),
        "category_id": cell(item.category_id),
        "currency": cell(item.currency),
        "offer_unit": cell(item.offer_unit),
        "product_url": cell(item.product_url),
        "seller.member_id": cell(item.seller.member_id),
        "seller.company_name": cell(item.seller.company_name),
        "seller.shop_name": cell(item.seller.shop_name),
        "tiers": LIST_SEPARATOR.join(f"{t.min_quantity}:{t.price}" for t in item.tiers),
        "images": cell(item.images),
        "video": cell(item.video),
        "sale_count": cell(item.sale_count),
        "crawled_at": cell(item.crawled_at),
    }
    if not item.skus:
        return [{**shared, **dict.fromkeys(SKU_COLUMNS, "")}]
    return [
        {
            **shared,
            "sku.id": sku.id,
            "sku.spec_id": cell(sku.spec_id),
            "sku.properties": ";".join(f"{k}:{v}" for k, v in sku.properties.items()),
            "sku.price": cell(sku.price),
            "sku.origin_price": cell(sku.origin_price),
            "sku.stock": cell(sku.stock),
            "sku.sale_count": cell(sku.sale_count),
        }
        for sku in item.skus
    ]


class DetailCsvItemExporter(GuardedExport, CsvItemExporter):
    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        if self.fields_to_export is None:
            self.fields_to_export = list(DETAIL_CSV_COLUMNS)

    def write_item(self, item: Any) -> None:
        if not isinstance(item, DetailItem):
            raise TypeError(f"not item details: {type(item).__name__}")
        for row in detail_rows(item):
            super().write_item(row)
