"""The run summary: its table, and where its file goes."""

from __future__ import annotations

from pathlib import Path

from tests.contract.test_report import crawl_progress
from tmapi_crawler.contract.report import run_figures
from tmapi_crawler.extensions.summary import (
    local_path,
    summary_path_beside,
    text_table,
    without_credentials,
)


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
