"""Price slicing: a whole category past the API's result cap. Free of Scrapy.

The API shows at most ``RESULT_CAP`` results of any query, so a category
holding more is queried as price bands (``price_start``/``price_end``), each
under the cap. A band's page 1 is both its probe and its first page of data:
under the cap, the band is paged like any category; at the cap, it is split
by :func:`plan_split` and its children probed in turn.

Prices are CNY with two decimals, so bands are built on whole fen.

Boundaries. Neighbouring bands share their boundary value: ``[a, c]`` then
``[c, b]``. If the API's ``price_end`` is exclusive, that is an exact
partition; if it is inclusive, the items priced exactly ``c`` come twice and
dedupe removes them. Either way nothing falls between two bands, and the
outer bounds are the user's own, sent as given. ``price_start`` is taken as
inclusive (the documented "minimum price"). A cut is placed one fen above a
price seen in the sample, at a price the sample did not see: popular prices
are the ones a sample sees, so the value read twice is a rare one. Once a
page shows an item priced exactly at its band's end, the API is known to be
inclusive and the band's descendants are built without overlap.

How many bands: a capped ``total_count`` only says "at least the cap", so the
count cannot size the split; the page-1 prices can place it. A band is cut at
the quantiles of its page-1 prices into ``ways`` parts (default 4), each
expected to hold a ``1/ways`` share; a child still at the cap is split again.

A band that is one price point (one fen wide) and still at the cap cannot be
split: it is a coverage :class:`Gap`, reported with its count, never retried.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tmapi_crawler.contract.api import CategoryQuery

SPLIT_MODES = ("price",)
DEFAULT_MAX_DEPTH = 24  # enough for single-fen bands from 0 to 100 million yuan


def to_fen(price: object) -> int | None:
    """A price (``"12.50"``, a Decimal, a number) in whole fen; None if not one."""
    if price is None or isinstance(price, bool):
        return None
    try:
        value = Decimal(str(price).strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    return int((value * 100).to_integral_value())


def yuan(fen: int) -> Decimal:
    """Whole fen as the Decimal price the query takes."""
    return Decimal(fen) / 100


@dataclass(frozen=True, slots=True)
class Band:
    """A price band of one category query, as it travels in request meta.

    ``start``/``end`` are the values sent, in fen (None: not sent). ``shared_end``
    says the next band starts at ``end`` (so that point is read twice by an
    inclusive API); ``inclusive`` is what is known of the API's ``price_end``.
    ``root`` is the key of the user's query the band belongs to.
    """

    root: str
    start: int | None = None
    end: int | None = None
    shared_end: bool = False
    inclusive: bool | None = None
    depth: int = 0

    @classmethod
    def whole(cls, query: CategoryQuery) -> Band:
        """The user's own price range: the first band of a query."""
        return cls(query.key, to_fen(query.price_start), to_fen(query.price_end))

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Band:
        return cls(**meta)

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)

    def query(self, query: CategoryQuery) -> CategoryQuery:
        """*query* restricted to this band."""
        return query.model_copy(
            update={
                "price_start": None if self.start is None else yuan(self.start),
                "price_end": None if self.end is None else yuan(self.end),
            }
        )

    def wanted(self, inclusive: bool | None = None) -> tuple[int, int | None]:
        """The fen prices this band must resolve (lowest, highest; None: open).

        The end point is left to the next band when it is shared, or when the
        API may be exclusive (then it is not in this band at all).
        """
        inclusive = self.inclusive if inclusive is None else inclusive
        low = self.start or 0
        if self.end is None:
            return low, None
        if inclusive and not self.shared_end:
            return low, self.end
        return low, self.end - 1

    def describe(self) -> str:
        start = "0" if self.start is None else f"{yuan(self.start)}"
        end = "" if self.end is None else f"{yuan(self.end)}"
        return f"price {start}..{end}"


@dataclass(frozen=True, slots=True)
class Gap:
    """A band still at the cap that cannot be split: its items past the cap
    are unreachable through this API."""

    band: Band
    count: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "price_start": None
            if self.band.start is None
            else str(yuan(self.band.start)),
            "price_end": None if self.band.end is None else str(yuan(self.band.end)),
            "count": self.count,
            "reason": self.reason,
        }


def proves_inclusive(band: Band, prices: Iterable[int]) -> bool:
    """Whether an answer holding these prices shows ``price_end`` is inclusive."""
    return band.end is not None and any(price == band.end for price in prices)


