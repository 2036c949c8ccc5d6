"""Price slicing decisions, pure: bands cover the range whatever price_end means."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.contract.slicing import (
    Band,
    Gap,
    plan_split,
    settings_problems,
    to_fen,
)

CAP = 2000
WAYS = 4  # TMAPI_SPLIT_WAYS's default


def reads(band: Band, prices: list[int], inclusive: bool) -> list[int]:
    """The prices an API with this reading of price_end returns for *band*."""
    low = band.start or 0

    def inside(price: int) -> bool:
        if price < low:
            return False
        if band.end is None:
            return True
        return price <= band.end if inclusive else price < band.end

    return [price for price in prices if inside(price)]


def slice_all(prices: list[int], inclusive: bool, **options) -> tuple[list, list, int]:
    """Run the planner against a fake API until every band is under the cap.

    Returns (bands under the cap, gaps, probes), as a crawl would meet them.
    The sample is the first 20 matches in catalog order (the default sort).
    """
    pending, final, gaps, probes = [Band("root")], [], [], 0
    while pending:
        band = pending.pop()
        matches = reads(band, prices, inclusive)
        if len(matches) < CAP:
            final.append(band)
            continue
        probes += 1
        assert probes < 500, "endless splitting"
        plan = plan_split(band, CAP, matches[:20], **{"ways": WAYS, **options})
        if isinstance(plan, Gap):
            gaps.append(plan)
        else:
            pending += plan
    return final, gaps, probes


def catalog_prices(size: int, seed: int = 1) -> list[int]:
    """Prices like the simulator's: about half on a few popular points."""
    rng = random.Random(seed)
    points = (100, 500, 990, 1000, 1990, 2990, 9900)
    return [
        rng.choice(points) if rng.random() < 0.45 else rng.randint(10, 30_000)
        for _ in range(size)
    ]


@pytest.mark.parametrize("inclusive", [True, False])
@pytest.mark.parametrize("representative", [True, False])
def test_bands_cover_every_price_once_split_whatever_price_end_means(
    inclusive, representative
):
    prices = catalog_prices(12_000)
    final, gaps, probes = slice_all(prices, inclusive, representative=representative)
    assert gaps == []
    seen = Counter(p for band in final for p in reads(band, prices, inclusive))
    assert set(seen) == set(prices)  # nothing falls between two bands
    assert all(len(reads(band, prices, inclusive)) < CAP for band in final)
    overlap = sum(seen.values()) - len(prices)
    if not inclusive:
        assert overlap == 0  # an exclusive end makes an exact partition
    assert overlap < 0.02 * len(prices)  # cuts avoid the popular prices
    assert probes <= 12


@pytest.mark.parametrize("inclusive", [True, False])
def test_a_price_point_over_the_cap_is_one_gap_and_the_rest_is_covered(inclusive):
    prices = catalog_prices(5_000) + [990] * 2_500
    final, gaps, probes = slice_all(prices, inclusive)
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.band.start == 990 and gap.band.end in (990, 991)
    assert gap.count == CAP and "one price point" in gap.reason
    covered = {p for band in final for p in reads(band, prices, inclusive)}
    assert covered == set(prices) - {990}
    assert probes < 15


def test_the_users_range_is_the_outer_bound_sent_as_given():
    query = CategoryQuery(cat_id=5, price_start="1.5", price_end="30")
    band = Band.whole(query)
    assert (band.start, band.end) == (150, 3000)
    children = plan_split(band, CAP, [200, 300, 990, 1000, 2500, 2990], ways=WAYS)
    assert isinstance(children, list)
    assert children[0].start == 150 and children[-1].end == 3000
    assert children[-1].shared_end is False
    assert all(a.end == b.start for a, b in itertools.pairwise(children))
    sent = children[0].query(query).filters()
    assert sent["price_start"] == "1.5"


def test_cuts_follow_the_sample_one_fen_above_a_seen_price():
    sample = [100] * 5 + [990] * 5 + [1990] * 5 + [5000] * 5
    children = plan_split(Band("r"), CAP, sample, ways=WAYS)
    assert [child.start for child in children[1:]] == [101, 991, 1991]
    assert children[-1].end is None


def test_an_item_priced_at_the_end_proves_inclusive_and_stops_the_overlap():
    band = Band("r", 0, 1000, shared_end=True)
    children = plan_split(band, CAP, [100, 400, 700, 1000, 1000], ways=WAYS)
    assert all(child.inclusive for child in children)
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(children))
    assert children[-1].end == 999  # 10.00 belongs to the next band already


def test_single_points_filter_ignored_and_depth_are_gaps_not_loops():
    point = plan_split(Band("r", 990, 991, shared_end=True), CAP, [990] * 20, ways=WAYS)
    assert isinstance(point, Gap) and point.count == CAP
    ignored = plan_split(Band("r", 100, 200), CAP, [5000] * 20, ways=WAYS)
    assert isinstance(ignored, Gap) and "ignored" in ignored.reason
    deep = plan_split(
        Band("r", 0, 10_000, depth=3), CAP, [5] * 20, max_depth=3, ways=WAYS
    )
    assert isinstance(deep, Gap) and "3 splits" in deep.reason


def test_bands_travel_in_meta_unchanged():
    band = Band("cat_id=5&language=en", 150, 990, True, None, 2)
    assert Band.from_meta(band.to_meta()) == band


def test_prices_in_fen_and_settings_checked():
    assert [to_fen(x) for x in ("9.90", "0.01", 12, "x", None, "-1")] == [
        990,
        1,
        1200,
        None,
        None,
        None,
    ]
    good = {"TMAPI_SPLIT": None, "TMAPI_RESULT_CAP": 2000, "TMAPI_SPLIT_WAYS": 4}
    assert settings_problems(good) == []
    bad = {"TMAPI_SPLIT": "weight", "TMAPI_RESULT_CAP": "0", "TMAPI_SPLIT_WAYS": 1}
    assert [p.split("=")[0] for p in settings_problems(bad)] == [
        "TMAPI_SPLIT",
        "TMAPI_RESULT_CAP",
        "TMAPI_SPLIT_WAYS",
    ]
