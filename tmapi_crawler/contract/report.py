"""Where a crawl stands, in figures: the same for the progress line and the summary.

:func:`run_figures` reads, without copying, the spider's per-category
progress (:class:`~tmapi_crawler.contract.pagination.CrawlProgress`, with the counts of
:mod:`tmapi_crawler.extensions.ledger`) and the crawler's stats, and returns one
:class:`RunFigures`. Free of Scrapy, so it is tested as plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from tmapi_crawler.contract.cost import CallCost
from tmapi_crawler.contract.pagination import CategoryProgress, CrawlProgress
from tmapi_crawler.contract.stats import CALLS, CALLS_TO, RESPONSE, by_prefix

DETAILS_ENDPOINT = "details"  # contract.endpoints.DETAILS.name
COUNTS: tuple[str, ...] = ("pages", "done", "failed", "left", "items")
COUNTS += ("duplicates", "invalid", "calls", "retries")
COLUMNS = (
    ("total_count", "reported"),
    ("pages", "planned"),
    ("done", "done"),
    ("failed", "failed"),
    ("items", "items"),
    ("duplicates", "dups"),
    ("invalid", "invalid"),
    ("calls", "calls"),
    ("retries", "retries"),
)


@dataclass(frozen=True, slots=True)
class CategoryRow:
    """One category query's figures (or the totals of all of them)."""

    label: str
    key: str  # the query's identity: its query string without page and token
    total_count: int | None
    pages: int  # pages planned, cut at a page that said it was the last
    done: int
    failed: int
    left: int  # planned, neither done nor failed
    items: int  # items exported
    duplicates: int
    invalid: int
    calls: int
    retries: int
    failed_pages: dict[int, str] = field(default_factory=dict)
    capped: bool = False  # total_count at the API's result cap: more may exist

    @classmethod
    def of(cls, key: str, category: CategoryProgress, result_cap: int) -> CategoryRow:
        return cls(
            label=category.label,
            key=key,
            total_count=category.total_count,
            pages=category.pages,
            done=len(category.done),
            failed=len(category.failed),
            left=category.left,
            items=category.delivered,
            duplicates=category.duplicates,
            invalid=category.invalid,
            calls=category.calls,
            retries=category.retries,
            failed_pages=dict(sorted(category.failed.items())),
            capped=category.total_count is not None
            and category.total_count >= result_cap,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed_pages"] = {str(k): v for k, v in self.failed_pages.items()}
        return data


def totals(rows: Iterable[CategoryRow]) -> CategoryRow:
    rows = list(rows)
    counts = {name: sum(getattr(row, name) for row in rows) for name in COUNTS}
    reported = [row.total_count for row in rows if row.total_count is not None]
    return CategoryRow(
        label="total", key="", total_count=sum(reported) if reported else None, **counts
    )


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return str(timedelta(seconds=round(seconds)))


@dataclass(frozen=True, slots=True)
class RunFigures:
    rows: list[CategoryRow]
    calls: int  # every call sent (stat tmapi/calls)
    responses: dict[str, int]  # tmapi/response/<code> counts
    elapsed: float  # seconds since the crawl started
    cost: CallCost | None = None
    detail_calls: int = 0  # of calls, those for item details (tmapi/calls_to/details)

    @property
    def listing_calls(self) -> int:
        """The calls for listings (pages, and the category tree)."""
        return self.calls - self.detail_calls

    def calls_split(self) -> str:
        """`` (listings 2 ~0.004 USD, details 30 ~0.06 USD)`` with details
        (the cost when it is known), else nothing."""
        if not self.detail_calls:
            return ""
        parts = []
        for name, calls in (
            ("listings", self.listing_calls),
            ("details", self.detail_calls),
        ):
            cost = f" ~{self.cost.format(calls)}" if self.cost else ""
            parts.append(f"{name} {calls}{cost}")
        return f" ({', '.join(parts)})"

    @property
    def total(self) -> CategoryRow:
        return totals(self.rows)

    @property
    def share_503(self) -> float:
        """The share of calls answered 503 (the concurrency limit)."""
        return self.responses.get("503", 0) / self.calls if self.calls else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds until every planned page is done, at the pace so far."""
        total = self.total
        finished = total.done + total.failed
        if not finished or self.elapsed <= 0:
            return None
        return total.left / (finished / self.elapsed)

    @property
    def cost_text(self) -> str | None:
        return self.cost.format(self.calls) if self.cost else None

    def progress_line(self) -> str:
        """One compact line: pages, items, calls, retries, 503 share, ETA, cost."""
        total = self.total
        parts = [
            f"pages {total.done}/{total.pages} done"
            + (f", {total.failed} failed" if total.failed else ""),
            f"items {total.items}",
            f"calls {self.calls}{self.calls_split()}, retries {total.retries}, "
            f"503 {self.share_503:.1%}",
            f"ETA {format_duration(self.eta if total.left else 0)}",
        ]
        if self.cost_text:
            parts.append(f"cost ~{self.cost_text}")
        return " | ".join(parts)


def run_figures(
    progress: CrawlProgress | None,
    stats: Mapping[str, Any],
    elapsed: float,
    cost: CallCost | None = None,
    *,
    result_cap: int,
) -> RunFigures:
    categories = progress.categories.items() if progress else ()
    prefix = RESPONSE
    responses = {
        key[len(prefix) :]: int(value)
        for key, value in stats.items()
        if key.startswith(prefix)
    }
    return RunFigures(
        rows=[
            CategoryRow.of(key, category, result_cap) for key, category in categories
        ],
        calls=int(stats.get(CALLS, 0)),
        responses=responses,
        elapsed=elapsed,
        cost=cost,
        detail_calls=by_prefix(stats, CALLS_TO).get(DETAILS_ENDPOINT, 0),
    )
