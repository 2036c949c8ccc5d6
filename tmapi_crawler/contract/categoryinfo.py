"""The category tree's endpoint, ``/1688/category/info``: its URL and its
answer. Free of Scrapy.

:func:`category_info_url` is the URL of one category's info (the top level
without an id); :func:`category_info_from_data` reads an answer's ``data``
(after :func:`~tmapi_crawler.contract.answer.parse_data`) into a
:class:`CategoryInfo`: the category and its children, each a
:class:`CategoryNode`. Walking the tree is :mod:`tmapi_crawler.contract.tree`'s.
Part of the contract :mod:`tmapi_crawler.contract.api` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tmapi_crawler.contract.answer import as_int, malformed

CATEGORY_INFO_PATH = "/1688/category/info"


def category_info_url(base_url: str, cat_id: int | None = None) -> str:
    """The URL of one category's info (the top level without an id), no token."""
    query = f"?{urlencode({'cat_id': cat_id})}" if cat_id is not None else ""
    return f"{base_url.rstrip('/')}{CATEGORY_INFO_PATH}{query}"


@dataclass(frozen=True, slots=True)
class CategoryNode:
    """A child category as its parent lists it."""

    id: int
    name: str
    name_en: str
    level: int | None
    has_children: bool


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """One category and its children (``id`` None for the top-level listing)."""

    id: int | None
    name: str
    name_en: str
    level: int | None
    parent_id: int | None
    path: tuple[int, ...]
    children: tuple[CategoryNode, ...]
    problems: tuple[str, ...] = ()


def _category_id(entry: dict[str, Any]) -> int | None:
    for name in ("id", "cat_id", "category_id"):
        if (value := as_int(entry.get(name))) is not None:
            return value
    return None


def category_info_from_data(data: dict[str, Any] | list[Any]) -> CategoryInfo:
    """A :class:`CategoryInfo` from an answer's ``data``.

    A child whose ``has_children`` is missing is taken to have children
    (asking costs one call, skipping loses a branch); a bare list is the top
    level's children.
    """
    if isinstance(data, list):
        data = {"id": None, "children": data}
    problems: list[str] = []
    raw_children = data.get("children") or []
    if not isinstance(raw_children, list):
        raise malformed(f"children is a {type(raw_children).__name__}, not a list")
    children = []
    for entry in raw_children:
        child_id = _category_id(entry) if isinstance(entry, dict) else None
        if child_id is None or child_id <= 0:
            problems.append(f"a child is not a category: {entry!r:.60}")
            continue
        has_children = entry.get("has_children")
        if not isinstance(has_children, bool):
            problems.append(f"child {child_id}: has_children is {has_children!r:.20}")
            has_children = True
        children.append(
            CategoryNode(
                child_id,
                str(entry.get("name") or ""),
                str(entry.get("name_en") or ""),
                as_int(entry.get("level")),
                has_children,
            )
        )
    path = []
    for step in data.get("path") or []:
        step_id = _category_id(step) if isinstance(step, dict) else as_int(step)
        if step_id is not None:
            path.append(step_id)
    category_id = _category_id(data)
    return CategoryInfo(
        category_id or None,
        str(data.get("name") or ""),
        str(data.get("name_en") or ""),
        as_int(data.get("level")),
        as_int(data.get("parent_id")),
        tuple(path),
        tuple(children),
        tuple(problems),
    )
