"""The crawler's extensions; :func:`enabled` finds the one a component reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

T = TypeVar("T")


def enabled(crawler: Crawler, cls: type[T]) -> T:
    """The crawler's instance of the extension *cls*, which the add-on always
    enables (missing: a wiring bug, raised as one)."""
    extension = crawler.get_extension(cls)
    if extension is None:
        raise RuntimeError(f"{cls.__name__} is not enabled (EXTENSIONS)")
    return extension
