"""The catalog store as safe as the feeds: real crawls killed with SIGKILL and
resumed (``JOBDIR``), Redis workers killed mid-batch, a store that stays away
at the end; each checked by exact sets: the feed's items, the observations,
the items table and the changes, each once."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, json_lines, run_crawl
from tests.crawls.test_distributed import start_worker
from tests.crawls.test_resume import settled, start_crawl, wait_until
from tests.crawls.test_store import tmapi_store
from tests.servers import s3_settings
from tests.terminal import on_a_terminal
from tmapi_crawler.feeds.feedfile import read_items
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.store.db import open_store

SIZES = {41: 300, 42: 190}  # 30 + 19 pages of 10
ARGUMENTS = {"cat_id": "41,42", "page_size": "10"}


def listing(day: int) -> dict[int, Decimal]:
    catalog = Catalog(0, SIZES, day=day)
    return {p.item_id: p.price for cat in SIZES for p in catalog.products(cat)}


def expected_changes(
    before: dict[int, Decimal],
    after: dict[int, Decimal],
    earlier: dict[int, Decimal] | None = None,
) -> dict[str, set[int]]:
    """What a complete crawl of *after* makes against a store whose last
    complete crawl saw *before*, and an *earlier* one before that."""
    known = set(before) | set(earlier or ())
    return {
        "new": set(after) - known,
        "price": {i for i in set(before) & set(after) if before[i] != after[i]},
        "gone": set(before) - set(after),
        "back": (known - set(before)) & set(after),
    }


def changes_by_kind(records: list[dict[str, Any]]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {k: set() for k in ("new", "price", "gone", "back")}
    for record in records:
        assert record["item_id"] not in found[record["change"]], record  # once
        found[record["change"]].add(record["item_id"])
    return found


def crawl_whole_day(simulator, tmp_path: Path, store: str, day: int, name: str):
    sim = simulator(size=[f"{c}={n}" for c, n in SIZES.items()], day=day)
    return run_crawl(
        tmp_path,
        sim.url,
        ARGUMENTS,
        {"TMAPI_STORE": store},
        output_name=f"{name}.jsonl",
    )


class ChangesFeed:
    """Where a crawl's changes feed goes, and what it holds (None: nothing)."""

    def __init__(self, request: Any, tmp_path: Path, on_s3: bool) -> None:
        self.settings: dict[str, Any] = {}
        self.path = tmp_path / "day1.changes.jsonl"
        self.s3: Any = None
        if on_s3:
            server = request.getfixturevalue("s3_server")()
            self.s3 = server.client()
            self.s3.create_bucket(Bucket="tmapi-changes")
            self.settings = s3_settings(server.url)
        self.settings["TMAPI_CHANGES_FEED"] = (
            "s3://tmapi-changes/day1.changes.jsonl" if on_s3 else str(self.path)
        )

    def records(self) -> list[dict[str, Any]] | None:
        if self.s3 is None:
            return json_lines(self.path) if self.path.exists() else None
        try:
            got = self.s3.get_object(Bucket="tmapi-changes", Key="day1.changes.jsonl")
        except self.s3.exceptions.NoSuchKey:
            return None
        return [json.loads(line) for line in got["Body"].read().splitlines()]


@pytest.fixture(params=["sqlite, file feed", "postgresql, S3 feed"])
def store_and_feed(request, tmp_path) -> tuple[str, ChangesFeed]:
    if request.param.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/catalog.sqlite", ChangesFeed(
            request, tmp_path, on_s3=False
        )
    return request.getfixturevalue("postgres"), ChangesFeed(
        request, tmp_path, on_s3=True
    )


def test_three_sigkills_lose_no_observation_and_none_is_written_twice(
    simulator, store_and_feed, tmp_path
):
    store_uri, changes_feed = store_and_feed
    day0, day1 = listing(0), listing(1)
    assert crawl_whole_day(simulator, tmp_path, store_uri, 0, "day0").returncode == 0

    # day 1 as a job, killed three times: before the first batch is written
    # (a batch is 100 observations, 10 pages), mid-crawl, and late
    sim = simulator(size=[f"{c}={n}" for c, n in SIZES.items()], day=1, latency=0.05)
    jobdir, output, log = tmp_path / "job", tmp_path / "day1.jsonl", tmp_path / "log"
    settings = {"TMAPI_STORE": store_uri, "TMAPI_STORE_BATCH": 100,
                **changes_feed.settings}  # fmt: skip
    arguments = ARGUMENTS

    def crawl() -> Any:
        return start_crawl(sim.url, jobdir, output, log, arguments, settings=settings)

    for moment in (3, 25, 44):
        running = crawl()
        wait_until(running, lambda moment=moment: settled(jobdir) >= moment)
        running.send_signal(signal.SIGKILL)
        running.wait()
    assert changes_feed.records() is None  # written by the run that ends the job
    assert crawl().wait(120) == 0, log.read_text()[-3000:]

    delivered = Counter(item["item_id"] for item in read_items(output))
    assert set(delivered) == set(day1) and max(delivered.values()) == 1
    store = open_store(store_uri)
    runs = store.runs()
    assert len(runs) == 2  # day 0's, and the job's one run, every kill included
    job = runs[-1]
    assert job["finished_at"] and job["finish_reason"] == "finished"
    observed = store.query(
        "SELECT item_id FROM observations WHERE run_id = ?", (job["run_id"],)
    )
    assert Counter(row["item_id"] for row in observed) == delivered  # each once
    items = store.query("SELECT item_id, last_run, gone_at FROM items")
    seen = {row["item_id"] for row in items if row["last_run"] == job["run_id"]}
    assert seen == set(day1)
    # the job's changes, gone included: judged from every run's pages
    made = changes_by_kind(store.changes(job["run_id"]))
    store.close()
    assert made == expected_changes(day0, day1)
    assert changes_by_kind(changes_feed.records() or []) == made
    text = log.read_text()
    assert "not judged which listings are gone" not in text
    assert "written again (the store takes each once a run)" in text

    # the same command once more: the job's run, finished, stays as it was
    assert crawl().wait(120) == 0
    store = open_store(store_uri)
    assert store.runs()[-1]["run_id"] == job["run_id"] and len(store.runs()) == 2
    assert changes_by_kind(store.changes(job["run_id"])) == made
    store.close()
    assert changes_by_kind(changes_feed.records() or []) == made

    # the next day's crawl finds exactly what changed since day 1
    result = crawl_whole_day(simulator, tmp_path, store_uri, 2, "day2")
    assert result.returncode == 0
    store = open_store(store_uri)
    day2_run = store.runs()[-1]["run_id"]
    assert changes_by_kind(store.changes(day2_run)) == expected_changes(
        day1, listing(2), earlier=day0
    )
    store.close()


