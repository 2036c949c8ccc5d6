"""The variants' history on a real SQLite file and a real PostgreSQL server:
each variant once a run, its changes, the rescue file's records."""

from __future__ import annotations

from tests.store.test_db import DAY0, DAY1, row
from tmapi_crawler.contract.details import DetailItem, Sku
from tmapi_crawler.store.db import open_store
from tmapi_crawler.store.variants import (
    observed_record,
    observed_row,
    variant_history,
    variant_rows,
)


def detail(at: str, *skus: tuple[str, str, int]) -> DetailItem:
    return DetailItem(
        item_id=1,
        language="en",
        crawled_at=at,
        skus=[
            Sku(id=sku, price=price, stock=stock, properties={"颜色": sku})
            for sku, price, stock in skus
        ],
    )


def test_variant_changes_across_two_runs(store_uri):
    store = open_store(store_uri)
    first = store.open_run(None)
    day0 = variant_rows(detail(DAY0, ("a", "1.00", 5), ("b", "2.00", 0)))
    made = store.write_counted(first, [row(1, "1.00", DAY0), *day0])
    assert made["new"] == 1 and not any(
        made[kind]
        for kind in ("variant_new", "variant_price", "out_of_stock", "back_in_stock")
    )  # an item's first details: no variant changes
    again = variant_rows(detail(DAY0, ("a", "9.00", 0)))
    assert not any(store.write_counted(first, again).values())  # once a run
    second = store.open_run(None)
    day1 = variant_rows(
        detail(DAY1, ("a", "1.10", 0), ("b", "2.00", 3), ("c", "3.00", 1))
    )
    made = store.write_counted(second, day1)
    assert (made["variant_price"], made["out_of_stock"]) == (1, 1)
    assert (made["back_in_stock"], made["variant_new"]) == (1, 1)
    records = [r for r in store.iter_changes(second) if "sku_id" in r]
    assert {(r["change"], r["sku_id"]) for r in records} == {
        ("variant_price", "a"), ("out_of_stock", "a"),
        ("back_in_stock", "b"), ("variant_new", "c"),
    }  # fmt: skip
    price = next(r for r in records if r["change"] == "variant_price")
    assert (price["old_price"], price["new_price"]) == ("1.00", "1.10")
    assert store.change_counts(second)["variant_price"] == 1
    history = variant_history(store, 1, None)
    assert [(h["sku_id"], h["stock"]) for h in history] == [
        ("a", 5), ("b", 0), ("a", 0), ("b", 3), ("c", 1),
    ]  # fmt: skip
    store.close()


def test_the_rescue_files_records_give_the_rows_back():
    listing = row(7, "1.00", DAY0)
    (variant,) = variant_rows(detail(DAY0, ("a", "1.00", 5)))
    for observed in (listing, variant):
        record = observed_record(observed)
        assert observed_row(record) == list(observed)
