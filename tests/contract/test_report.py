"""The figures, costs and settings behind the progress line and the summary."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from scrapy.settings import Settings

from tmapi_crawler import preflight
from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.contract.cost import CallCost, CostError
from tmapi_crawler.contract.operator_settings import max_calls
from tmapi_crawler.contract.pagination import CrawlProgress
from tmapi_crawler.contract.report import run_figures
from tmapi_crawler.extensions.summary import (
    local_path,
    summary_path_beside,
    text_table,
    without_credentials,
)


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [("0.002 USD", "0.002", "USD"), ("1.5eur", "1.5", "EUR"), (" 3 CNY ", "3", "CNY")],
)
def test_a_cost_is_a_number_and_a_currency(text, amount, currency):
    cost = CallCost.parse(text)
    assert (cost.amount, cost.currency) == (Decimal(amount), currency)


@pytest.mark.parametrize("text", ["cheap", "0.002", "USD", "-1 USD", "1.2.3 USD", ""])
def test_anything_else_is_refused_naming_the_setting(text):
    with pytest.raises(CostError, match=r"TMAPI_COST_PER_CALL=.*such as '0.002 USD'"):
        CallCost.parse(text)


def test_costs_are_exact():
    assert CallCost.parse("0.1 USD").format(3) == "0.3 USD"  # not 0.30000000000000004


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


def test_the_text_table_has_a_row_per_category_and_the_totals():
    figures = run_figures(
        crawl_progress(), {"tmapi/calls": 6}, elapsed=1.0, result_cap=2000
    )
    table = text_table([*figures.rows, figures.total], (("done", "done"),))
    assert table.splitlines()[2].split() == ["category", "1", "(en)", "2"]
    assert table.splitlines()[-1].split() == ["total", "4"]


def test_the_summary_file_goes_beside_a_local_feed():
    assert local_path("file:///tmp/x/items.jsonl") == Path("/tmp/x/items.jsonl")
    assert local_path("out/a.csv") == Path("out/a.csv")
    assert local_path("s3://bucket/items.jsonl") is None
    beside = summary_path_beside(Path("/tmp/x/items.2026-01-01T10-00.jsonl"))
    assert beside == Path("/tmp/x/items.2026-01-01T10-00.summary.json")
    secret = "s3://AKIAKEY:s3cr3t@bucket/items.jsonl"
    assert without_credentials(secret) == "s3://bucket/items.jsonl"


def project_settings(values: dict[str, str]) -> Settings:
    """The project's settings with *values* given on the command line, wired
    as a crawler would have them."""
    settings = Settings()
    settings.setmodule("tmapi_crawler.settings", priority="project")
    settings.setdict(values, priority="cmdline")
    return preflight.wired(settings)


def operator_setting_problems(settings: Settings) -> list[str]:
    return preflight.setting_problems(settings)


def test_operator_settings_are_checked_together(monkeypatch):
    monkeypatch.setenv("TMAPI_TOKEN", "a-token")  # the token check is not this test's
    good = project_settings({"TMAPI_MAX_CALLS": "100", "TMAPI_PROGRESS": "off"})
    assert operator_setting_problems(good) == []
    assert max_calls(good) == 100
    superscript = project_settings({"TMAPI_MAX_CALLS": "10²"})  # str.isdigit says yes
    assert operator_setting_problems(superscript) == [
        "TMAPI_MAX_CALLS='10²': must be a whole number of calls, 1 or more"
    ]
    bad = project_settings(
        {
            "TMAPI_MAX_CALLS": "1e3",
            "TMAPI_PROGRESS_INTERVAL": "0",
            "TMAPI_SUMMARY": "maybe",
        }
    )
    problems = operator_setting_problems(bad)
    # each component reports its own settings, in the order they are wired
    assert [p.split("=")[0] for p in problems] == [
        "TMAPI_MAX_CALLS",
        "TMAPI_PROGRESS_INTERVAL",
        "TMAPI_SUMMARY",
    ]
