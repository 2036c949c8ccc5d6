"""How much of each category a crawl reached, as plain data. Free of Scrapy.

Per category query (the user's query, whatever bands it was sliced into):
the bands under the cap and their ``total_count`` (their sum is what the
API says there is), the items the bands' pages delivered against that sum,
the distinct item ids, the duplicate deliveries (overlapping band boundaries,
split bands' page 1, the API repeating itself), the bands split, and every
gap: a price band still at the cap that could not be split, or a whole
category at the cap crawled without ``split=price``.

This is what one process saw; with several workers each reports its share.
Once every page a category asked for is answered (or failed), its count of
distinct ids is final and the ids themselves are let go: a crawl of many
categories holds the ids of the categories under way only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tmapi_crawler.contract.seen import DistinctIds
from tmapi_crawler.contract.slicing import Band, Gap
from tmapi_crawler.contract.stats import COVERAGE


@dataclass(frozen=True)
class PageCover:
    """What one page added to its query's coverage (or a page that failed for
    good). The job journal keeps it with the page, so a resumed job's
    coverage counts every run's pages, a killed run's too."""

    root: str  # the user's query the page belongs to
    cat_id: int
    label: str
    band: str  # the key of the (band's) query the page is of
    items: int = 0
    total: int | None = None  # the total_count the page reported
    split: bool = False  # a band at the cap, split: its page 1 was a probe
    gaps: tuple[Gap, ...] = ()
    failed: bool = False

    def to_data(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "cat_id": self.cat_id,
            "label": self.label,
            "band": self.band,
            "items": self.items,
            "total": self.total,
            "split": self.split,
            "gaps": [
                {"band": g.band.to_meta(), "count": g.count, "reason": g.reason}
                for g in self.gaps
            ],
            "failed": self.failed,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> PageCover:
        gaps = tuple(
            Gap(Band.from_meta(gap["band"]), int(gap["count"]), str(gap["reason"]))
            for gap in data.get("gaps", ())
        )
        return cls(
            str(data["root"]),
            int(data["cat_id"]),
            str(data["label"]),
            str(data["band"]),
            int(data.get("items", 0)),
            data.get("total"),
            bool(data.get("split")),
            gaps,
            bool(data.get("failed")),
        )


@dataclass
class CategoryCoverage:
    cat_id: int
    label: str
    bands: dict[str, int] = field(default_factory=dict)  # band key: total_count
    split: int = 0  # bands found at the cap and split: their page 1 was a probe
    gaps: list[Gap] = field(default_factory=list)
    band_items: int = 0  # items delivered by the pages of bands under the cap
    deliveries: int = 0  # every item delivered, probes' page 1 included
    item_ids: DistinctIds = field(default_factory=DistinctIds)
    failed_pages: int = 0  # pages (a band's page 1 included) that failed for good
    open_pages: int = 0  # pages asked for and not yet answered or failed
    shared: bool = False  # got a page it did not ask for (another worker's)
    settled_distinct: int = 0  # distinct ids of the pages whose ids were let go

    @property
    def distinct(self) -> int:
        return self.settled_distinct + len(self.item_ids)

    def asked(self) -> None:
        """A page of this category was asked for."""
        self.open_pages += 1

    def apply(self, cover: PageCover) -> None:
        """What a page added (its item ids apart: :attr:`item_ids`)."""
        if cover.failed:
            self.failed_pages += 1
            return
        self.deliveries += cover.items
        if cover.split:
            self.split += 1  # its sub-bands count instead
            return
        self.band_items += cover.items
        if cover.total is not None:
            self.bands[cover.band] = cover.total
        elif cover.band not in self.bands:
            self.bands[cover.band] = cover.items
        self.gaps.extend(cover.gaps)

    def settled(self) -> None:
        """A page asked for was answered (its ids counted) or failed for good.
        With none left the distinct count is final: the ids are let go. A page
        this process did not ask for (a page of another worker or of an
        earlier run of the job) means more may come: the ids are kept."""
        if self.open_pages == 0:
            self.shared = True
            return
        self.open_pages -= 1
        if self.open_pages == 0 and not self.shared:
            self.settled_distinct += len(self.item_ids)
            self.item_ids = DistinctIds()

    @property
    def expected(self) -> int:
        return sum(self.bands.values())

    @property
    def complete(self) -> bool:
        return (
            not self.gaps and not self.failed_pages and self.band_items >= self.expected
        )

    def summary(self) -> dict[str, Any]:
        return {
            "cat_id": self.cat_id,
            "label": self.label,
            "bands": len(self.bands),
            "split": self.split,
            "expected": self.expected,
            "delivered": self.band_items,
            "distinct": self.distinct,
            "duplicates": self.deliveries - self.distinct,
            "gaps": [gap.to_dict() for gap in self.gaps],
            "failed_pages": self.failed_pages,
            "complete": self.complete,
        }


@dataclass
class CoverageReport:
    """Coverage of every category query of this process, by query key."""

    categories: dict[str, CategoryCoverage] = field(default_factory=dict)

    def category(self, key: str, cat_id: int, label: str) -> CategoryCoverage:
        if key not in self.categories:
            self.categories[key] = CategoryCoverage(cat_id, label)
        return self.categories[key]

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {key: entry.summary() for key, entry in self.categories.items()}

    def stats(self) -> dict[str, int]:
        """Totals over all categories, under a bounded set of stat names."""
        entries = list(self.categories.values())
        gaps = [gap for entry in entries for gap in entry.gaps]
        return {
            COVERAGE + "categories": len(entries),
            COVERAGE + "incomplete": sum(not e.complete for e in entries),
            COVERAGE + "bands": sum(len(e.bands) for e in entries),
            COVERAGE + "split": sum(e.split for e in entries),
            COVERAGE + "expected": sum(e.expected for e in entries),
            COVERAGE + "delivered": sum(e.band_items for e in entries),
            COVERAGE + "distinct": sum(e.distinct for e in entries),
            COVERAGE + "duplicates": sum(e.deliveries - e.distinct for e in entries),
            COVERAGE + "gaps": len(gaps),
            COVERAGE + "gap_count": sum(gap.count for gap in gaps),
        }

    def lines(self) -> Iterable[str]:
        """One human line per category, and one per gap."""
        for entry in self.categories.values():
            state = "complete" if entry.complete else "INCOMPLETE"
            yield (
                f"{entry.label}: {state}, {entry.band_items} of {entry.expected} "
                f"items in {len(entry.bands)} band(s), {entry.distinct} "
                f"distinct, {entry.deliveries - entry.distinct} duplicate "
                f"deliveries, {entry.split} band(s) split, {len(entry.gaps)} gap(s)"
                + (
                    f", {entry.failed_pages} failed page(s)"
                    if entry.failed_pages
                    else ""
                )
            )
            for gap in entry.gaps:
                yield (
                    f"  gap: {gap.band.describe()} holds {gap.count}+ items: "
                    f"{gap.reason}"
                )