def filter_ignored(band: Band, prices: list[int]) -> bool:
    """Whether most of the answer lies outside the band: the price filter is
    not applied, and splitting could never get under the cap."""
    low, high = band.start or 0, band.end
    outside = [p for p in prices if p < low or (high is not None and p > high)]
    return bool(prices) and len(outside) * 2 > len(prices)


def plan_split(
    band: Band,
    total_count: int,
    prices: Iterable[int | None],
    *,
    representative: bool = True,
    ways: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> list[Band] | Gap:
    """The bands that replace *band*, whose page 1 said ``total_count`` (at the
    cap) and showed items at *prices* (fen; None for an unreadable price).

    *representative* is False when the sample is one end of the band (a
    price-sorted query): cuts are then spread evenly on a log scale instead.
    """
    seen = [price for price in prices if price is not None]
    if filter_ignored(band, seen):
        return Gap(band, total_count, "the API ignored the price filter")
    inclusive = band.inclusive or proves_inclusive(band, seen) or None
    low, high = band.wanted(inclusive)
    if high is not None and high <= low:
        return Gap(band, total_count, "one price point holds more than the cap")
    if band.depth >= max_depth:
        return Gap(band, total_count, f"still at the cap after {max_depth} splits")
    inside = sorted(p for p in seen if p >= low and (high is None or p <= high))
    cuts = _quantile_cuts(inside, ways) if representative else []
    cuts = sorted(c for c in set(cuts) if low < c and (high is None or c <= high))
    if not cuts:
        cuts = _fallback_cuts(low, high, inside, ways)
    return _children(band, inclusive, low, high, cuts)


def _quantile_cuts(inside: list[int], ways: int) -> list[int]:
    """One fen above the price closing each ``1/ways`` share of the sample,
    skipping cuts on a price the sample saw."""
    if not inside:
        return []
    seen = set(inside)
    cuts = []
    for part in range(1, ways):
        price = inside[math.ceil(part * len(inside) / ways) - 1]
        if price + 1 not in seen:
            cuts.append(price + 1)
    return cuts


def _fallback_cuts(
    low: int, high: int | None, inside: list[int], ways: int
) -> list[int]:
    """Cuts when the sample cannot place them: a dense top point gets its own
    band; otherwise cuts are spread evenly on a log scale."""
    if high is not None and inside and inside[0] == high:
        return [high]
    top = high if high is not None else max([*inside, 2 * low, low + 100]) + 1
    bottom = max(low, 1)
    ratio = (top / bottom) ** (1 / ways) if top > bottom else 1.0
    cuts = {round(bottom * ratio**part) for part in range(1, ways)}
    cuts = {c for c in cuts if low < c and (high is None or c <= high)}
    if not cuts and high is not None:
        cuts = {(low + high + 1) // 2}
    if not cuts:
        cuts = {low + 1}
    return sorted(cuts)


def _children(
    band: Band, inclusive: bool | None, low: int, high: int | None, cuts: list[int]
) -> list[Band]:
    """Bands ``[low, c1)``, ``[c1, c2)`` ... ``[ck, high]``, sent so that
    nothing falls between them whatever ``price_end`` means."""
    starts = [band.start, *cuts]
    depth = band.depth + 1
    children = []
    for start, cut in zip(starts, cuts, strict=False):
        if inclusive:
            child = Band(band.root, start, cut - 1, False, True, depth)
        else:
            child = Band(band.root, start, cut, True, inclusive, depth)
        children.append(child)
    last_start = starts[-1]
    if inclusive:
        children.append(Band(band.root, last_start, high, False, True, depth))
    else:
        children.append(
            Band(band.root, last_start, band.end, band.shared_end, None, depth)
        )
    return children


def settings_problems(settings: Any) -> list[str]:
    """Why the slicing settings cannot work, checked before any call."""
    problems = []
    split = settings.get("TMAPI_SPLIT")
    if split not in (None, "", "none", *SPLIT_MODES):
        problems.append(f"TMAPI_SPLIT={split!r}: must be 'price' or 'none'")
    for name, lowest in (("TMAPI_RESULT_CAP", 1), ("TMAPI_SPLIT_WAYS", 2)):
        value = settings.get(name)
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if number is None or number < lowest:
            problems.append(
                f"{name}={value!r}: must be a whole number, {lowest} or more"
            )
    return problems
