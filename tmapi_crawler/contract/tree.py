"""Walking the category tree to its leaves with as few calls as possible.

One ``/1688/category/info`` call per category that has children: a parent's
answer lists each child with ``has_children``, so a leaf needs no call of its
own (only a category given by the user is asked, to learn whether it is one).
Each category is asked and each leaf crawled at most once per run. Free of
Scrapy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tmapi_crawler.contract.api import CategoryInfo


@dataclass
class TreeWalk:
    asked: set[int] = field(default_factory=set)
    crawled: set[int] = field(default_factory=set)

    def ask(self, cat_id: int) -> bool:
        """Whether *cat_id* still needs an info call (it is then counted as asked)."""
        if cat_id in self.asked:
            return False
        self.asked.add(cat_id)
        return True

    def visit(self, asked_id: int, info: CategoryInfo) -> tuple[list[int], list[int]]:
        """(new leaves to crawl, categories to ask next) from one answer."""
        if not info.children:
            return self._new_leaves([asked_id]), []
        to_ask = [c.id for c in info.children if c.has_children and self.ask(c.id)]
        return self._new_leaves(
            [c.id for c in info.children if not c.has_children]
        ), to_ask

    def _new_leaves(self, ids: list[int]) -> list[int]:
        fresh = [cat_id for cat_id in dict.fromkeys(ids) if cat_id not in self.crawled]
        self.crawled.update(fresh)
        return fresh
