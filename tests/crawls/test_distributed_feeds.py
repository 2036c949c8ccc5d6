"""Workers of a Redis crawl with S3 feeds: a worker killed mid-crawl loses no
item (its spool is uploaded by a worker that lives on), a Redis restart
changes nothing of that."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT, SENTINEL_TOKEN
from tests.crawlers import DOCUMENTED_PAGES
from tests.crawls.test_distributed import (
    FAST,
    STARTED,
    _stop_workers_left_running,  # noqa: F401 - the autouse fixture
    expected_items,
    pages_called,
    wait_for_calls,
)
from tests.servers import s3_settings

pytestmark = pytest.mark.timeout(150)

BUCKET = "tmapi-items"
SIZES = {73: 600, 74: 400}  # 30 + 20 pages of 20


def start_worker(
    tmp: Path, number: int, sim_url: str, redis_url: str, s3_url: str
) -> subprocess.Popen[bytes]:
    feeds = {f"s3://{BUCKET}/worker-{number}.jsonl": {"format": "jsonlines"}}
    settings = {
        "TMAPI_BASE_URL": sim_url,
        **FAST,
        **DOCUMENTED_PAGES,
        "TMAPI_LEASE_SECONDS": 3,
        "FEEDS": json.dumps(feeds),
        "TMAPI_SPOOL_DIR": tmp / "spool",  # one machine: the workers share it
        "TMAPI_SUMMARY_FILE": tmp / f"worker-{number}.summary.json",
        **s3_settings(s3_url),
    }
    command = [sys.executable, "-m", "scrapy", "crawl", "category"]
    command += ["-a", f"cat_id={','.join(map(str, SIZES))}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, "TMAPI_TOKEN": SENTINEL_TOKEN, "REDIS_URL": redis_url}
    with (tmp / f"worker-{number}.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    STARTED.append(process)
    return process


def spooling(spool: Path) -> int:
    """How many workers have items in their spool."""
    sizes = []
    for part in spool.glob("*/*.part"):
        with contextlib.suppress(FileNotFoundError):  # uploaded meanwhile
            sizes.append(part.stat().st_size)
    return sum(1 for size in sizes if size)


@pytest.mark.parametrize("redis_restart", [False, True])
def test_a_killed_worker_s_spooled_items_reach_the_bucket(
    simulator, redis_factory, s3_server, tmp_path, redis_restart
):
    sim = simulator(size=[f"{c}={n}" for c, n in SIZES.items()], latency=0.1)
    server = redis_factory(appendonly=True)
    s3 = s3_server()
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    workers = [start_worker(tmp_path, n, sim.url, server.url, s3.url) for n in range(3)]
    wait_for_calls(sim, 20)
    deadline = time.monotonic() + 60
    while spooling(tmp_path / "spool") < 3:  # every worker, worker 0 too
        assert time.monotonic() < deadline, "not every worker spooled items"
        time.sleep(0.02)
    workers[0].send_signal(signal.SIGKILL)
    assert workers[0].wait() == -signal.SIGKILL
    if redis_restart:
        server.restart(down_for=1)
    codes = [worker.wait(timeout=120) for worker in workers[1:]]
    logs = "".join(
        (tmp_path / f"worker-{n}.log").read_text(errors="replace") for n in range(3)
    )
    assert codes == [0, 0], logs[-3000:]
    objects = {
        entry["Key"]: client.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        for entry in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    }
    assert "worker-0.recovered.jsonl" in objects, sorted(objects)
    assert "Uploaded" in logs and "spooled" in logs
    delivered = Counter(
        json.loads(line)["item_id"]
        for body in objects.values()
        for line in body.decode("utf-8").splitlines()
    )
    expected = set().union(*expected_items(SIZES).values())
    assert set(delivered) == expected  # every item, none lost
    # at least once: a second copy only of items of pages the killed worker
    # had in hand (fetched again by another worker), and of items the dedupe
    # could not check while Redis was down (kept, counted)
    twice = {page for page, count in pages_called(sim).items() if count > 1}
    doubled = sum(n - 1 for n in delivered.values())
    unchecked = sum(map(int, re.findall(r"'tmapi/dedupe/errors': (\d+)", logs)))
    assert doubled <= 20 * len(twice) + unchecked
    print(f"restart={redis_restart}: {doubled} items doubled, {len(twice)} pages twice")
    assert not list((tmp_path / "spool").glob("*/*.part"))  # nothing left behind
