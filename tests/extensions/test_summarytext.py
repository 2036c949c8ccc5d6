"""The run summary in words: its table."""

from __future__ import annotations

from tests.contract.test_report import crawl_progress
from tmapi_crawler.contract.report import run_figures
from tmapi_crawler.extensions.summarytext import text_table


def test_the_text_table_has_a_row_per_category_and_the_totals():
    figures = run_figures(
        crawl_progress(), {"tmapi/calls": 6}, elapsed=1.0, result_cap=2000
    )
    table = text_table([*figures.rows, figures.total], (("done", "done"),))
    assert table.splitlines()[2].split() == ["category", "1", "(en)", "2"]
    assert table.splitlines()[-1].split() == ["total", "4"]
