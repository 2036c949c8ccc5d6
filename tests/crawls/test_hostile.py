"""Hostile answers in real crawls against the simulator: the shapes seen in the
wild (string ids, nulls, missing fields, bad bytes, a wrong count, a walk that
never ends) are logged once, counted, and their valid items kept. The same
input, property-based and in-process: tests/contract/test_api.py and
tests/pipelines/test_validation.py."""

from __future__ import annotations

import re

import pytest

from tmapi_crawler.simulator.catalog import Catalog


def test_quirky_pages_are_logged_once_counted_and_their_valid_items_kept(
    simulator, crawl
):
    sim = simulator(
        size=["44=70", "45=30"],
        miscount="44=-15",  # total_count says 55: three pages, there are four
        quirk=[
            "44:2=item_id_string,null_strings,missing_nested,extra_fields",
            "44:3=not_object,non_utf8",
            "44:4=huge",
            "45:*=endless",  # has_next_page true for ever, empty pages past the end
        ],
    )
    result = crawl(sim.url, {"cat_id": "44,45"})
    assert result.returncode == 0, result.log[-3000:]
    catalog = Catalog(seed=0, sizes={44: 70, 45: 30})
    delivered = {(i["cat_id"], str(i["item_id"])) for i in result.items}
    expected = {(c, str(p.item_id)) for c in (44, 45) for p in catalog.expected(c)}
    replaced = {(44, str(catalog.expected(44)[40].item_id))}  # page 3's first item
    untitled = {(44, str(catalog.expected(44)[20].item_id))}  # null title: invalid
    assert delivered == expected - replaced - untitled
    assert len(result.items) == len(delivered)
    assert "'tmapi/items/invalid': 1," in result.log  # logged and counted
    invalid = [line for line in result.log.splitlines() if "Invalid item" in line]
    assert len(invalid) == 1 and "category 44" in invalid[0] and "page 2" in invalid[0]
    warnings = [line for line in result.log.splitlines() if "WARNING" in line]
    page_3 = [line for line in warnings if "page 3 of category 44" in line]
    assert len(page_3) == 1  # once, however many problems
    assert "not objects" in page_3[0] and "UTF-8" in page_3[0]
    assert any("page 3 of category 45" in line for line in warnings)
    calls = [(c["cat_id"], c["page"]) for c in sim.calls()]
    assert sorted(p for c, p in calls if c == 45) == [1, 2, 3]  # the walk ended
    stat = re.search(r"'tmapi/pages/with_problems': (\d+)", result.log)
    assert stat and int(stat.group(1)) >= 3


@pytest.mark.parametrize("quirk", ["item_id_string", "null_strings", "extra_fields"])
def test_item_shapes_never_crash_the_crawl(simulator, crawl, quirk):
    sim = simulator(size="46=5", quirk=f"46:1={quirk}")
    result = crawl(sim.url, {"cat_id": "46"})
    assert result.returncode == 0, result.log[-3000:]
    assert "Traceback" not in result.log
