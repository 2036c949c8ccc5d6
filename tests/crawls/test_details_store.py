"""The variants' history in the catalog store: two days of the simulator
crawled with their details, the exact variant changes, on SQLite and
PostgreSQL; ``tmapi-store history`` shows the variants."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import json_lines, run_crawl
from tests.crawls.test_store import tmapi_store
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.simulator.variants import variants
from tmapi_crawler.store.db import open_store

CAT, SIZE = 51, 40


def variant_states(day: int) -> dict[tuple[int, str], tuple[int, int]]:
    """(item, sku) -> (price in fen, stock) of every listed item's variants."""
    states = {}
    for product in Catalog(0, {CAT: SIZE}, day=day).products(CAT):
        for variant in variants(0, product.item_id, day):
            states[product.item_id, variant.sku_id] = (
                variant.price_fen(product),
                variant.stock(0, day),
            )
    return states


def expected_changes() -> dict[str, set[tuple[int, str]]]:
    day0, day1 = variant_states(0), variant_states(1)
    detailed0 = {item for item, _ in day0}
    both = set(day0) & set(day1)
    return {
        "variant_new": {key for key in set(day1) - set(day0) if key[0] in detailed0},
        "variant_price": {key for key in both if day0[key][0] != day1[key][0]},
        "out_of_stock": {key for key in both if day0[key][1] > 0 == day1[key][1]},
        "back_in_stock": {key for key in both if day0[key][1] == 0 < day1[key][1]},
    }


def crawl_day(simulator, tmp_path: Path, day: int, store: str):
    sim = simulator(size=f"{CAT}={SIZE}", day=day)
    settings = {
        "TMAPI_STORE": store,
        "TMAPI_CHANGES_FEED": str(tmp_path / f"day{day}.changes.jsonl"),
        "TMAPI_DETAILS_FEED": str(tmp_path / f"day{day}.details.jsonl"),
    }
    result = run_crawl(
        tmp_path,
        sim.url,
        {"cat_id": CAT, "details": "all"},
        settings,
        output_name=f"day{day}.jsonl",
    )
    assert result.returncode == 0, result.log[-3000:]
    return result


def variant_changes(feed: Path) -> dict[str, set[tuple[int, str]]]:
    found: dict[str, set[tuple[int, str]]] = {}
    for record in json_lines(feed):
        if "sku_id" in record:
            key = (record["item_id"], record["sku_id"])
            assert key not in found.setdefault(record["change"], set())  # once
            found[record["change"]].add(key)
    return found


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_days_give_the_exact_variant_changes(
    simulator, tmp_path, database, request
):
    if database == "sqlite":
        store = f"sqlite:///{tmp_path}/catalog.sqlite"
    else:
        store = request.getfixturevalue("postgres")
    crawl_day(simulator, tmp_path, 0, store)
    assert variant_changes(tmp_path / "day0.changes.jsonl") == {}  # first sight
    result = crawl_day(simulator, tmp_path, 1, store)
    expected = expected_changes()
    assert expected["variant_price"] and expected["out_of_stock"]
    assert expected["back_in_stock"] and expected["variant_new"]
    found = variant_changes(tmp_path / "day1.changes.jsonl")
    assert found == {kind: keys for kind, keys in expected.items() if keys}
    counts = {kind: len(keys) for kind, keys in expected.items()}
    line = (
        f"variants: {counts['variant_new']} new, {counts['variant_price']} price "
        f"changes, {counts['out_of_stock']} out of stock, "
        f"{counts['back_in_stock']} back in stock"
    )
    assert line in result.log
    print("variant changes day 0 -> 1:", counts)
    # the latest state of each variant, and its observations run by run
    day1 = variant_states(1)
    catalog = open_store(store)
    try:
        skus = catalog.query("SELECT item_id, sku_id, price, stock FROM skus")
        observed = catalog.query("SELECT COUNT(*) AS n FROM sku_observations")
    finally:
        catalog.close()
    latest = {(r["item_id"], r["sku_id"]): r for r in skus}
    for key, (fen, stock) in day1.items():
        assert latest[key]["stock"] == stock
        assert Decimal(str(latest[key]["price"])) * 100 == fen
    assert observed[0]["n"] == len(variant_states(0)) + len(day1)
    # tmapi-store history shows the item's variants, run by run
    item, sku = next(iter(expected["variant_price"]))
    rows = [
        json.loads(line)
        for line in tmapi_store(store, "--json", "history", str(item)).splitlines()
    ]
    prices = [r["price"] for r in rows if r.get("sku_id") == sku]
    assert len(prices) == 2 and prices[0] != prices[1]
    assert "variants:" in tmapi_store(store, "history", str(item))
    # tmapi-store changes: the listings' and the variants'
    shown = tmapi_store(store, "changes")
    assert line in shown.splitlines()[0] and "\nvariants:\n" in shown
    records = tmapi_store(store, "--json", "changes").splitlines()
    assert sum("sku_id" in json.loads(r) for r in records) == sum(counts.values())
