"""The run summary: where its file goes."""

from __future__ import annotations

from pathlib import Path

from tmapi_crawler.extensions.summary import (
    local_path,
    summary_path_beside,
    without_credentials,
)


def test_the_summary_file_goes_beside_a_local_feed():
    assert local_path("file:///tmp/x/items.jsonl") == Path("/tmp/x/items.jsonl")
    assert local_path("out/a.csv") == Path("out/a.csv")
    assert local_path("s3://bucket/items.jsonl") is None
    beside = summary_path_beside(Path("/tmp/x/items.2026-01-01T10-00.jsonl"))
    assert beside == Path("/tmp/x/items.2026-01-01T10-00.summary.json")
    secret = "s3://AKIAKEY:s3cr3t@bucket/items.jsonl"
    assert without_credentials(secret) == "s3://bucket/items.jsonl"
