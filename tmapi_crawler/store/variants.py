"""The variants' history in the store: each detail item's SKUs observed once
a run, their latest state, and the changes they make. Free of Scrapy.

An item's details (:class:`~tmapi_crawler.contract.details.DetailItem`)
become one observation per variant (:func:`variant_rows`), tagged
:data:`SKU` so they travel with the listings' observations through the same
path: the catalog store's batches, the job's log (:mod:`.wal`), the rescue
file. :func:`write_variants` writes a batch's variant observations in the
listings' transaction, set-wise, each once a run, compared with the
variant's latest state (``skus``):

- ``variant_new``: a variant the store did not know, of an item whose
  variants it knew (an item detailed for the first time makes none);
- ``variant_price``: its price differs;
- ``out_of_stock``: its stock fell to 0;
- ``back_in_stock``: its stock rose from 0.

A variant can make a price and a stock change in the same run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tmapi_crawler.contract.details import DetailItem
    from tmapi_crawler.store.connection import StoreConnection
    from tmapi_crawler.store.reads import StoreReads

from tmapi_crawler.store.changes import OBSERVED

SKU = "sku"  # the first value of a variant's observation row
SKU_OBSERVED = (
    "item_id", "language", "sku_id", "properties", "price", "origin_price",
    "stock", "observed_at",
)  # fmt: skip

# a variant's state, as observed and as kept
STATE = """item_id BIGINT NOT NULL,
    language TEXT NOT NULL,
    sku_id TEXT NOT NULL,
    properties TEXT,
    price {price},
    origin_price {price},
    stock BIGINT,"""
SKU_BATCH_TABLE = f"""
CREATE TEMP TABLE IF NOT EXISTS sku_batch (
    {STATE}
    observed_at {{time}} NOT NULL,
    PRIMARY KEY (item_id, language, sku_id)
) {{on_commit}}"""

# Migration 3 (store/schema.py)
TABLES = (
    f"""CREATE TABLE skus (
        {STATE}
        first_seen {{time}} NOT NULL,
        last_seen {{time}} NOT NULL,
        last_run TEXT,
        PRIMARY KEY (item_id, language, sku_id)
    )""",
    """CREATE TABLE sku_observations (
        run_id TEXT NOT NULL,
        item_id BIGINT NOT NULL,
        language TEXT NOT NULL,
        sku_id TEXT NOT NULL,
        price {price},
        stock BIGINT,
        observed_at {time} NOT NULL,
        PRIMARY KEY (run_id, item_id, language, sku_id)
    )""",
    "CREATE INDEX sku_observations_item ON sku_observations (item_id, language)",
    """CREATE TABLE sku_changes (
        run_id TEXT NOT NULL,
        change TEXT NOT NULL,
        item_id BIGINT NOT NULL,
        language TEXT NOT NULL,
        sku_id TEXT NOT NULL,
        properties TEXT,
        old_price {price},
        new_price {price},
        old_stock BIGINT,
        new_stock BIGINT,
        first_seen {time} NOT NULL,
        last_seen {time} NOT NULL,
        PRIMARY KEY (run_id, item_id, language, sku_id, change)
    )""",
)

# each kind: when a variant of the batch (b) makes it, against its state (s)
CONDITIONS = {
    "variant_new": "s.sku_id IS NULL AND EXISTS (SELECT 1 FROM skus k "
    "WHERE k.item_id = b.item_id AND k.language = b.language)",
    "variant_price": "s.sku_id IS NOT NULL AND CAST(s.price AS {number}) "
    "IS DISTINCT FROM CAST(b.price AS {number})",
    "out_of_stock": "s.sku_id IS NOT NULL AND b.stock = 0 "
    "AND (s.stock IS NULL OR s.stock > 0)",
    "back_in_stock": "s.stock = 0 AND b.stock > 0",
}
CHANGE_COLUMNS = (
    "change, item_id, language, sku_id, properties, old_price, new_price, "
    "old_stock, new_stock, first_seen, last_seen"
)
CHANGE_INSERT = (
    f"INSERT INTO sku_changes (run_id, {CHANGE_COLUMNS}) SELECT ?, ?, b.item_id, "
    "b.language, b.sku_id, b.properties, s.price, b.price, s.stock, b.stock, "
    "COALESCE(s.first_seen, b.observed_at), b.observed_at FROM sku_batch b "
    "LEFT JOIN skus s ON s.item_id = b.item_id AND s.language = b.language "
    "AND s.sku_id = b.sku_id WHERE {condition} ON CONFLICT DO NOTHING"
)
UPDATED = ("properties", "price", "origin_price", "stock", "last_seen", "last_run")
UPSERT = (
    "INSERT INTO skus (item_id, language, sku_id, properties, price, "
    "origin_price, stock, first_seen, last_seen, last_run) SELECT item_id, "
    "language, sku_id, properties, price, origin_price, stock, observed_at, "
    "observed_at, ? FROM sku_batch WHERE true "
    "ON CONFLICT (item_id, language, sku_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in UPDATED)
)


def variant_rows(item: DetailItem) -> list[tuple[Any, ...]]:
    """An item's details as the store writes them: one row per variant
    (:data:`SKU`, then :data:`SKU_OBSERVED` order)."""
    return [
        (SKU, item.item_id, item.language, sku.id,
         json.dumps(sku.properties, ensure_ascii=False, sort_keys=True),
         sku.price, sku.origin_price, sku.stock, item.crawled_at)
        for sku in item.skus
    ]  # fmt: skip


def is_variant(row: Sequence[Any]) -> bool:
    return bool(row) and row[0] == SKU


def observed_record(row: Sequence[Any]) -> dict[str, Any]:
    """An observation row as a record of the rescue file (``tmapi-store
    load`` reads it back: :func:`observed_row`); a variant's under ``sku``."""
    if is_variant(row):
        return {SKU: dict(zip(SKU_OBSERVED, row[1:], strict=True))}
    return dict(zip(OBSERVED, row, strict=True))


