"""An observation (an item as the store writes it, :func:`observation`),
what it means against the store, and when ``gone`` can be said. Free of
Scrapy.

An item seen in a run is compared with the row the store held for it (its
``item_id`` and ``language``): no row is ``new`` (and only ``new``, whatever
its price); a row marked gone is ``back``; a row whose price differs is
``price`` (compared in SQL, a whole batch at a time:
:meth:`~tmapi_crawler.store.writes.StoreWrites.write`). An item is ``gone``
only when a category query that covers the whole category was crawled
completely in this run and the item was not seen in it (:func:`cannot_judge`
says why a crawl cannot tell).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tmapi_crawler.contract.items import ProductItem

KINDS = ("new", "price", "gone", "back")
# the variants' (store/variants.py)
VARIANT_KINDS = ("variant_new", "variant_price", "out_of_stock", "back_in_stock")
ALL_KINDS = (*KINDS, *VARIANT_KINDS)  # the listings' changes, the variants'

# One observation, as the store writes it (the order of the columns).
OBSERVED = (
    "item_id",
    "language",
    "cat_id",
    "title",
    "price",
    "currency",
    "company_name",
    "is_super_factory",
    "shop_years",
    "sale_quantity_90days",
    "product_url",
    "observed_at",
)

Row = tuple[Any, ...] | list[Any]  # an observation (OBSERVED order)


def observation(item: ProductItem) -> tuple[Any, ...]:
    """An item as the store writes it (:data:`OBSERVED` order)."""
    shop = item.shop_info
    sale = item.sale_info
    return (
        item.item_id,
        item.language or "",
        item.cat_id,
        item.title,
        item.price,
        item.currency,
        shop.company_name if shop else None,
        shop.is_super_factory if shop else None,
        shop.shop_years if shop else None,
        sale.sale_quantity_90days if sale else None,
        item.product_url,
        item.crawled_at,
    )


@dataclass(frozen=True, slots=True)
class Change:
    change: str  # one of KINDS
    item_id: int
    language: str
    cat_id: int | None
    title: str | None
    old_price: Decimal | None
    new_price: Decimal | None
    first_seen: str
    last_seen: str

    def as_dict(self) -> dict[str, Any]:
        """A line of the changes feed: prices as exact decimal strings."""
        return {
            "change": self.change,
            "item_id": self.item_id,
            "language": self.language,
            "cat_id": self.cat_id,
            "title": self.title,
            "old_price": None if self.old_price is None else str(self.old_price),
            "new_price": None if self.new_price is None else str(self.new_price),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


@dataclass(frozen=True)
class ListedChange:
    """A change with its listing's link, as the run report and the alerts
    show it."""

    change: str
    item_id: int
    language: str
    cat_id: int | None
    title: str | None
    url: str | None
    old_price: Decimal | None
    new_price: Decimal | None

    @property
    def percent(self) -> Decimal | None:
        """The move of the price, in percent of the old one (None: no old or
        no new price, or an old price of 0)."""
        old, new = self.old_price, self.new_price
        if old is None or new is None or not old:
            return None
        return (new - old) * 100 / old


def count(changes: Iterable[Change | Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for change in changes:
        kind = change["change"] if isinstance(change, Mapping) else change.change
        counts[kind] += 1
    return counts


def summary_line(counts: Mapping[str, int]) -> str:
    """``N new, N price changes, N gone, N back`` (and the variants' changes,
    when there are any: ``; variants: N new, N price changes, N out of
    stock, N back in stock``)."""
    line = (
        f"{counts.get('new', 0)} new, {counts.get('price', 0)} price changes, "
        f"{counts.get('gone', 0)} gone, {counts.get('back', 0)} back"
    )
    variants = [counts.get(kind, 0) for kind in VARIANT_KINDS]
    if any(variants):
        new, price, out, back = variants
        line += (
            f"; variants: {new} new, {price} price changes, {out} out of stock, "
            f"{back} back in stock"
        )
    return line


@dataclass(frozen=True, slots=True)
class QueryCrawl:
    """What one process saw of a category query (its *share*, with several
    workers or several runs of a job), for judging ``gone``."""

    query: str  # the query's key
    cat_id: int
    language: str
    label: str
    whole_category: bool  # no filters, no price range: every listing of it
    bands: dict[str, int]  # band key: the total_count its pages reported
    gaps: tuple[str, ...]  # why parts were out of reach (the cap, a band)
    failed_pages: int
    delivered: int  # items on the pages of bands under the cap

    @property
    def expected(self) -> int:
        return sum(self.bands.values())


def merged(shares: Iterable[QueryCrawl]) -> QueryCrawl:
    """One query's crawl from the shares of every process that had pages of it."""
    shares = list(shares)
    first = shares[0]
    bands: dict[str, int] = {}
    gaps: list[str] = []
    for share in shares:
        bands.update(share.bands)
        gaps += [gap for gap in share.gaps if gap not in gaps]
    return QueryCrawl(
        first.query,
        first.cat_id,
        first.language,
        first.label,
        all(share.whole_category for share in shares),
        bands,
        tuple(gaps),
        sum(share.failed_pages for share in shares),
        sum(share.delivered for share in shares),
    )


def cannot_judge(crawl: QueryCrawl, finish_reason: str) -> str | None:
    """Why the run cannot say which listings of the query are gone (None: it
    can: every page was fetched, none failed, nothing was out of reach).
    *crawl* is every process's share merged; *finish_reason* the run's."""
    if not crawl.whole_category:
        return (
            "the query has filters or a price range, so it does not list the "
            "whole category"
        )
    if finish_reason != "finished":
        return f"the run stopped early ({finish_reason})"
    if crawl.failed_pages:
        return f"{crawl.failed_pages} page(s) failed"
    if crawl.gaps:
        return "; ".join(crawl.gaps)
    if not crawl.bands or crawl.delivered < crawl.expected:
        return f"only {crawl.delivered} of the {crawl.expected} items reported came"
    return None
