"""Which pages of a category to fetch, and where each category stands.

Page 1 is fetched first; its ``total_count`` and ``page_size`` predict the
last page, and every other page is scheduled at once so they download
concurrently. ``has_next_page`` stays the authority: a page that says false
ends the category early, and the last predicted page that still says true is
followed one page at a time. Every request carries the last page planned when
it was made, so whichever process handles the frontier page follows it, and
no process needs the state of another.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tmapi_crawler.contract.api import CategoryQuery, Page


def pages_to_follow(
    page_no: int, planned_last: int, page: Page, max_pages: int | None = None
) -> range:
    """The pages this answer adds to the plan (empty when it adds none)."""
    if not page.has_next_page:
        return range(0)
    if not page.items and page_no >= planned_last and page_no > 1:
        return range(0)  # an empty page that says more follow: never an endless walk
    if page_no == 1:
        last = max(page.last_page or 2, 2)
    elif page_no >= planned_last:
        last = page_no + 1
    else:
        return range(0)
    if max_pages is not None:
        last = min(last, max_pages)
    return range(max(page_no, planned_last) + 1, last + 1)


class PageSet:
    """A set of page numbers as a bitmap: a category's 100 pages in ~100 bytes
    (a ``set`` of them takes 8 KB; two per category were the crawl's largest
    growth after the seen ids, BENCHMARKS.md, benchmark 4)."""

    __slots__ = ("_bits", "_count")

    def __init__(self, pages: Iterable[int] = ()) -> None:
        self._bits = bytearray()
        self._count = 0
        for page in pages:
            self.add(page)

    def add(self, page: int) -> None:
        if page < 0:
            raise ValueError(f"not a page number: {page}")
        byte, bit = divmod(page, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte + 1 - len(self._bits)))
        if not self._bits[byte] >> bit & 1:
            self._bits[byte] |= 1 << bit
            self._count += 1

    def __contains__(self, page: object) -> bool:
        if not isinstance(page, int) or page < 0:
            return False
        byte, bit = divmod(page, 8)
        return byte < len(self._bits) and bool(self._bits[byte] >> bit & 1)

    def __iter__(self) -> Iterator[int]:
        for byte, bits in enumerate(self._bits):
            if bits:
                yield from (byte * 8 + bit for bit in range(8) if bits >> bit & 1)

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"PageSet({list(self)})"


@dataclass
class CategoryProgress:
    """One category query in this process: what was planned, done and failed."""

    query: CategoryQuery
    total_count: int | None = None
    planned: int = 1  # the last page scheduled so far
    end: int | None = None  # the first page that said has_next_page false
    done: PageSet = field(default_factory=PageSet)
    failed: dict[int, str] = field(default_factory=dict)
    items: int = 0  # items on the pages answered, before the item pipelines
    # Counted by tmapi_crawler.extensions.tally: calls sent, calls that repeated a page
    # already sent, items exported, items dropped as duplicates or invalid.
    calls: int = 0
    retries: int = 0
    sent: PageSet = field(default_factory=PageSet)
    delivered: int = 0
    duplicates: int = 0
    invalid: int = 0

    @property
    def pages(self) -> int:
        """The pages this category has: those planned, cut at a last page."""
        return self.planned if self.end is None else min(self.planned, self.end)

    @property
    def left(self) -> int:
        """Pages planned that are neither done nor failed (yet)."""
        finished = {p for p in (*self.done, *self.failed) if p <= self.pages}
        return max(self.pages - len(finished), 0)

    @property
    def label(self) -> str:
        return self.query.label

    def past_end(self, page_no: int) -> bool:
        """Whether a page lies beyond a page that said it was the last."""
        return self.end is not None and page_no > self.end

    def record(self, page_no: int, page: Page) -> None:
        """What an answer said: done, its items, and whether it was the last page."""
        self.done.add(page_no)
        self.failed.pop(page_no, None)
        self.items += len(page.items)
        if page.total_count is not None:
            self.total_count = page.total_count
        if not page.has_next_page:
            self.end = page_no if self.end is None else min(self.end, page_no)

    def to_data(self) -> dict[str, Any]:
        """As JSON-able data (the job journal keeps it between runs)."""
        data = {name: getattr(self, name) for name in _PLAIN_FIELDS}
        data["query"] = self.query.model_dump(mode="json", exclude_defaults=True)
        data["done"], data["sent"] = list(self.done), list(self.sent)
        data["failed"] = {str(page): why for page, why in self.failed.items()}
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CategoryProgress:
        return cls(
            query=CategoryQuery.model_validate(data["query"]),
            done=PageSet(data.get("done", ())),
            sent=PageSet(data.get("sent", ())),
            failed={
                int(page): str(why) for page, why in data.get("failed", {}).items()
            },
            **{name: data[name] for name in _PLAIN_FIELDS if name in data},
        )


_PLAIN_FIELDS: tuple[str, ...] = ("total_count", "planned", "end", "items", "calls")
_PLAIN_FIELDS += ("retries", "delivered", "duplicates", "invalid")


@dataclass
class CrawlProgress:
    """Every category query of this process, by query key."""

    categories: dict[str, CategoryProgress] = field(default_factory=dict)
    _keys: dict[tuple[tuple[str, Any], ...], str] = field(
        default_factory=dict, repr=False
    )

    def category(self, query: CategoryQuery) -> CategoryProgress:
        if query.key not in self.categories:
            self.categories[query.key] = CategoryProgress(query)
        return self.categories[query.key]

    def for_query(self, query: Mapping[str, Any]) -> CategoryProgress:
        """The category of a request's ``meta["tmapi"]["query"]``."""
        cache_key = tuple(sorted(query.items()))
        key = self._keys.get(cache_key)
        if key is None:
            key = self.category(CategoryQuery.model_validate(query)).query.key
            self._keys[cache_key] = key
        return self.categories[key]

    def drop(self, key: str) -> CategoryProgress | None:
        """Forget the category of query *key* (asked again otherwise)."""
        self._keys = {k: v for k, v in self._keys.items() if v != key}
        return self.categories.pop(key, None)

    def to_data(self) -> list[dict[str, Any]]:
        return [category.to_data() for category in self.categories.values()]

    @classmethod
    def from_data(cls, data: Iterable[Mapping[str, Any]]) -> CrawlProgress:
        progress = cls()
        for entry in data:
            category = CategoryProgress.from_data(entry)
            progress.categories[category.query.key] = category
        return progress
