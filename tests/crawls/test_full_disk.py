"""A feed on a disk that fills up mid-crawl, for real: a 200 KiB tmpfs
mounted for the test (skipped where mounting is not permitted), so the writes
fail with ENOSPC as on a full disk. The file must end with a whole line, the
log say it once, the summary hold what the file holds; with a job directory
the same command, once there is room, completes the file exactly once."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import json_lines
from tmapi_crawler.simulator.catalog import Catalog


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 200 KiB tmpfs of the test's own, unmounted after."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR: " in line]


def test_a_full_disk_without_a_job_directory_is_one_clear_error(
    simulator, crawl, small_disk
):
    sim = simulator(size="78=2000")
    feed = small_disk / "items.jsonl"
    result = crawl(sim.url, {"cat_id": 78}, output_name=None, settings={
        "FEEDS": json.dumps({str(feed): {"format": "jsonlines"}})})  # fmt: skip
    assert result.returncode == 5, result.log[-3000:]
    data = feed.read_bytes()
    assert data.endswith(b"\n")  # never a cut line
    written = json_lines(feed)  # every line whole JSON
    assert 50 < len(written) < 2000
    (error,) = errors(result.log)
    assert str(feed) in error and "No space left on device" in error
    assert f"holds {len(written)} items" in error
    assert f"{2000 - len(written)} were not written" in error
    assert str(small_disk) in error and "JOBDIR" in error
    assert "Traceback" not in result.log
    summary = json.loads((small_disk / "items.summary.json").read_text("utf-8"))
    assert summary["items_exported"] == len(written)
    counts = summary["feed_items"][str(feed)]
    assert (counts["written"], counts["not_written"]) == (
        len(written),
        2000 - len(written),
    )
    assert f"{len(written)} items exported" in result.log
    assert f"Stored jsonlines feed ({len(written)} items)" in result.log


def test_with_a_job_directory_the_same_command_completes_the_file_once(
    simulator, crawl, small_disk, tmp_path
):
    sim = simulator(size="78=2000")
    feed = small_disk / "items.jsonl"
    settings = {"FEEDS": json.dumps({str(feed): {"format": "jsonlines"}}),
                "JOBDIR": str(tmp_path / "job")}  # fmt: skip
    first = crawl(sim.url, {"cat_id": 78}, settings, output_name=None)
    assert first.returncode == 5, first.log[-3000:]
    assert feed.read_bytes().endswith(b"\n") and len(errors(first.log)) == 1
    assert f"JOBDIR={tmp_path / 'job'}" in errors(first.log)[0]
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    second = crawl(sim.url, {"cat_id": 78}, settings, output_name=None)
    assert second.returncode == 0, second.log[-3000:]
    ids = [item["item_id"] for item in json_lines(feed)]
    expected = {p.item_id for p in Catalog(seed=0, sizes={78: 2000}).expected(78)}
    assert len(ids) == len(set(ids)) == 2000 and set(ids) == expected


def test_a_parquet_feed_a_full_disk_stops_is_said_to_hold_nothing(
    simulator, crawl, small_disk
):
    """Without its footer a Parquet file holds nothing a reader opens: the
    run says so (not "2000 items exported") and frees the disk."""
    sim = simulator(size="78=2000")
    feed = small_disk / "items.parquet"
    result = crawl(sim.url, {"cat_id": 78}, output_name=None, settings={
        "FEEDS": json.dumps({str(feed): {"format": "parquet"}})})  # fmt: skip
    assert result.returncode == 5, result.log[-3000:]
    (error,) = errors(result.log)
    assert str(feed) in error and "holds 0 items" in error
    assert "2000 were not written" in error
    assert feed.stat().st_size == 0 and "Traceback" not in result.log
    summary = json.loads((small_disk / "items.summary.json").read_text("utf-8"))
    assert summary["items_exported"] == 0
