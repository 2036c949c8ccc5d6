"""The item details in the run summary (:mod:`.summary`): their calls and
cost apart from the listings', what became of them, and the dry run's
estimate of the detail calls the crawl would make
(:mod:`tmapi_crawler.store.estimate`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tmapi_crawler.contract.credentials import store_uri
from tmapi_crawler.contract.details import MAX_DETAIL_CALLS
from tmapi_crawler.contract.operator_settings import max_calls
from tmapi_crawler.contract.stats import DETAILS, DETAILS_UNFIT, by_prefix
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.store.db import store_errors
from tmapi_crawler.store.estimate import Planned, estimate_from

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

    from tmapi_crawler.contract.report import RunFigures

Money = Callable[[int], dict[str, str] | None]  # the cost of N calls, if known


def details_figures(
    figures: RunFigures, stats: Mapping[str, Any], money: Money
) -> dict[str, Any] | None:
    """The item details of the run, their calls apart from the listings'
    (None: no details asked)."""
    counts = by_prefix(stats, DETAILS)
    if not counts and not figures.detail_calls:
        return None
    return {
        "listing_calls": figures.listing_calls,
        "listing_cost": money(figures.listing_calls),
        "detail_calls": figures.detail_calls,
        "detail_cost": money(figures.detail_calls),
        **{name: value for name, value in counts.items() if "/" not in name},
        "unfit": by_prefix(stats, DETAILS_UNFIT),
    }


def details_estimate(
    crawler: Crawler, spider: Spider | None, money: Money
) -> dict[str, Any] | None:
    """The dry run's estimate of the detail calls the crawl would make."""
    kinds: frozenset[str] = getattr(spider, "detail_kinds", frozenset())
    progress = CrawlLedger.of(crawler).progress.categories.values()
    planned = [
        Planned(p.query.cat_id, p.query.language, p.label, p.total_count or 0)
        for p in progress
    ]
    cap = max_calls(crawler.settings, MAX_DETAIL_CALLS)
    uri = store_uri(crawler.settings)
    try:
        found = estimate_from(kinds, planned, uri, cap)
    except store_errors(uri or "") as exc:
        return {"calls": None, "unknown": [f"the store did not answer: {exc}"]}
    if found is None:
        return None
    return {
        "calls": found.calls,
        "cost": money(found.calls),
        "unknown": list(found.unknown),
        "text": found.text(),
    }
