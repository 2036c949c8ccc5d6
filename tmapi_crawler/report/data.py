"""What a run report shows, read from the catalog store. Free of Scrapy.

:func:`read_run` gathers, for one run, everything :mod:`.html` renders and
:mod:`.plots` draws: the run's row, its category queries and their price
bands (``run_categories``, ``run_shares``), its changes with each listing's
link (``changes`` joined to ``items``), the price history of the listings
whose price moved most, and the prices of each category in this run and the
last run before it that saw the category. Read-only: :meth:`Store.query`
only. What the store does not hold (calls, cost, pages, the pace of the
crawl, images) comes from :class:`CrawlFacts`, which the crawl gives when it
writes its own report; without them the report says what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from tmapi_crawler.store.changes import KINDS, ListedChange
from tmapi_crawler.store.db import Store

TOP = 10  # rows of each list of changes, and listings in the history plot
HISTORY_ITEMS = 8  # listings in the price history plot: the largest moves
DISTRIBUTION_CATEGORIES = 6  # categories in the distribution plot, the largest
READ_STEPS = ("the runs", "the changes", "the coverage", "the price history",
              "the prices per category")  # fmt: skip
RENDER_STEPS = ("the price history plot", "the price distribution plot",
                "the pace plot")  # fmt: skip
Step = Callable[[str], None]  # told each step as it starts (a progress bar)


def quiet(step: str) -> None:
    pass


@dataclass(frozen=True)
class Sample:
    """The crawl's counters at a moment: seconds since it started, calls sent
    and items delivered until then."""

    seconds: float
    calls: int
    items: int


@dataclass
class CrawlFacts:
    """What the crawl knows of itself and the store does not keep: its run
    summary (``RunSummary``'s JSON), its pace sampled through the run, and
    the image of each listing it delivered."""

    summary: Mapping[str, Any] | None = None
    samples: list[Sample] = field(default_factory=list)
    images: Mapping[tuple[int, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class Listing(ListedChange):
    """One change, as the report lists it."""

    @property
    def key(self) -> tuple[int, str]:
        return (self.item_id, self.language)


@dataclass(frozen=True)
class Band:
    label: str  # "whole category", "12.00-15.50"
    total_count: int


@dataclass(frozen=True)
class Coverage:
    """One category query of the run: complete (gone judged) or why not."""

    label: str
    cat_id: int
    language: str
    complete: bool | None  # None: not judged (a job stopped early, a worker open)
    reason: str | None
    bands: list[Band]
    gaps: list[str]
    failed_pages: int
    delivered: int


@dataclass(frozen=True)
class Point:
    run_id: str
    started_at: str
    price: Decimal | None


@dataclass
class RunData:
    run: dict[str, Any]
    runs: list[dict[str, Any]]  # every run of the store, oldest first
    previous: str | None  # the run before this one, if any
    coverage: list[Coverage]
    counts: dict[str, int]
    changes: dict[str, list[Listing]]  # kind -> every change of the kind
    history: dict[tuple[int, str], list[Point]]  # the plotted listings' prices
    # category label -> (this run's prices, the last run's with the category)
    distributions: dict[str, tuple[list[Decimal], list[Decimal]]]
    distribution_runs: dict[str, str | None]  # label -> the last run compared
    categories_left_out: int  # categories not in the distribution plot
    facts: CrawlFacts

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def drops(self) -> list[Listing]:
        """Price changes down, the largest (in percent) first."""
        moved = [c for c in self.changes["price"] if (c.percent or 0) < 0]
        return sorted(moved, key=lambda c: (c.percent, c.item_id))

    @property
    def rises(self) -> list[Listing]:
        moved = [c for c in self.changes["price"] if (c.percent or 0) > 0]
        return sorted(moved, key=lambda c: (-(c.percent or 0), c.item_id))


def decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def band_label(key: str) -> str:
    """A band's query key as a price range (``12.00-15.50``), or the whole
    category."""
    params = dict(parse_qsl(key))
    low, high = params.get("price_start"), params.get("price_end")
    if low is None and high is None:
        return "whole category"
    return f"{low or '0'}-{high or '...'}"


def last_run_id(store: Store) -> str | None:
    runs = store.runs()
    return str(runs[-1]["run_id"]) if runs else None


def read_run(
    store: Store,
    run_id: str,
    facts: CrawlFacts | None = None,
    history_items: int = HISTORY_ITEMS,
    step: Step = quiet,
) -> RunData:
    """Everything the report of *run_id* shows (KeyError: no such run);
    *step* is told each of :data:`READ_STEPS` as it starts."""
    step(READ_STEPS[0])
    runs = store.query(
        "SELECT run_id, job, started_at, finished_at, finish_reason FROM runs "
        "ORDER BY started_at, run_id"
    )
    index = next((n for n, r in enumerate(runs) if r["run_id"] == run_id), None)
    if index is None:
        raise KeyError(run_id)
    run = dict(runs[index])
    run["observations"] = store.query(
        "SELECT COUNT(*) AS n FROM observations WHERE run_id = ?", (run_id,)
    )[0]["n"]
    step(READ_STEPS[1])
    changes = read_changes(store, run_id)
    step(READ_STEPS[2])
    data = RunData(
        run=run,
        runs=runs,
        previous=str(runs[index - 1]["run_id"]) if index else None,
        coverage=read_coverage(store, run_id),
        counts={kind: len(changes[kind]) for kind in KINDS},
        changes=changes,
        history={},
        distributions={},
        distribution_runs={},
        categories_left_out=0,
        facts=facts or CrawlFacts(),
    )
    moved = data.drops[: history_items // 2] + data.rises[: history_items // 2]
    step(READ_STEPS[3])
    data.history = read_history(store, [c.key for c in moved])
    step(READ_STEPS[4])
    read_distributions(store, data)
    return data


def read_changes(store: Store, run_id: str) -> dict[str, list[Listing]]:
    rows = store.query(
        "SELECT c.change, c.item_id, c.language, c.cat_id, c.title, "
        "i.product_url, c.old_price, c.new_price FROM changes c "
        "LEFT JOIN items i ON i.item_id = c.item_id AND i.language = c.language "
        "WHERE c.run_id = ? ORDER BY c.change, c.item_id, c.language",
        (run_id,),
    )
    found: dict[str, list[Listing]] = {kind: [] for kind in KINDS}
    for row in rows:
        found[row["change"]].append(
            Listing(
                row["change"],
                int(row["item_id"]),
                row["language"],
                None if row["cat_id"] is None else int(row["cat_id"]),
                row["title"],
                row["product_url"],
                decimal(row["old_price"]),
                decimal(row["new_price"]),
            )
        )
    return found


def read_coverage(store: Store, run_id: str) -> list[Coverage]:
    """Each category query of the run, from every process's share merged."""
    judged = {
        row["query"]: row
        for row in store.query(
            "SELECT query, complete, reason FROM run_categories WHERE run_id = ?",
            (run_id,),
        )
    }
    shares: dict[str, list[dict[str, Any]]] = {}
    for row in store.query(
        "SELECT query, cat_id, language, label, bands, gaps, failed_pages, "
        "delivered FROM run_shares WHERE run_id = ? ORDER BY query, worker",
        (run_id,),
    ):
        shares.setdefault(row["query"], []).append(row)
    found = []
    for query, parts in shares.items():
        bands: dict[str, int] = {}
        gaps: list[str] = []
        for part in parts:
            bands.update(json.loads(part["bands"]))
            gaps += [gap for gap in json.loads(part["gaps"]) if gap not in gaps]
        verdict = judged.get(query)
        first = parts[0]
        found.append(
            Coverage(
                label=first["label"],
                cat_id=int(first["cat_id"]),
                language=first["language"],
                complete=None if verdict is None else bool(verdict["complete"]),
                reason=None if verdict is None else verdict["reason"],
                bands=[Band(band_label(k), n) for k, n in sorted(bands.items())],
                gaps=gaps,
                failed_pages=sum(int(p["failed_pages"]) for p in parts),
                delivered=sum(int(p["delivered"]) for p in parts),
            )
        )
    return found


def read_history(
    store: Store, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], list[Point]]:
    """The price of each listing in every run that saw it, oldest first."""
    if not keys:
        return {}
    where = " OR ".join("(o.item_id = ? AND o.language = ?)" for _ in keys)
    rows = store.query(
        "SELECT o.item_id, o.language, o.run_id, r.started_at, o.price "
        "FROM observations o JOIN runs r ON r.run_id = o.run_id "
        f"WHERE {where} ORDER BY r.started_at, o.run_id",
        [part for key in keys for part in key],
    )
    found: dict[tuple[int, str], list[Point]] = {key: [] for key in keys}
    for row in rows:
        found[(int(row["item_id"]), row["language"])].append(
            Point(row["run_id"], row["started_at"], decimal(row["price"]))
        )
    return found


