"""How pages spread over distributed workers, and how long a SIGKILL costs.

``python -m bench.distributed --workers 3 --pages 300 --latency 0.2``: starts a
Redis and the simulator on loopback, runs the workers on one crawl and prints
the pages each worker fetched and the wall time; then runs the same crawl again
and kills one worker with SIGKILL a third of the way through, printing how long
after the kill its pages were fetched again and when the crawl ended.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import SAME_PAGES
from tests.conftest import ROOT, SENTINEL_TOKEN
from tests.servers import RedisServer
from tmapi_crawler.simulator.process import SimulatorProcess


def start_workers(
    count: int, sim: SimulatorProcess, redis: RedisServer, cats: str, options: dict
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    started = []
    for _ in range(count):
        log = Path(tempfile.mkdtemp(prefix="bench-worker-")) / "worker.log"
        command = [sys.executable, "-m", "scrapy", "crawl", "category"]
        command += ["-a", f"cat_id={cats}", "-O", str(log.with_suffix(".jsonl"))]
        settings = {
            "TMAPI_BASE_URL": sim.url,
            "TMAPI_IDLE_CLOSE": 1,
            **SAME_PAGES,
            **options,
        }
        for name, value in settings.items():
            command += ["-s", f"{name}={value}"]
        env = {**os.environ, "TMAPI_TOKEN": SENTINEL_TOKEN, "REDIS_URL": redis.url}
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        started.append((process, log))
    return started


def calls_of(log: Path) -> int:
    found = re.search(r"'tmapi/calls': (\d+)", log.read_text(errors="replace"))
    return int(found.group(1)) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--pages", type=int, default=300, help="in all, 3 categories")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--lease", type=float, default=10)
    args = parser.parse_args()
    per_cat = args.pages // 3
    sizes = {91: per_cat * 20, 92: per_cat * 20, 93: per_cat * 20}
    options = {
        "CONCURRENT_REQUESTS": args.concurrency,
        "TMAPI_LEASE_SECONDS": args.lease,
    }
    cats = ",".join(map(str, sizes))
    for kill in (False, True):
        with tempfile.TemporaryDirectory() as directory:
            redis = RedisServer(Path(directory) / "redis.log").start()
            sim = SimulatorProcess(
                size=[f"{c}={n}" for c, n in sizes.items()], latency=args.latency
            ).start()
            try:
                began = time.time()
                workers = start_workers(args.workers, sim, redis, cats, options)
                killed_at = None
                if kill:
                    while len(sim.calls()) < args.pages // 3:
                        time.sleep(0.05)
                    workers[0][0].send_signal(signal.SIGKILL)
                    killed_at = time.time()
                for process, _ in workers:
                    process.wait()
                ended = time.time()
                calls = sim.calls()
            finally:
                sim.stop()
                redis.stop()
        pages = Counter((c["cat_id"], c["page"]) for c in calls)
        twice = {page for page, n in pages.items() if n > 1}
        split = [calls_of(log) for _, log in workers]
        label = "with one worker killed" if kill else "all workers"
        print(
            f"{label}: {len(pages)} pages, {len(calls)} calls in {ended - began:.1f} s"
        )
        print(f"  pages per worker: {split} (the killed one reports none)")
        if killed_at is not None:
            redone = [c["t"] for c in calls if (c["cat_id"], c["page"]) in twice]
            late = [t for t in redone if t > killed_at]
            if late:
                print(
                    f"  {len(twice)} pages fetched again, the first "
                    f"{min(late) - killed_at:.1f} s after the kill "
                    f"(TMAPI_LEASE_SECONDS={args.lease:g})"
                )
            print(f"  crawl ended {ended - killed_at:.1f} s after the kill")


if __name__ == "__main__":
    main()
