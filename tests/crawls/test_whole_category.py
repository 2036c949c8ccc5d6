"""Real crawls past the result cap (split=price) against the simulator."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tests.conftest import stat
from tmapi_crawler.simulator.catalog import Catalog

PAGE_SIZE = 20


@pytest.mark.parametrize("price_end", ["inclusive", "exclusive"])
def test_a_12000_item_category_is_delivered_complete_near_the_minimum_calls(
    simulator, crawl, price_end
):
    sim = simulator(size="77=12000", price_end=price_end)
    catalog = Catalog(seed=0, sizes={77: 12_000})
    products = catalog.products(77)
    popular = Counter(p.price_fen for p in products).most_common(5)
    assert all(count >= 200 for _, count in popular)  # several dense price points

    result = crawl(sim.url, {"cat_id": "77", "split": "price"})
    assert result.returncode == 0, result.log[-3000:]

    delivered = [item["item_id"] for item in result.items]
    assert set(delivered) == {p.item_id for p in products}  # every item
    assert len(delivered) == 12_000  # each once: the bands' overlaps were dropped
    overlaps = stat(result.log, "tmapi/coverage/duplicates", required=True)
    assert stat(result.log, "tmapi/items/duplicate", required=True) == overlaps
    assert stat(result.log, "tmapi/coverage/gaps", required=True) == 0
    assert "category 77 (en): complete" in result.log

    # The minimum: one page per PAGE_SIZE items, plus the one call that
    # finds the category at the cap (its page 1 cannot be reused by a band).
    minimum = math.ceil(12_000 / PAGE_SIZE) + 1
    calls = sim.calls()
    assert len(calls) == stat(result.log, "tmapi/calls", required=True)
    assert len(calls) <= 1.10 * minimum, (len(calls), minimum)
    probes = stat(result.log, "tmapi/split/bands", required=True)
    print(
        f"price_end {price_end}: {len(calls)} calls, minimum {minimum}, "
        f"{probes} bands split, {overlaps} overlapping deliveries dropped"
    )
    pages = Counter((tuple(sorted(c["params"].items())), c["page"]) for c in calls)
    assert max(pages.values()) == 1  # no page of any band fetched twice


def test_a_price_point_over_the_cap_is_reported_as_a_gap_without_endless_splitting(
    simulator, crawl
):
    sim = simulator(size="78=4000", dense_price="78=9.9:2500")
    catalog = Catalog(seed=0, sizes={78: 4000}, dense={78: (990, 2500)})
    products = catalog.products(78)
    on_point = [p.item_id for p in products if p.price_fen == 990]
    elsewhere = {p.item_id for p in products if p.price_fen != 990}
    assert len(on_point) > 2000

    result = crawl(sim.url, {"cat_id": "78"}, {"TMAPI_SPLIT": "price"})
    assert result.returncode == 0, result.log[-3000:]
    delivered = {item["item_id"] for item in result.items}
    assert elsewhere <= delivered  # everything else is complete
    assert len(delivered & set(on_point)) == 2000  # what the API shows of it
    assert "gap: price 9.9..9.91 holds 2000+ items" in result.log
    assert "category 78 (en): INCOMPLETE" in result.log
    assert stat(result.log, "tmapi/coverage/gaps", required=True) == 1
    assert stat(result.log, "tmapi/coverage/gap_count", required=True) == 2000
    pages = math.ceil(len(elsewhere) / PAGE_SIZE) + 2000 // PAGE_SIZE
    assert len(sim.calls()) <= 1.10 * pages + 5  # a few probes, no spiralling


def test_without_split_a_capped_category_is_reported_as_a_gap(simulator, crawl):
    sim = simulator(size="79=2100")
    result = crawl(sim.url, {"cat_id": "79", "page_size": "50"})
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 2000
    assert "only those are reachable without -a split=price" in result.log
    assert stat(result.log, "tmapi/coverage/gaps", required=True) == 1


def test_split_on_a_small_category_costs_nothing_extra(simulator, crawl):
    sim = simulator(size="80=45")
    result = crawl(sim.url, {"cat_id": "80", "split": "price"})
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 45
    assert len(sim.calls()) == 3


@pytest.mark.parametrize(
    ("arguments", "settings", "named"),
    [
        ({"cat_id": "5", "split": "weight"}, {}, "split='weight'"),
        ({"cat_id": "5", "subtree": "maybe"}, {}, "subtree='maybe'"),
        ({"cat_id": "5"}, {"TMAPI_SPLIT": "weight"}, "TMAPI_SPLIT='weight'"),
    ],
)
def test_bad_split_or_subtree_stops_the_run_before_any_call(
    simulator, crawl, arguments, settings, named
):
    sim = simulator()
    result = crawl(sim.url, arguments, settings)
    assert result.returncode == 2
    assert named in result.log
    assert sim.calls() == []


def test_a_failed_band_page_makes_the_coverage_incomplete(simulator, crawl):
    sim = simulator(size="82=2500", fault="82:2=422")
    result = crawl(sim.url, {"cat_id": "82", "split": "price"})
    assert result.returncode == 3, result.log[-3000:]
    assert "category 82 (en): INCOMPLETE" in result.log
    assert "1 failed page(s)" in result.log
    assert stat(result.log, "tmapi/coverage/incomplete", required=True) == 1
