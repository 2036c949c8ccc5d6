"""Many ``scrapy crawl`` workers on one crawl through a real Redis and simulator."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SENTINEL_TOKEN, stat
from tests.crawlers import DOCUMENTED_PAGES
from tmapi_crawler.simulator.catalog import Catalog

pytestmark = pytest.mark.timeout(120)

FAST = {"TMAPI_IDLE_CLOSE": 1, "CONCURRENT_REQUESTS": 4, "TMAPI_POLL_INTERVAL": 0.05}


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _stop_workers_left_running():
    """A failed test leaves no worker behind."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path
    output: Path

    def wait(self, timeout: float = 90) -> int:
        return self.process.wait(timeout=timeout)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def calls(self) -> int:
        found = re.search(r"'tmapi/calls': (\d+)", self.log)
        return int(found.group(1)) if found else 0

    @property
    def items(self) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        lines = self.output.read_text(encoding="utf-8").splitlines()
        items = []
        for line in lines:
            # a killed worker's last line may be cut short
            with contextlib.suppress(json.JSONDecodeError):
                items.append(json.loads(line))
        return items


def start_worker(
    workdir: Path,
    number: int,
    sim_url: str,
    redis_url: str,
    arguments: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    spider: str = "category",
    token: str = SENTINEL_TOKEN,
) -> Worker:
    output = workdir / f"worker-{number}.jsonl"
    log_path = workdir / f"worker-{number}.log"
    command = [sys.executable, "-m", "scrapy", "crawl", spider, "-O", str(output)]
    for name, value in (arguments or {}).items():
        command += ["-a", f"{name}={value}"]
    merged = {"TMAPI_BASE_URL": sim_url, **FAST, **DOCUMENTED_PAGES, **(settings or {})}
    for name, value in merged.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, "TMAPI_TOKEN": token, "REDIS_URL": redis_url}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    STARTED.append(process)
    return Worker(process, log_path, output)


def expected_items(sizes: dict[int, int], **query: Any) -> dict[int, set[int]]:
    catalog = Catalog(seed=0, sizes=sizes)
    return {
        cat_id: {p.item_id for p in catalog.expected(cat_id, **query)}
        for cat_id in sizes
    }


def pages_called(sim) -> Counter:
    return Counter((c["cat_id"], c["page"]) for c in sim.calls())