def read_distributions(store: Store, data: RunData) -> None:
    """The prices of the run's largest categories, and of the last run before
    it that saw each."""
    labels = {(c.cat_id, c.language): c.label for c in data.coverage}
    this = prices_by_category(store, data.run_id)
    chosen = sorted(this, key=lambda k: (-len(this[k]), k))[:DISTRIBUTION_CATEGORIES]
    data.categories_left_out = len(this) - len(chosen)
    position = [str(r["run_id"]) for r in data.runs].index(data.run_id)
    earlier = [str(r["run_id"]) for r in data.runs[:position]]
    before: dict[tuple[int, str], tuple[str, list[Decimal]]] = {}
    for run_id in reversed(earlier):
        if all(key in before for key in chosen):
            break
        for key, prices in prices_by_category(store, run_id).items():
            if key in chosen and key not in before:
                before[key] = (run_id, prices)
    for key in chosen:
        cat_id, language = key
        label = labels.get(key, f"category {cat_id} ({language})")
        last_run, last_prices = before.get(key, (None, []))
        data.distributions[label] = (this[key], last_prices)
        data.distribution_runs[label] = last_run


def prices_by_category(
    store: Store, run_id: str
) -> dict[tuple[int, str], list[Decimal]]:
    found: dict[tuple[int, str], list[Decimal]] = {}
    for row in store.query(
        "SELECT cat_id, language, price FROM observations WHERE run_id = ? "
        "AND price IS NOT NULL AND cat_id IS NOT NULL",
        (run_id,),
    ):
        key = (int(row["cat_id"]), row["language"])
        found.setdefault(key, []).append(Decimal(str(row["price"])))
    return found
