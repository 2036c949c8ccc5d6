"""How many item details a crawl would ask, for the dry run's plan.

``details=all``: every listing the categories report (page 1's
``total_count``), up to ``TMAPI_MAX_DETAIL_CALLS``. ``new``, ``price``,
``back``: judged by the store during the crawl, so only estimated, from the
store's history of each category: a category the store never saw is all new;
else the share of its listings that made those changes in its last run that
was not its first (a first run finds every listing new), times what it
reports now. A category seen in one run only cannot be estimated, and the
plan says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tmapi_crawler.contract.details import STORE_KINDS
from tmapi_crawler.store.db import open_store

if TYPE_CHECKING:
    from tmapi_crawler.store.base import Store


@dataclass(frozen=True, slots=True)
class Planned:
    """A category query of the plan: what page 1 reported."""

    cat_id: int
    language: str
    label: str
    total_count: int


@dataclass(frozen=True, slots=True)
class DetailEstimate:
    calls: int  # detail calls estimated, over the queries that could be
    unknown: tuple[str, ...] = ()  # why some queries could not be estimated

    def text(self) -> str:
        found = f"item details: ~{self.calls} calls"
        if self.unknown:
            found += " (not counted: " + "; ".join(self.unknown) + ")"
        return found


def estimate_from(
    kinds: frozenset[str],
    planned: Iterable[Planned],
    uri: str | None,
    cap: int | None = None,
) -> DetailEstimate | None:
    """:func:`estimate`, the store opened from *uri* when it is needed."""
    if not kinds or "all" in kinds or not uri:
        return estimate(kinds, planned, None, cap)
    store = open_store(uri)
    try:
        return estimate(kinds, planned, store, cap)
    finally:
        store.close()


def estimate(
    kinds: frozenset[str],
    planned: Iterable[Planned],
    store: Store | None,
    cap: int | None = None,
) -> DetailEstimate | None:
    """The detail calls of the crawl the plan describes (None: no details)."""
    if not kinds:
        return None
    calls, unknown = 0, []
    for query in planned:
        if "all" in kinds:
            calls += query.total_count
            continue
        assert store is not None, "new, price and back need TMAPI_STORE (preflight)"
        share = _share(store, kinds, query)
        if share is None:
            unknown.append(
                f"{query.label}: the store has one run of it, so the share that "
                "changes between runs is not known yet"
            )
            continue
        calls += math.ceil(share * query.total_count)
    if cap is not None:
        calls = min(calls, cap)
    return DetailEstimate(calls, tuple(unknown))


def _share(store: Store, kinds: frozenset[str], query: Planned) -> float | None:
    """The share of the query's listings that made a change of *kinds* in
    its last run that was not its first; 1.0 (or 0.0 without ``new``) for a
    category the store never saw; None: seen in one run only."""
    runs = store.query(
        "SELECT run_id, COUNT(*) AS n, MAX(observed_at) AS at FROM observations "
        "WHERE cat_id = ? AND language = ? GROUP BY run_id ORDER BY at DESC",
        (query.cat_id, query.language),
    )
    if not runs:
        return 1.0 if "new" in kinds else 0.0
    if len(runs) < 2:  # its first run only: every listing was new then
        return None
    latest = runs[0]
    wanted = sorted(kinds & set(STORE_KINDS))
    marks = ", ".join("?" for _ in wanted)
    made = store.query(
        "SELECT COUNT(*) AS n FROM changes WHERE run_id = ? AND cat_id = ? "
        f"AND language = ? AND change IN ({marks})",
        (latest["run_id"], query.cat_id, query.language, *wanted),
    )
    return int(made[0]["n"]) / int(latest["n"])
