"""The walk of the category tree: each category with children asked once."""

from __future__ import annotations

from tmapi_crawler.contract import api
from tmapi_crawler.contract.tree import TreeWalk


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
