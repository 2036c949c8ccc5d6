"""Coverage: what each category reached, bands and gaps, its ids counted once."""

from __future__ import annotations

from tmapi_crawler.contract.coverage import CategoryCoverage, CoverageReport
from tmapi_crawler.contract.slicing import Band, Gap

CAP = 2000


def test_coverage_sums_bands_and_says_what_is_missing():
    report = CoverageReport()
    entry = report.category("k", 5, "category 5 (en)")
    entry.bands.update({"a": 1500, "b": 900})
    entry.band_items, entry.deliveries = 2400, 2420
    entry.item_ids.update(str(n) for n in range(2400))
    assert entry.summary()["complete"] is True
    assert entry.summary()["duplicates"] == 20
    entry.gaps.append(Gap(Band("k", 990, 991), CAP, "one price point"))
    summary = report.summaries()["k"]
    assert summary["complete"] is False
    assert summary["gaps"] == [
        {
            "price_start": "9.9",
            "price_end": "9.91",
            "count": CAP,
            "reason": "one price point",
        }
    ]
    stats = report.stats()
    assert stats["tmapi/coverage/expected"] == 2400
    assert stats["tmapi/coverage/gap_count"] == CAP
    assert "gap: price 9.9..9.91 holds 2000+ items" in "\n".join(report.lines())


def test_a_category_lets_its_ids_go_once_every_page_it_asked_for_is_in():
    entry = CategoryCoverage(5, "category 5 (en)")
    entry.asked()  # page 1
    entry.item_ids.update([1, 2, 3])
    entry.asked(), entry.asked()  # page 1 plans pages 2 and 3
    entry.settled()  # page 1 done
    entry.item_ids.update([3, 4])
    entry.settled()  # page 2
    assert entry.distinct == 4 and len(entry.item_ids) == 4
    entry.item_ids.update([5])
    entry.settled()  # page 3: the last page asked for
    assert entry.distinct == 5
    assert len(entry.item_ids) == 0  # let go: the count is final


def test_a_category_that_gets_another_workers_pages_keeps_its_ids():
    entry = CategoryCoverage(5, "category 5 (en)")
    entry.item_ids.update([1, 2])
    entry.settled()  # a page this process never asked for
    entry.asked()
    entry.item_ids.update([2, 3])
    entry.settled()
    assert entry.shared and entry.distinct == 3 and len(entry.item_ids) == 3
