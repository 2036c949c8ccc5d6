"""Subtree crawls (``-a subtree=true``) against the simulator's category tree."""

from __future__ import annotations

from collections import Counter

from tmapi_crawler.contract import api
from tmapi_crawler.simulator.catalog import Catalog

TREE = ["900=910,920", "910=911,912", "930=931"]  # 920, 911, 912: leaves


def test_a_subtree_of_three_levels_crawls_exactly_its_leaves_with_the_options(
    simulator, crawl
):
    sizes = {911: 30, 912: 45, 920: 2100, 931: 10, 900: 50, 910: 50}
    sim = simulator(tree=TREE, size=[f"{k}={v}" for k, v in sizes.items()])
    arguments = {"cat_id": "900", "subtree": "true", "split": "price"}
    result = crawl(sim.url, arguments)
    assert result.returncode == 0, result.log[-3000:]
    calls = sim.calls()
    items_calls = Counter(c["cat_id"] for c in calls if c["path"] == api.ITEMS_PATH)
    info_calls = [c["cat_id"] for c in calls if c["path"] == api.CATEGORY_INFO_PATH]
    assert set(items_calls) == {911, 912, 920}  # the leaves, nothing else
    assert sorted(info_calls) == [900, 910]  # one call per category with children
    catalog = Catalog(seed=0, sizes=sizes)
    for leaf in (911, 912, 920):
        got = [i["item_id"] for i in result.items if i["cat_id"] == leaf]
        every = {p.item_id for p in catalog.expected(leaf, cap=None)}
        assert set(got) == every  # 920, past the cap, sliced like any category


def test_a_failed_tree_call_is_logged_and_marks_the_crawl_incomplete(simulator, crawl):
    sim = simulator(tree=TREE, size=["920=25"], fault="910:*=422*")
    result = crawl(sim.url, {"cat_id": "900", "subtree": "true"})
    assert result.returncode == 3, result.log[-3000:]
    assert "Category info of 910 failed" in result.log
    items_calls = {c["cat_id"] for c in sim.calls() if c["path"] == api.ITEMS_PATH}
    assert items_calls == {920}