def observed_row(record: dict[str, Any]) -> list[Any]:
    """The row :func:`observed_record` wrote."""
    if SKU in record:
        return [SKU, *(record[SKU][name] for name in SKU_OBSERVED)]
    return [record[name] for name in OBSERVED]


def write_variants(
    store: StoreConnection, cursor: Any, run_id: str, rows: Sequence[Sequence[Any]]
) -> dict[str, int]:
    """A batch's variant observations, in the caller's transaction: those
    not yet observed in the run recorded, their changes made, their state
    updated; how many changes of each kind."""
    sql = store.sql
    cursor.execute("DELETE FROM sku_batch")
    marks = ", ".join("?" for _ in SKU_OBSERVED)
    cursor.executemany(
        sql(f"INSERT INTO sku_batch VALUES ({marks}) ON CONFLICT DO NOTHING"),
        [tuple(row[1:]) for row in rows],
    )
    cursor.execute(
        sql(
            "DELETE FROM sku_batch WHERE EXISTS (SELECT 1 FROM sku_observations o "
            "WHERE o.run_id = ? AND o.item_id = sku_batch.item_id AND "
            "o.language = sku_batch.language AND o.sku_id = sku_batch.sku_id)"
        ),
        (run_id,),
    )
    cursor.execute(
        sql(
            "INSERT INTO sku_observations SELECT ?, item_id, language, sku_id, "
            "price, stock, observed_at FROM sku_batch WHERE true "
            "ON CONFLICT DO NOTHING"
        ),
        (run_id,),
    )
    counts = {}
    for kind, condition in CONDITIONS.items():
        statement = CHANGE_INSERT.replace("{condition}", condition)
        cursor.execute(sql(statement), (run_id, kind))
        counts[kind] = max(int(cursor.rowcount), 0)
    cursor.execute(sql(UPSERT), (run_id,))
    return counts


def iter_variant_changes(store: StoreReads, run_id: str) -> Iterator[dict[str, Any]]:
    """The run's variant changes, as records of the changes feed (the
    listing changes' fields, and the variant's)."""
    for row in store.query(
        f"SELECT {CHANGE_COLUMNS} FROM sku_changes WHERE run_id = ? "
        "ORDER BY change, item_id, language, sku_id",
        (run_id,),
    ):
        yield {"cat_id": None, "title": None, **row}


def variant_history(
    store: StoreReads, item_id: int, language: str | None
) -> list[dict]:
    """An item's variants, run by run: price and stock."""
    return store.of_item(
        "SELECT o.run_id, o.item_id, o.language, o.sku_id, s.properties, "
        "o.price, o.stock, o.observed_at FROM sku_observations o "
        "LEFT JOIN skus s ON s.item_id = o.item_id AND s.language = o.language "
        "AND s.sku_id = o.sku_id",
        item_id,
        language,
        "o.observed_at, o.sku_id",
    )