def wait_for_calls(sim, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(sim.calls()) < count:
        assert time.monotonic() < deadline, "the crawl did not get going"
        time.sleep(0.02)


class RedisWatcher(threading.Thread):
    """Reads every key and value of the Redis again and again during a crawl."""

    def __init__(self, server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.snapshots: list[bytes] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(Exception):  # a restart: look again
                self.snapshots.append(self.server.dump())
            time.sleep(0.05)

    def stop(self) -> list[bytes]:
        self.done.set()
        self.join()
        return self.snapshots


def test_three_workers_share_one_crawl_every_page_once(
    simulator, redis_factory, tmp_path
):
    sizes = {51: 1200, 52: 1000, 53: 800}  # 60 + 50 + 40 pages
    # slow enough calls that the crawl outlasts the workers' staggered start
    sim = simulator(size=[f"{c}={n}" for c, n in sizes.items()], latency=0.5)
    server = redis_factory()
    watcher = RedisWatcher(server)
    watcher.start()
    workers = [
        start_worker(tmp_path, n, sim.url, server.url, {"cat_id": "51,52,53"})
        for n in range(3)
    ]
    codes = [worker.wait() for worker in workers]
    snapshots = watcher.stop()
    assert codes == [0, 0, 0], workers[0].log[-3000:]

    called = pages_called(sim)
    assert set(called) == {
        (cat, page) for cat, n in sizes.items() for page in range(1, n // 20 + 1)
    }
    assert max(called.values()) == 1  # each page once, over all workers

    delivered = [item for worker in workers for item in worker.items]
    for cat_id, ids in expected_items(sizes).items():
        got = [i["item_id"] for i in delivered if i["cat_id"] == cat_id]
        assert sorted(got) == sorted(ids)  # every item, once

    # Each worker asked for the three first pages; two of three were filtered.
    filtered = [re.search(r"'dupefilter/filtered': (\d+)", w.log) for w in workers]
    assert sum(int(found.group(1)) for found in filtered if found) == 6

    split = [worker.calls for worker in workers]
    print(f"pages per worker: {split}")
    assert sum(split) == len(called)
    assert min(split) >= len(called) / 4, split

    # The token went into no key or value, while queued requests were there.
    assert any(b'"cat_id"' in snapshot for snapshot in snapshots)
    assert not any(SENTINEL_TOKEN.encode() in snapshot for snapshot in snapshots)
    assert SENTINEL_TOKEN.encode() not in server.dump()
    for worker in workers:
        assert SENTINEL_TOKEN not in worker.log
        assert "ScrapyDeprecationWarning" not in worker.log


def test_a_rerun_of_a_finished_crawl_starts_afresh(simulator, redis_factory, tmp_path):
    sim = simulator(size="54=60")
    server = redis_factory()
    first = start_worker(tmp_path, 0, sim.url, server.url, {"cat_id": "54"})
    assert first.wait() == 0, first.log[-3000:]
    again = start_worker(tmp_path, 1, sim.url, server.url, {"cat_id": "54"})
    assert again.wait() == 0, again.log[-3000:]
    assert len({i["item_id"] for i in again.items}) == 60
    assert pages_called(sim) == Counter({(54, 1): 2, (54, 2): 2, (54, 3): 2})


def enqueue(redis_url: str, *jobs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tmapi_crawler.distributed.jobs",
            "--redis-url",
            redis_url,
            *jobs,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_redis_fed_workers_crawl_the_queued_jobs_and_skip_bad_ones(
    simulator, redis_factory, tmp_path
):
    sizes = {61: 300, 62: 200, 63: 100}
    sim = simulator(size=[f"{c}={n}" for c, n in sizes.items()], latency=0.05)
    server = redis_factory()
    good = [
        '{"cat_id": 61, "language": "en", "sort": "sales", "price_start": "1"}',
        '{"cat_id": "62,63", "language": "ja"}',
    ]
    refused = enqueue(server.url, *good, '{"cat_id": 64, "sort": "newest"}')
    assert refused.returncode == 2
    assert "job 3" in refused.stderr and "sort='newest'" in refused.stderr
    assert server.client().dbsize() == 0  # nothing reached the queue

    assert enqueue(server.url, *good).returncode == 0
    jobs_key = "tmapi:category_jobs:jobs"
    server.client().rpush(jobs_key, '{"cat_id": "x1"}', "not json")  # past the check
    workers = [
        start_worker(tmp_path, n, sim.url, server.url, spider="category_jobs")
        for n in range(2)
    ]
    codes = [worker.wait() for worker in workers]
    assert codes == [0, 0], workers[0].log[-3000:]
    logs = "".join(worker.log for worker in workers)
    assert 'Skipped a bad job {"cat_id": "x1"}' in logs
    assert "Skipped a bad job not json" in logs

    delivered = [item for worker in workers for item in worker.items]
    sales = expected_items({61: 300}, sort="sales", price_start=Decimal("1"))[61]
    assert sorted(i["item_id"] for i in delivered if i["cat_id"] == 61) == sorted(sales)
    for cat_id in (62, 63):
        got = [i for i in delivered if i["cat_id"] == cat_id]
        assert {i["language"] for i in got} == {"ja"}
        assert sorted(i["item_id"] for i in got) == sorted(
            expected_items(sizes)[cat_id]
        )
    assert max(pages_called(sim).values()) == 1


def test_a_worker_killed_mid_crawl_loses_nothing(simulator, redis_factory, tmp_path):
    sizes = {71: 1600, 72: 1200}  # 80 + 60 pages
    sim = simulator(size=[f"{c}={n}" for c, n in sizes.items()], latency=0.1)
    server = redis_factory()
    settings = {"TMAPI_LEASE_SECONDS": 3}
    workers = [
        start_worker(tmp_path, n, sim.url, server.url, {"cat_id": "71,72"}, settings)
        for n in range(3)
    ]
    wait_for_calls(sim, 30)
    victim = workers[0]
    victim.process.send_signal(signal.SIGKILL)
    killed_at = time.time()
    assert victim.wait() == -signal.SIGKILL
    codes = [worker.wait() for worker in workers[1:]]
    assert codes == [0, 0], workers[1].log[-3000:]

    delivered = {item["item_id"] for worker in workers for item in worker.items}
    for ids in expected_items(sizes).values():
        assert ids <= delivered  # every item, the killed worker's output included
    called = pages_called(sim)
    assert set(called) == {
        (cat, page) for cat, n in sizes.items() for page in range(1, n // 20 + 1)
    }
    twice = [page for page, count in called.items() if count > 1]
    # only what it had taken: twice as many leases as calls in flight
    assert len(twice) <= 2 * FAST["CONCURRENT_REQUESTS"]
    redone = [
        c["t"] for c in sim.calls() if (c["cat_id"], c["page"]) in twice
    ]  # both calls of each page fetched twice
    if twice:
        print(
            f"recovered {len(twice)} pages {max(redone) - killed_at:.1f} s after kill"
        )
    assert "Re-queued" in "".join(worker.log for worker in workers[1:]) or not twice


def test_workers_ride_out_a_redis_restart(simulator, redis_factory, tmp_path):
    sizes = {81: 1600, 82: 1200}
    sim = simulator(size=[f"{c}={n}" for c, n in sizes.items()], latency=0.1)
    server = redis_factory(appendonly=True)
    workers = [
        start_worker(tmp_path, n, sim.url, server.url, {"cat_id": "81,82"})
        for n in range(2)
    ]
    for worker in workers:  # both past their start (which needs Redis) first
        wait_for_log(worker, "Spider opened")
    wait_for_calls(sim, 20)
    server.restart(down_for=2)
    codes = [worker.wait() for worker in workers]
    assert codes == [0, 0], "\n".join(w.log[-3000:] for w in workers if w.wait())
    logs = "".join(worker.log for worker in workers)
    assert "is unavailable" in logs and "is back after" in logs

    delivered = [item for worker in workers for item in worker.items]
    for cat_id, ids in expected_items(sizes).items():
        got = [i["item_id"] for i in delivered if i["cat_id"] == cat_id]
        assert sorted(got) == sorted(ids)
    assert max(pages_called(sim).values()) == 1

    # Everything Redis ever stored went through its append-only file.
    written = b"".join(
        path.read_bytes() for path in server.directory.rglob("*") if path.is_file()
    )
    assert b'"cat_id"' in written
    assert SENTINEL_TOKEN.encode() not in written


def test_an_interrupted_crawl_resumes_where_it_stopped(
    simulator, redis_factory, tmp_path
):
    sim = simulator(size="55=1600", latency=0.1)  # 80 pages
    server = redis_factory()
    first = start_worker(tmp_path, 0, sim.url, server.url, {"cat_id": "55"})
    wait_for_calls(sim, 20)
    first.process.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop
    assert first.wait() == 4, first.log[-3000:]  # stopped before the end
    assert len(sim.calls()) < 80
    rest = start_worker(tmp_path, 1, sim.url, server.url, {"cat_id": "55"})
    assert rest.wait() == 0, rest.log[-3000:]

    called = pages_called(sim)
    assert called == Counter({(55, page): 1 for page in range(1, 81)})
    delivered = [i["item_id"] for i in first.items + rest.items]
    assert sorted(delivered) == sorted(expected_items({55: 1600})[55])


def test_a_daemon_worker_waits_for_jobs(simulator, redis_factory, tmp_path):
    sim = simulator(size="65=60")
    server = redis_factory()
    worker = start_worker(
        tmp_path,
        0,
        sim.url,
        server.url,
        settings={"TMAPI_DAEMON": True, "TMAPI_IDLE_CLOSE": 0.2},
        spider="category_jobs",
    )
    try:
        wait_for_log(worker, "Distributed crawl")
        time.sleep(1)  # idle for five times TMAPI_IDLE_CLOSE: still there
        assert worker.process.poll() is None, worker.log[-3000:]
        assert enqueue(server.url, '{"cat_id": 65}').returncode == 0
        deadline = time.monotonic() + 60
        while len(worker.items) < 60:
            assert time.monotonic() < deadline, worker.log[-3000:]
            time.sleep(0.1)
    finally:
        worker.process.send_signal(signal.SIGINT)
        worker.wait()
    assert len({i["item_id"] for i in worker.items}) == 60


def wait_for_log(worker: Worker, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log:
        assert worker.process.poll() is None, worker.log[-3000:]
        assert time.monotonic() < deadline, worker.log[-3000:]
        time.sleep(0.05)


def test_the_jobs_spider_refuses_to_start_without_redis(tmp_path):
    env = {**os.environ, "TMAPI_TOKEN": SENTINEL_TOKEN}
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "scrapy", "crawl", "category_jobs"]
    result = subprocess.run(
        [*command, "-a", "cat_id=5"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "category_jobs takes no arguments" in result.stderr
    assert "needs Redis: set REDIS_URL" in result.stderr


def test_a_bad_redis_url_stops_the_run_before_any_call(simulator, crawl):
    sim = simulator()
    result = crawl(sim.url, {"cat_id": "5"}, {"REDIS_URL": "http://127.0.0.1:1/0"})
    assert result.returncode == 2
    assert "REDIS_URL='http://127.0.0.1:1/0'" in result.log
    assert sim.calls() == []


def test_pages_not_sent_when_the_crawl_stopped_wait_for_the_resumed_crawl(
    simulator, redis_factory, tmp_path
):
    sim = simulator(size="56=300", token=SENTINEL_TOKEN)
    server = redis_factory()
    wrong = start_worker(
        tmp_path, 0, sim.url, server.url, {"cat_id": "56"}, token="wrong-token"
    )
    assert wrong.wait() == 4, wrong.log[-3000:]  # stopped: tmapi_bad_token
    assert "tmapi_bad_token" in wrong.log
    right = start_worker(tmp_path, 1, sim.url, server.url, {"cat_id": "56"})
    assert right.wait() == 0, right.log[-3000:]
    assert len({i["item_id"] for i in right.items}) == 300
    answered = [(c["page"], c["status"]) for c in sim.calls()]
    assert sorted(answered) == sorted([(1, 401)] + [(p, 200) for p in range(1, 16)])


@pytest.mark.parametrize("cap_answer", ["at-once", "after-latency"])
def test_workers_on_one_token_share_one_window_of_the_accounts_limit(
    simulator, redis_factory, tmp_path, cap_answer
):
    """Three workers, one token, an account capped at 4: they probe and hold
    the limit as one process does, each probe costing one 503."""
    sizes = {54: 800, 55: 800, 56: 800}
    sim = simulator(
        size=[f"{c}={n}" for c, n in sizes.items()],
        latency=0.2,
        max_concurrency=4,
        cap_answer=cap_answer,
    )
    server = redis_factory()
    settings = {"CONCURRENT_REQUESTS": 16}
    workers = [
        start_worker(tmp_path, n, sim.url, server.url, {"cat_id": "54,55,56"}, settings)
        for n in range(3)
    ]
    assert [worker.wait() for worker in workers] == [0, 0, 0], workers[0].log[-3000:]
    delivered = [item["item_id"] for worker in workers for item in worker.items]
    assert len(delivered) == len(set(delivered)) == 2400  # every item once
    calls = sim.calls()
    refused = sum(c["status"] == 503 for c in calls)
    probes = sum(stat(w.log, "tmapi/concurrency/probes") for w in workers)
    # (one each, apart from a level proven by an answer read late under load)
    assert refused <= probes and refused <= len(calls) // 10, refused
    # each worker alone could have had 16 in flight; together they held 4
    assert max(c["in_flight"] for c in calls if c["status"] == 200) == 4


def test_workers_on_one_token_learn_one_page_size_and_share_its_queries(
    simulator, redis_factory, tmp_path
):
    sizes = {56: 120, 57: 45}
    # the API refuses 50 a page: the first page 1 asked at 50 costs one 422
    sim = simulator(
        size=[f"{c}={n}" for c, n in sizes.items()], latency=0.2, max_page_size=20
    )
    server = redis_factory()
    probed = {"TMAPI_PAGE_SIZE_PROBE": 50}
    workers = [
        start_worker(tmp_path, n, sim.url, server.url, {"cat_id": "56,57"}, probed)
        for n in range(2)
    ]
    codes = [worker.wait() for worker in workers]
    assert codes == [0, 0], workers[0].log[-3000:]
    calls = sim.calls()
    assert [c["code"] for c in calls].count(422) == 1
    assert Counter((c["cat_id"], c["page"]) for c in calls if c["code"] != 422) == {
        (cat, page): 1 for cat, n in sizes.items() for page in range(1, -(-n // 20) + 1)
    }
    delivered = [item for worker in workers for item in worker.items]
    for cat_id, ids in expected_items(sizes).items():
        got = [i["item_id"] for i in delivered if i["cat_id"] == cat_id]
        assert sorted(got) == sorted(ids)  # every item, once
