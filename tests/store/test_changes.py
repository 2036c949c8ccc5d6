"""When gone can be said, and the summary's line (what an observation means
against the store: tests/store/test_db.py, on both databases)."""

from __future__ import annotations

from dataclasses import replace

from tmapi_crawler.store.changes import (
    Change,
    QueryCrawl,
    cannot_judge,
    count,
    merged,
    summary_line,
)

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


def test_the_summary_line_counts_each_kind():
    changes = [Change(kind, n, "en", 5, None, None, None, "a", "b")
               for n, kind in enumerate(("new", "new", "gone", "back"))]  # fmt: skip
    assert summary_line(count(changes)) == "2 new, 0 price changes, 1 gone, 1 back"
    assert count([c.as_dict() for c in changes]) == count(changes)
