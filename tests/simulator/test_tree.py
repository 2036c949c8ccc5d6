"""The simulator's category tree: seeded, pinned, served with auth and faults."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.answers import parse_category_info
from tmapi_crawler.contract import api
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


def test_the_simulator_serves_the_tree_with_auth_and_faults(simulator):
    sim = simulator(tree=TREE, fault="910:*=503@body")
    status, body = info(sim.url, token=None, cat_id=900)
    assert status == 401
    top = parse_category_info(info(sim.url)[1])
    assert {900, 930} <= {c.id for c in top.children}
    with pytest.raises(api.ApiError) as raised:
        status, body = info(sim.url, cat_id=910)
        parse_category_info(body, status)
    assert raised.value.code == 503
    node = parse_category_info(info(sim.url, cat_id=910)[1])
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


def test_a_pinned_tree_may_reuse_seeded_ids():
    tree = CategoryTree(seed=0, pinned={15: (1501,), 1501: (150101, 150102)})
    assert 15 in tree.top_level()
    assert tree.path(150102) == [15, 1501, 150102]
    assert tree.info(1501)["children"][0]["has_children"] is False