def observation_count(url: str) -> int:
    try:
        store = open_store(url)
    except Exception:  # not created yet
        return 0
    try:
        return int(store.query("SELECT COUNT(*) AS n FROM observations")[0]["n"])
    finally:
        store.close()


def test_a_store_away_at_the_end_exits_5_and_its_file_loads_once(
    simulator, postgres_server, tmp_path
):
    url = postgres_server.database()
    day0, day1 = listing(0), listing(1)
    assert crawl_whole_day(simulator, tmp_path, url, 0, "day0").returncode == 0
    sim = simulator(size=[f"{c}={n}" for c, n in SIZES.items()], day=1, latency=0.1)
    rescue = tmp_path / "unstored"
    settings = {"TMAPI_STORE": url, "TMAPI_STORE_BATCH": 20,
                "TMAPI_STORE_CLOSE_TIMEOUT": 1,
                "TMAPI_FEED_RESCUE_DIR": str(rescue)}  # fmt: skip
    output, log = tmp_path / "day1.jsonl", tmp_path / "day1.log"
    running = start_crawl(sim.url, None, output, log, ARGUMENTS, settings=settings)
    wait_until(running, lambda: observation_count(url) > len(day0))
    postgres_server.stop()
    assert running.wait(120) == 5  # observations not delivered to the store
    text = log.read_text()
    [kept] = rescue.glob("store-*.jsonl")
    assert f"tmapi-store load {kept}" in text
    assert "Next: The catalog store did not take" in text
    summary = json.loads((tmp_path / "day1.summary.json").read_text())
    assert summary["exit_code"] == 5
    assert summary["store_unstored"]["file"] == str(kept)
    assert summary["store_unstored"]["run_closed"] is False
    assert len(list(read_items(output))) == len(day1)  # the feed has them all

    postgres_server.start()
    # on a terminal, as a user runs it: its progress drawn to the last batch
    command = [sys.executable, "-m", "tmapi_crawler.store", "--store", url,
               "load", str(kept)]  # fmt: skip
    code, screen, stdout = on_a_terminal(command, ROOT)
    assert code == 0, screen[-3000:]
    loaded = sum(1 for line in kept.open() if '"close"' not in line)
    assert re.search(rf"load: observations .* {loaded}/{loaded}", screen), screen
    first = stdout.decode()
    store = open_store(url)
    runs = store.runs()
    day1_run = runs[-1]["run_id"]
    assert runs[-1]["observations"] == len(day1) and runs[-1]["finished_at"]
    made = store.changes(day1_run)
    # as if the store had taken it all in time: gone judged too
    assert changes_by_kind(made) == expected_changes(day0, day1)
    second = tmapi_store(url, "load", str(kept))
    assert store.runs() == runs and store.changes(day1_run) == made
    store.close()
    assert "0 new, 0 price changes, 0 gone, 0 back made now" in second
    assert "0 new, 0 price changes, 0 gone, 0 back" not in first


def test_a_redis_worker_killed_mid_batch_loses_no_observation(
    simulator, redis_factory, postgres, tmp_path
):
    sizes = {41: 300}
    sim = simulator(size="41=300", latency=0.2)
    server = redis_factory()
    # a batch of 60 holds 6 pages: the victim dies holding delivered pages
    # whose observations the store has not committed
    settings = {"TMAPI_STORE": postgres, "TMAPI_STORE_BATCH": 60,
                "TMAPI_LEASE_SECONDS": 3}  # fmt: skip
    arguments = {"cat_id": 41, "page_size": 10}
    workers = [
        start_worker(tmp_path, n, sim.url, server.url, arguments, settings)
        for n in range(3)
    ]
    victim = workers[0]
    deadline = time.monotonic() + 60
    while len(_lines(victim.output)) < 25:  # in its feed, not in the store
        assert time.monotonic() < deadline and victim.process.poll() is None
        time.sleep(0.02)
    victim.process.send_signal(signal.SIGKILL)
    victim.wait()
    assert [worker.wait() for worker in workers[1:]] == [0, 0]
    expected = {p.item_id for p in Catalog(0, sizes).products(41)}
    store = open_store(postgres)
    [run] = store.runs()
    observed = store.query(
        "SELECT item_id FROM observations WHERE run_id = ?", (run["run_id"],)
    )
    store.close()
    counted = Counter(row["item_id"] for row in observed)
    assert set(counted) == expected and max(counted.values()) == 1


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.endswith("}")]
