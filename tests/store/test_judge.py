"""The store's judgement of a page's listings, for the details they get."""

from __future__ import annotations

from tmapi_crawler.store.judge import judged

RUN = "run-1"


def row(price="1.00", gone_at=None, last_run="run-0"):
    return {"price": price, "gone_at": gone_at, "last_run": last_run}


def test_the_stores_rule_new_back_price():
    assert judged(None, "1.00", RUN, None) == "new"
    assert judged(row(gone_at="2026-01-01"), "1.00", RUN, None) == "back"
    assert judged(row(price="1.00"), "1.10", RUN, None) == "price"
    assert judged(row(price="1.00"), "1.0", RUN, None) is None  # the same number
    assert judged(row(price=None), "1.00", RUN, None) == "price"


def test_a_listing_this_run_wrote_is_judged_by_what_the_store_said_then():
    written = row(price="1.10", last_run=RUN)  # its pre-run state is gone
    assert judged(written, "1.10", RUN, "price") == "price"
    assert judged(written, "1.10", RUN, "new") == "new"
    assert judged(written, "1.10", RUN, None) is None
    assert judged(written, "1.10", None, None) is None  # no run: the row as it is
