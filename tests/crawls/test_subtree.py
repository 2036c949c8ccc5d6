"""The category tree: its contract, the simulator's endpoint, subtree crawls."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter

import pytest

from tmapi_crawler.contract import api
from tmapi_crawler.contract.tree import TreeWalk
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.simulator.tree import CategoryTree

TREE = ["900=910,920", "910=911,912", "930=931"]  # 920, 911, 912: leaves


def info(base_url: str, token: str | None = "t", **params) -> tuple[int, bytes]:
    query = "&".join(f"{k}={v}" for k, v in {**params, "apiToken": token}.items() if v)
    request = urllib.request.Request(f"{base_url}{api.CATEGORY_INFO_PATH}?{query}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def envelope(data) -> bytes:
    return json.dumps({"code": 200, "msg": "success", "data": data}).encode()


def test_info_urls_and_answers_are_read_as_documented():
    assert (
        api.category_info_url("http://h/", 7) == "http://h/1688/category/info?cat_id=7"
    )
    assert api.category_info_url("http://h") == "http://h/1688/category/info"
    parsed = api.parse_category_info(
        envelope(
            {
                "id": 7,
                "name": "服装",
                "level": 1,
                "parent_id": 0,
                "path": [{"id": 7}],
                "children": [
                    {"id": 71, "has_children": True},
                    {"id": "72", "has_children": False},
                    {"id": 73},
                    "junk",
                ],
            }
        )
    )
    assert parsed.id == 7 and parsed.path == (7,)
    assert [(c.id, c.has_children) for c in parsed.children] == [
        (71, True),
        (72, False),
        (73, True),  # unknown: asked rather than lost
    ]
    assert len(parsed.problems) == 2
    top = api.category_info_from_data([{"id": 1, "has_children": True}])
    assert top.id is None and [c.id for c in top.children] == [1]


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, b'{"code": 439, "msg": "no balance", "data": null}', 439),
        (503, b"busy", 503),
        (200, b"<html>", None),
    ],
)
def test_info_errors_are_api_errors(status, body, code):
    with pytest.raises(api.ApiError) as raised:
        api.parse_category_info(body, status)
    assert raised.value.code == code


def test_the_walk_asks_only_categories_with_children_once():
    walk = TreeWalk()
    assert walk.ask(900) and not walk.ask(900)
    node = api.CategoryNode
    answer = api.CategoryInfo(
        900,
        "",
        "",
        1,
        0,
        (900,),
        (node(910, "", "", 2, True), node(920, "", "", 2, False)),
    )
    assert walk.visit(900, answer) == ([920], [910])
    assert walk.visit(900, answer) == ([], [])  # cached: nothing twice
    leaf = api.CategoryInfo(5, "", "", 1, 0, (5,), ())
    assert walk.visit(5, leaf) == ([5], [])


def test_the_simulator_serves_the_tree_with_auth_and_faults(simulator):
    sim = simulator(tree=TREE, fault="910:*=503@body")
    status, body = info(sim.url, token=None, cat_id=900)
    assert status == 401
    top = api.parse_category_info(info(sim.url)[1])
    assert {900, 930} <= {c.id for c in top.children}
    with pytest.raises(api.ApiError) as raised:
        status, body = info(sim.url, cat_id=910)
        api.parse_category_info(body, status)
    assert raised.value.code == 503
    node = api.parse_category_info(info(sim.url, cat_id=910)[1])
    assert node.path == (900, 910) and node.level == 2 and node.parent_id == 900
    assert [(c.id, c.has_children) for c in node.children] == [
        (911, False),
        (912, False),
    ]
    assert [c["path"] for c in sim.calls()] == [api.CATEGORY_INFO_PATH] * 4


def test_the_seeded_tree_is_deterministic_and_three_levels_deep():
    tree = CategoryTree(seed=0)
    top = tree.top_level()
    assert top == CategoryTree(seed=0).top_level() and len(top) == 8
    middle = tree.children(top[0])
    leaves = tree.children(middle[0])
    assert middle and leaves and tree.children(leaves[0]) == ()
    assert tree.path(leaves[0]) == [top[0], middle[0], leaves[0]]
    assert tree.info(leaves[0])["level"] == 3


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


def test_a_pinned_tree_may_reuse_seeded_ids():
    tree = CategoryTree(seed=0, pinned={15: (1501,), 1501: (150101, 150102)})
    assert 15 in tree.top_level()
    assert tree.path(150102) == [15, 1501, 150102]
    assert tree.info(1501)["children"][0]["has_children"] is False
