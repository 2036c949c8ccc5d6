"""The figures behind the progress line and the summary."""

from __future__ import annotations

import pytest

from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.contract.cost import CallCost
from tmapi_crawler.contract.pagination import CrawlProgress
from tmapi_crawler.contract.report import run_figures


def crawl_progress() -> CrawlProgress:
    progress = CrawlProgress()
    a = progress.category(CategoryQuery(cat_id=1))
    a.total_count, a.planned, a.done, a.failed = 45, 3, {1, 2}, {3: "422"}
    a.calls, a.retries, a.delivered, a.duplicates = 4, 1, 38, 2
    b = progress.category(CategoryQuery(cat_id=2, language="zh"))
    b.total_count, b.planned, b.end, b.done = 2000, 100, 5, {1, 2}
    b.calls, b.delivered, b.invalid = 2, 40, 1
    return progress


def test_figures_add_up_per_category_and_in_total():
    stats = {"tmapi/calls": 8, "tmapi/response/200": 6, "tmapi/response/503": 2}
    figures = run_figures(crawl_progress(), stats, elapsed=10.0, result_cap=2000)
    a, b = figures.rows
    assert (a.pages, a.done, a.failed, a.left) == (3, 2, 1, 0)
    assert (b.pages, b.left, b.capped) == (5, 3, True)  # cut at the last page
    total = figures.total
    assert (total.pages, total.done, total.failed, total.left) == (8, 4, 1, 3)
    assert (total.items, total.duplicates, total.invalid) == (78, 2, 1)
    assert (total.calls, total.retries, total.total_count) == (6, 1, 2045)
    assert figures.share_503 == 0.25
    assert figures.eta == pytest.approx(3 / (5 / 10.0))
    line = figures.progress_line()
    assert line == (
        "pages 4/8 done, 1 failed | items 78 | calls 8, retries 1, 503 25.0% "
        "| ETA 0:00:06"
    )
    with_cost = run_figures(
        crawl_progress(), stats, 10.0, CallCost.parse("2 JPY"), result_cap=2000
    )
    assert with_cost.progress_line().endswith("| cost ~16 JPY")
