"""Parquet feeds (``-O items.parquet``, ``format: parquet``), with pyarrow.

:class:`ParquetItemExporter` writes one fixed schema for the whole file,
whatever the first item held: the item model's (:data:`ITEM_SCHEMA`), the
changes feed's (:data:`CHANGE_SCHEMA`) when the first record is a change, or
the details feed's (:mod:`.detailparquet`) when it is an item's details.
``item_id`` is ``int64``; prices are ``decimal128(18, 2)`` (to the fen);
``crawled_at`` and the changes' instants are UTC timestamps; nested objects
are structs and lists are lists; fields the model does not know go, as one
JSON object, in the string column ``extra``. Items are written in row groups
of ``PARQUET_ROW_GROUP`` (a feed option ``parquet_row_group``), so memory
stays flat however long the crawl. A value the schema cannot hold costs its
item, never the row group nor the file: the group is written without it
(:mod:`tmapi_crawler.feeds.guard`), so the file always ends with its footer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from itemadapter import ItemAdapter
from scrapy.exporters import BaseItemExporter

from tmapi_crawler.contract.api import FILTER_FLAGS
from tmapi_crawler.contract.details import DetailItem
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.feeds.detailparquet import DETAIL_SCHEMA, PRICE, detail_record
from tmapi_crawler.feeds.exporters import strict_json
from tmapi_crawler.feeds.guard import GuardedExport

PARQUET_ROW_GROUP = 10_000
CENT = Decimal("0.01")
TIME = pa.timestamp("us", tz="UTC")
TEXTS = pa.list_(pa.string())

ITEM_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("product_url", pa.string()),
        ("title", pa.string()),
        ("title_origin", pa.string()),
        ("img", pa.string()),
        ("category_path", TEXTS),
        ("price", PRICE),
        (
            "price_info",
            pa.struct(
                [("price", PRICE), ("sale_price", PRICE), ("origin_price", PRICE)]
            ),
        ),
        ("currency", pa.string()),
        ("moq", pa.int64()),
        ("quantity_begin", pa.int64()),
        (
            "sale_info",
            pa.struct(
                [
                    ("sale_quantity_90days", pa.int64()),
                    ("sale_quantity_90days_text", pa.string()),
                ]
            ),
        ),
        (
            "delivery_info",
            pa.struct(
                [
                    ("area_from", TEXTS),
                    ("free_shipping", pa.bool_()),
                    ("ship_in_48h", pa.bool_()),
                ]
            ),
        ),
        (
            "shop_info",
            pa.struct(
                [
                    ("company_name", pa.string()),
                    ("is_powerful_seller", pa.bool_()),
                    ("is_super_factory", pa.bool_()),
                    ("shop_years", pa.int64()),
                    ("score_info", pa.struct([("composite_score", pa.float64())])),
                ]
            ),
        ),
        ("item_repurchase_rate", pa.float64()),
        ("low_refund_rate", pa.bool_()),
        ("ship_in_48h", pa.bool_()),
        ("one_piece_min_order", pa.bool_()),
        ("cat_id", pa.int64()),
        ("language", pa.string()),
        ("sort", pa.string()),
        (
            "filters",
            pa.struct(
                [("price_start", PRICE), ("price_end", PRICE)]
                + [(name, pa.bool_()) for name in FILTER_FLAGS]
            ),
        ),
        ("page", pa.int64()),
        ("position", pa.int64()),
        ("crawled_at", TIME),
        ("extra", pa.string()),
    ]
)

CHANGE_SCHEMA = pa.schema(
    [
        ("change", pa.string()),
        ("item_id", pa.int64()),
        ("language", pa.string()),
        ("cat_id", pa.int64()),
        ("title", pa.string()),
        ("old_price", PRICE),
        ("new_price", PRICE),
        ("first_seen", TIME),
        ("last_seen", TIME),
    ]
)
PRICES = frozenset({"price", "sale_price", "origin_price", "old_price", "new_price",
                    "price_start", "price_end"})  # fmt: skip
TIMES = frozenset({"crawled_at", "first_seen", "last_seen"})


def cell(name: str, value: Any) -> Any:
    """A value as its column holds it: prices to the fen, instants parsed."""
    if value is None:
        return None
    if name in PRICES:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)
    if name in TIMES and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, dict):
        return {key: cell(key, inner) for key, inner in value.items()}
    return value


def row(item: Any, schema: pa.Schema) -> dict[str, Any]:
    """One record of the file: the schema's columns; the rest in ``extra``."""
    if isinstance(item, ProductItem):
        data = item.model_dump(exclude=set(item.model_extra or ()))
        extra = item.model_extra or {}
    else:
        data = ItemAdapter(item).asdict()
        extra = {k: v for k, v in data.items() if k not in schema.names}
    record = {name: cell(name, data.get(name)) for name in schema.names}
    if "extra" in schema.names:
        record["extra"] = strict_json(extra) if extra else None
    return record


class _Sink:
    """The feed's file for pyarrow, which closes what it writes to: the feed
    storage closes it (or uploads it first, for S3)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.closed = False

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def tell(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.flush()
        self.closed = True


# What pyarrow raises for a value its column cannot hold (ArrowInvalid is a
# ValueError, ArrowTypeError a TypeError); ArrowIOError is an OSError: not these.
UNWRITABLE = (ValueError, TypeError, OverflowError, NotImplementedError)


class ParquetItemExporter(GuardedExport, BaseItemExporter):
    def __init__(self, file: BinaryIO, **kwargs: Any) -> None:
        self.row_group = int(kwargs.pop("parquet_row_group", PARQUET_ROW_GROUP))
        super().__init__(dont_fail=True, **kwargs)
        self.feed_file = self.file = file
        self.schema: pa.Schema | None = None
        self.rows: list[dict[str, Any]] = []
        self.writer: pq.ParquetWriter | None = None

    def write_item(self, item: Any) -> None:
        if self.schema is None:
            is_change = isinstance(item, dict) and "change" in item
            self.schema = CHANGE_SCHEMA if is_change else ITEM_SCHEMA
            if isinstance(item, DetailItem):  # the details feed
                self.schema = DETAIL_SCHEMA
        if self.schema is DETAIL_SCHEMA:
            self.rows.append(detail_record(item, cell))
        else:
            self.rows.append(row(item, self.schema))
        if len(self.rows) >= self.row_group:
            self._write()

    def _write(self) -> None:
        schema = self.schema or ITEM_SCHEMA
        try:
            table = pa.Table.from_pylist(self.rows, schema=schema)
        except UNWRITABLE:
            table = self._without_unwritable(schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(_Sink(self.file), schema)
        self.writer.write_table(table)
        self.rows = []

    def _without_unwritable(self, schema: pa.Schema) -> pa.Table:
        """The row group without the rows its schema cannot hold, each refused."""
        kept = []
        for record in self.rows:
            try:
                pa.Table.from_pylist([record], schema=schema)
            except UNWRITABLE as error:
                self.refuse(record, error, late=True)
            else:
                kept.append(record)
        return pa.Table.from_pylist(kept, schema=schema)

    def lost_on_stop(self) -> int:
        """A Parquet file holds nothing a reader can open without its footer,
        which a failed write leaves unwritten: every item of the file is lost,
        and the file cut to nothing (freeing the disk)."""
        self._cut(0)
        self.rows = []
        return self.written

    def finish_writing(self) -> None:
        if self.rows or self.writer is None:  # an empty file still has its schema
            self._write()
        assert self.writer is not None
        self.writer.close()
