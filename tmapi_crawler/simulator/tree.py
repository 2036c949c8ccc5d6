"""The simulator's category tree, served at ``/1688/category/info``.

Seed-derived: a few top-level categories (two-digit ids), each with a few
children (``parent * 100 + n``), each of those with a few leaves, three
levels in all. Tests pin a tree of their own with ``pinned`` (``--tree
900=910,920 --tree 910=911,912``): a pinned parent's children replace any
seeded ones, and pinned roots are listed with the top level. Any other id is
a leaf standing alone, so any category can still be crawled.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from tmapi_crawler.simulator.catalog import ADJECTIVES, NOUNS

TOP_LEVEL = 8
LEVELS = 3


class CategoryTree:
    def __init__(
        self, seed: int = 0, pinned: dict[int, tuple[int, ...]] | None = None
    ) -> None:
        self.seed = seed
        self.pinned = dict(pinned or {})
        self.pinned_parent = {
            child: parent for parent, kids in self.pinned.items() for child in kids
        }
        self._seeded_children = lru_cache(maxsize=4096)(self._seeded)

    def _seeded_top(self) -> list[int]:
        rng = random.Random(f"{self.seed}:tree:top")
        return sorted(rng.sample(range(10, 100), TOP_LEVEL))

    def top_level(self) -> tuple[int, ...]:
        seeded = self._seeded_top()
        roots = [p for p in self.pinned if self.parent(p) is None and p not in seeded]
        return (*seeded, *sorted(roots))

    def _seeded(self, cat_id: int) -> tuple[int, ...]:
        rng = random.Random(f"{self.seed}:tree:{cat_id}")
        count = rng.randint(2, 5)
        return tuple(sorted(cat_id * 100 + n for n in rng.sample(range(1, 100), count)))

    def _seeded_level(self, cat_id: int) -> int | None:
        """The level of a seeded category, None if the seeded tree lacks it."""
        if 10 <= cat_id < 100:
            return 1 if cat_id in self._seeded_top() else None
        parent = cat_id // 100
        level = self._seeded_level(parent) if cat_id >= 1000 else None
        if level is None or level >= LEVELS:
            return None
        return level + 1 if cat_id in self._seeded_children(parent) else None

    def parent(self, cat_id: int) -> int | None:
        if cat_id in self.pinned_parent:
            return self.pinned_parent[cat_id]
        level = self._seeded_level(cat_id)
        return cat_id // 100 if level and level > 1 else None

    def children(self, cat_id: int) -> tuple[int, ...]:
        if cat_id in self.pinned:
            return self.pinned[cat_id]
        level = self._seeded_level(cat_id)
        if level is None or level >= LEVELS:
            return ()
        return self._seeded_children(cat_id)

    def path(self, cat_id: int) -> list[int]:
        """The ids from the top level down to *cat_id*."""
        chain = [cat_id]
        while (parent := self.parent(chain[-1])) is not None and parent not in chain:
            chain.append(parent)
        return chain[::-1]

    def names(self, cat_id: int) -> dict[str, str]:
        rng = random.Random(f"{self.seed}:tree:name:{cat_id}")
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        return {
            "name": adjective[0] + noun[0],
            "name_en": f"{adjective[1]} {noun[1]}".capitalize(),
        }

    def summary(self, cat_id: int) -> dict[str, Any]:
        """A category as listed among its parent's children."""
        return {
            "id": cat_id,
            **self.names(cat_id),
            "level": len(self.path(cat_id)),
            "has_children": bool(self.children(cat_id)),
        }

    def info(self, cat_id: int | None) -> dict[str, Any]:
        """The ``data`` of ``/1688/category/info``; without an id, the top level."""
        if cat_id is None:
            return {
                "id": 0,
                "name": "",
                "name_en": "",
                "level": 0,
                "parent_id": None,
                "path": [],
                "children": [self.summary(top) for top in self.top_level()],
            }
        path = self.path(cat_id)
        return {
            "id": cat_id,
            **self.names(cat_id),
            "level": len(path),
            "parent_id": self.parent(cat_id) or 0,
            "path": [{"id": step, **self.names(step)} for step in path],
            "children": [self.summary(child) for child in self.children(cat_id)],
        }
