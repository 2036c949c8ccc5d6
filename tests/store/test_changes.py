"""What an observation means against the store, and when gone can be said."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from tmapi_crawler.store.changes import (
    Known,
    QueryCrawl,
    cannot_judge,
    classify,
    count,
    merged,
    summary_line,
)

AT = "2026-12-02T10:00:00+00:00"
BEFORE = "2026-12-01T10:00:00+00:00"


def row(item_id: int, price: str | None) -> tuple:
    amount = None if price is None else Decimal(price)
    return (item_id, "en", 5, f"t{item_id}", amount, "CNY", "co", False, 2, 100,
            "https://x", AT)  # fmt: skip


def test_new_price_back_and_unchanged_items():
    known = {
        (2, "en"): Known(Decimal("1.50"), BEFORE, None),
        (3, "en"): Known(Decimal("2.00"), BEFORE, None),
        (4, "en"): Known(Decimal("9.90"), BEFORE, BEFORE),
    }
    changes = classify(
        [row(1, "5.00"), row(2, "1.5"), row(3, "2.10"), row(4, "9.90")], known
    )
    assert [(c.change, c.item_id) for c in changes] == [
        ("new", 1),
        ("price", 3),
        ("back", 4),
    ]  # 1.5 is 1.50: no change
    price = changes[1].as_dict()
    assert (price["old_price"], price["new_price"]) == ("2.00", "2.10")
    assert (price["first_seen"], price["last_seen"]) == (BEFORE, AT)
    assert changes[0].as_dict()["old_price"] is None  # new only, whatever its price
    assert summary_line(count(changes)) == "1 new, 1 price changes, 0 gone, 1 back"


def test_the_same_item_in_another_language_is_another_listing():
    known = {(1, "zh"): Known(Decimal("5.00"), BEFORE, None)}
    assert [c.change for c in classify([row(1, "6.00")], known)] == ["new"]


COMPLETE = QueryCrawl(
    query="cat_id=5&language=en",
    cat_id=5,
    language="en",
    label="category 5 (en)",
    whole_category=True,
    bands={"cat_id=5&language=en": 120},
    gaps=(),
    failed_pages=0,
    delivered=120,
)


def test_only_a_complete_crawl_of_a_whole_category_can_tell_what_is_gone():
    assert cannot_judge(COMPLETE, "finished") is None
    assert "stopped early (shutdown)" in cannot_judge(COMPLETE, "shutdown")
    for change, words in (
        ({"failed_pages": 1}, "1 page(s) failed"),
        ({"gaps": ("price 0..: at the result cap",)}, "at the result cap"),
        ({"whole_category": False}, "filters"),
        ({"delivered": 100}, "only 100 of the 120"),
        ({"bands": {}, "delivered": 0}, "only 0 of the 0"),
    ):
        why = cannot_judge(replace(COMPLETE, **change), "finished")
        assert why is not None and words in why, (change, why)


def test_the_shares_of_several_processes_make_one_crawl():
    bands = {"band a": 70, "band b": 50}
    first = replace(COMPLETE, bands={"band a": 70}, delivered=70)
    second = replace(COMPLETE, bands=bands, delivered=50, gaps=("x",))
    crawl = merged([first, second])
    assert (crawl.expected, crawl.delivered, crawl.gaps) == (120, 120, ("x",))
    assert cannot_judge(merged([first, replace(second, gaps=())]), "finished") is None
    assert cannot_judge(merged([first]), "finished") is None  # a band alone
    assert cannot_judge(merged([first, replace(second, delivered=40)]), "finished")
