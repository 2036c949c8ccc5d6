"""Which listings of a page are new, repriced or back, by the store's rule,
while the crawl goes on: what ``-a details=new,price,back`` chooses.

The store judges a listing when it writes it (``Store.CHANGES``): new if it
has no row in ``items``, back if its row is marked gone, price if the price
differs. Its writes come in batches, later than a page is parsed, so
:class:`ListingJudge` reads the same rows for a page's listings at once, on
a connection of its own, and applies the same rule. A listing the run
already wrote (its row's ``last_run`` is the run: an earlier page, another
worker, a killed run of the job) is judged by what the store recorded then:
the run's change for it, if any. So every worker and every run of a job
chooses the same listings.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tmapi_crawler.contract.credentials import store_uri
from tmapi_crawler.store.db import open_store, store_errors
from tmapi_crawler.store.extension import CatalogStore

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from tmapi_crawler.store.db import Store

logger = logging.getLogger(__name__)


def _price(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def judged(
    row: Mapping[str, Any] | None,
    price: Any,
    run_id: str | None,
    change: str | None,
) -> str | None:
    """The store's judgement of one listing: ``new``, ``back``, ``price`` or
    None; *row* its ``items`` row, *change* the run's change for it."""
    if row is not None and run_id is not None and row["last_run"] == run_id:
        return change  # written by this run already: what the store said then
    if row is None:
        return "new"
    if row["gone_at"] is not None:
        return "back"
    return "price" if _price(row["price"]) != _price(price) else None


class ListingJudge:
    """Reads the store for a page's listings; chooses those of the kinds asked."""

    def __init__(self, crawler: Crawler, uri: str) -> None:
        self.crawler = crawler
        self.uri = uri
        self.errors = store_errors(uri)
        self.store: Store | None = None

    @classmethod
    def of(cls, crawler: Crawler) -> ListingJudge:
        uri = store_uri(crawler.settings)
        assert uri, "details judged by the store need TMAPI_STORE (preflight)"
        return cls(crawler, uri)

    @property
    def run_id(self) -> str | None:
        store = CatalogStore.of(self.crawler)
        return store.run_id if store is not None else None

    def chosen(
        self, items: Sequence[Mapping[str, Any]], language: str, kinds: frozenset[str]
    ) -> list[Mapping[str, Any]]:
        """The listings of *items* (raw, as the page gave them) of *kinds*."""
        ids = [int(item["item_id"]) for item in items if _id(item) is not None]
        if not ids:
            return []
        run_id = self.run_id
        try:
            rows, changes = self.read(ids, language, run_id)
        except self.errors as exc:
            logger.warning(
                "Catalog store unreachable (%s): no details chosen for %d listings",
                exc,
                len(ids),
            )
            self.close()
            return []
        return [
            item
            for item in items
            if (item_id := _id(item)) is not None
            and judged(
                rows.get(item_id), item.get("price"), run_id, changes.get(item_id)
            )
            in kinds
        ]

    def read(
        self, ids: list[int], language: str, run_id: str | None
    ) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
        if self.store is None:
            self.store = open_store(self.uri)
        marks = ", ".join("?" for _ in ids)
        rows = self.store.query(
            "SELECT item_id, price, gone_at, last_run FROM items "
            f"WHERE language = ? AND item_id IN ({marks})",
            (language, *ids),
        )
        changes = self.store.query(
            "SELECT item_id, change FROM changes WHERE run_id = ? AND language = ? "
            f"AND change IN ('new', 'price', 'back') AND item_id IN ({marks})",
            (run_id or "", language, *ids),
        )
        return (
            {int(row["item_id"]): row for row in rows},
            {int(row["item_id"]): str(row["change"]) for row in changes},
        )

    def close(self) -> None:
        if self.store is not None:
            with contextlib.suppress(*self.errors):
                self.store.close()
            self.store = None


def _id(item: Mapping[str, Any]) -> int | None:
    try:
        return int(item["item_id"])
    except (KeyError, TypeError, ValueError):
        return None
