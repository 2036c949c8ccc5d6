"""Real crawls into the catalog store: a SQLite file, a PostgreSQL server,
days of the simulator, exact sets of changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, SENTINEL_TOKEN, json_lines, run_crawl, stat
from tests.crawls.test_distributed import start_worker
from tests.postgres import binaries
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.store.changes import count, summary_line
from tmapi_crawler.store.db import open_store

CAT, SIZE = 51, 120  # 6 pages of 20


def listing(day: int, size: int = SIZE) -> dict[int, Decimal]:
    return {p.item_id: p.price for p in Catalog(0, {CAT: size}, day=day).products(CAT)}


def changes_of(feed: Path) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {
        "new": set(),
        "price": set(),
        "gone": set(),
        "back": set(),
    }
    for record in json_lines(feed):
        assert record["item_id"] not in found[record["change"]], record  # once
        found[record["change"]].add(record["item_id"])
    return found


def crawl_day(simulator, tmp_path, day: int, store: str, name: str, **extra: Any):
    options = {"size": f"{CAT}={extra.pop('size', SIZE)}", "day": day}
    options.update(extra.pop("sim", {}))
    sim = simulator(**options)
    settings = {
        "TMAPI_STORE": store,
        "TMAPI_CHANGES_FEED": str(tmp_path / f"{name}.changes.jsonl"),
        **extra.pop("settings", {}),
    }
    arguments = {"cat_id": CAT, **extra.pop("arguments", {})}
    result = run_crawl(
        tmp_path, sim.url, arguments, settings, output_name=f"{name}.jsonl"
    )
    return result, changes_of(tmp_path / f"{name}.changes.jsonl")


def tmapi_store(store: str, *arguments: str) -> str:
    command = [sys.executable, "-m", "tmapi_crawler.store", "--store", store]
    done = subprocess.run(
        [*command, *arguments], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_three_days_give_the_exact_changes(simulator, tmp_path):
    store = f"sqlite:///{tmp_path}/catalog.sqlite"
    day0, day1, day2 = listing(0), listing(1), listing(2)
    result, changes = crawl_day(simulator, tmp_path, 0, store, "day0")
    assert result.returncode == 0, result.log[-3000:]
    assert changes["new"] == set(day0) and not changes["price"] | changes["gone"]

    result, changes = crawl_day(simulator, tmp_path, 1, store, "day1")
    assert result.returncode == 0, result.log[-3000:]
    gone = set(day0) - set(day1)
    assert changes["new"] == set(day1) - set(day0)
    assert changes["gone"] == gone and gone
    assert changes["price"] == {i for i in set(day0) & set(day1) if day0[i] != day1[i]}
    assert not changes["back"]
    counts = {kind: len(ids) for kind, ids in changes.items()}
    assert (
        f"Changes: {counts['new']} new, {counts['price']} price changes, "
        f"{counts['gone']} gone, 0 back"
    ) in result.log
    # the items feed holds the day's listing, the store its history
    assert {item["item_id"] for item in result.items} == set(day1)
    price_change = json_lines(tmp_path / "day1.changes.jsonl")
    shown = next(r for r in price_change if r["change"] == "price")
    assert Decimal(shown["old_price"]) == day0[shown["item_id"]]
    assert Decimal(shown["new_price"]) == day1[shown["item_id"]]

    # what tmapi-store reads back is what the feed said
    read = tmapi_store(store, "--json", "changes")
    records = [json.loads(line) for line in read.splitlines()]
    key = lambda r: (r["change"], r["item_id"])  # noqa: E731
    assert sorted(records, key=key) == sorted(price_change, key=key)

    result, changes = crawl_day(simulator, tmp_path, 2, store, "day2")
    assert changes["back"] == set(day2) & gone and changes["back"]
    assert changes["new"] == set(day2) - set(day0) - set(day1)
    assert changes["gone"] == set(day1) - set(day2)


def test_a_failed_page_or_a_capped_category_marks_nothing_gone(simulator, tmp_path):
    store = f"sqlite:///{tmp_path}/catalog.sqlite"
    crawl_day(simulator, tmp_path, 0, store, "day0")
    result, changes = crawl_day(
        simulator, tmp_path, 1, store, "failed", sim={"fault": f"{CAT}:3=422"}
    )
    assert not changes["gone"]
    assert "not judged which listings are gone: 1 page(s) failed" in result.log
    assert changes["price"] and changes["price"] <= {
        i for i in set(listing(0)) & set(listing(1)) if listing(0)[i] != listing(1)[i]
    }  # the pages that came were compared

    capped = f"sqlite:///{tmp_path}/capped.sqlite"
    cap = {"sim": {"result_cap": 60}, "settings": {"TMAPI_RESULT_CAP": 60}}
    crawl_day(simulator, tmp_path, 0, capped, "capped0", **cap)
    result, changes = crawl_day(simulator, tmp_path, 1, capped, "capped1", **cap)
    assert not changes["gone"]
    assert "not judged which listings are gone" in result.log
    assert "at the result cap" in result.log
    # with split=price the same capped category is crawled whole: gone is said
    whole = {**cap, "arguments": {"split": "price"}}
    crawl_day(
        simulator, tmp_path, 0, f"sqlite:///{tmp_path}/whole.sqlite", "w0", **whole
    )
    _, changes = crawl_day(
        simulator, tmp_path, 1, f"sqlite:///{tmp_path}/whole.sqlite", "w1", **whole
    )
    assert changes["gone"] == set(listing(0)) - set(listing(1))


def test_a_resumed_job_is_one_run_with_each_observation_once(simulator, tmp_path):
    store = f"sqlite:///{tmp_path}/catalog.sqlite"
    crawl_day(simulator, tmp_path, 0, store, "day0")
    day0, day1 = listing(0), listing(1)
    sim = simulator(size=f"{CAT}={SIZE}", day=1)
    settings = {"TMAPI_STORE": store, "JOBDIR": str(tmp_path / "job"),
                "TMAPI_STORE_BATCH": 7, "CONCURRENT_REQUESTS": 2}  # fmt: skip
    arguments = {"cat_id": CAT, "page_size": 10}
    stopped = run_crawl(
        tmp_path, sim.url, arguments, {**settings, "TMAPI_MAX_CALLS": 4}
    )
    assert "tmapi_budget_exhausted" in stopped.log
    assert "not judged which listings are gone: the run stopped early" not in (
        stopped.log
    )  # the job's last run judges
    resumed = run_crawl(tmp_path, sim.url, arguments, settings)
    assert resumed.returncode == 0, resumed.log[-3000:]
    catalog = open_store(store)
    runs = catalog.runs()
    assert len(runs) == 2  # day 0's, and the job's: one run
    job = runs[-1]
    assert job["finish_reason"] == "finished" and job["finished_at"]
    assert job["observations"] == len(day1)
    [[observed, distinct]] = [
        list(r.values())
        for r in catalog.query(
            "SELECT COUNT(*), COUNT(DISTINCT item_id) FROM observations "
            "WHERE run_id = ?",
            (job["run_id"],),
        )
    ]
    assert observed == distinct == len(day1)
    changes = catalog.changes(job["run_id"])
    catalog.close()
    by_kind = {k: {c["item_id"] for c in changes if c["change"] == k}
               for k in ("new", "price", "gone")}  # fmt: skip
    assert len(changes) == sum(map(len, by_kind.values()))  # each once
    assert by_kind["new"] == set(day1) - set(day0)
    assert by_kind["gone"] == set(day0) - set(day1)  # both runs' pages merged


def test_sqlite_with_redis_is_refused_before_any_call(simulator, crawl, tmp_path):
    sim = simulator(size=f"{CAT}={SIZE}")
    result = crawl(
        sim.url,
        {"cat_id": CAT},
        {
            "TMAPI_STORE": f"sqlite:///{tmp_path}/c.sqlite",
            "REDIS_URL": "redis://127.0.0.1:9/0",
        },
    )
    assert result.returncode == 2
    assert "TMAPI_STORE=sqlite:/// with REDIS_URL" in result.log
    assert "postgresql://" in result.log
    assert sim.calls() == []


def test_three_workers_on_postgresql_make_each_change_once(
    simulator, redis_factory, postgres, tmp_path
):
    size = 400  # 20 pages of 20
    day0, day1 = listing(0, size), listing(1, size)
    crawl_day(simulator, tmp_path, 0, postgres, "day0", size=size)
    sim = simulator(size=f"{CAT}={size}", day=1, latency=0.2)
    server = redis_factory()
    settings = {"TMAPI_STORE": postgres, "TMAPI_STORE_BATCH": 15}
    workers = [
        start_worker(tmp_path, n, sim.url, server.url, {"cat_id": CAT}, settings)
        for n in range(3)
    ]
    try:
        codes = [worker.wait() for worker in workers]
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
    assert codes == [0, 0, 0], workers[0].log[-3000:]
    catalog = open_store(postgres)
    runs = catalog.runs()
    assert len(runs) == 2  # day 0's, and one the three workers shared
    changes = catalog.changes(runs[-1]["run_id"])
    catalog.close()
    kinds: dict[str, list[int]] = {"new": [], "price": [], "gone": []}
    for change in changes:
        kinds[change["change"]].append(change["item_id"])
    assert sorted(kinds["new"]) == sorted(set(day1) - set(day0))
    assert sorted(kinds["price"]) == sorted(
        i for i in set(day0) & set(day1) if day0[i] != day1[i]
    )
    assert sorted(kinds["gone"]) == sorted(set(day0) - set(day1))  # judged once
    judges = [w for w in workers if stat(w.log, "tmapi/store/changes/gone")]
    assert len(judges) == 1  # the last worker to close
    # its summary counts the whole run's changes, every worker's
    (judge,) = judges
    assert f"Changes: {summary_line(count(changes))}" in judge.log


def test_a_store_password_given_with_s_is_in_no_log_and_no_table(
    simulator, postgres, tmp_path
):
    # Scrapy logs every -s value under "Overridden settings"; the test
    # cluster trusts loopback, so any password opens it
    password = "store-pass-7741"
    url = postgres.replace(
        "postgresql://postgres@", f"postgresql://postgres:{password}@"
    )
    result, changes = crawl_day(simulator, tmp_path, 0, url, "day0")
    assert result.returncode == 0, result.log[-3000:]
    assert len(changes["new"]) == SIZE
    assert password not in result.log
    bindir = binaries()
    assert bindir is not None  # the postgres fixture started a cluster with them
    dump = subprocess.run(
        [str(bindir / "pg_dump"), "--data-only", postgres],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "COPY public.observations" in dump.stdout  # the run is there
    assert password not in dump.stdout  # and no table holds the password


def start_crawl(url: str, tmp_path: Path, settings: dict[str, Any]) -> Any:
    command = [sys.executable, "-m", "scrapy", "crawl", "category",
               "-a", f"cat_id={CAT}", "-a", "page_size=10",
               "-O", str(tmp_path / "items.jsonl"),
               "-s", f"TMAPI_BASE_URL={url}"]  # fmt: skip
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    log = (tmp_path / "crawl.log").open("wb")
    env = {**os.environ, "TMAPI_TOKEN": SENTINEL_TOKEN}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def wait_for_observations(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            store = open_store(url)
            found = store.query("SELECT COUNT(*) AS n FROM observations")[0]["n"]
            store.close()
            if found:
                return
        except Exception:  # not created yet
            pass
        time.sleep(0.1)
    raise AssertionError("no observation written")


def test_a_store_down_mid_crawl_catches_up(simulator, postgres_server, tmp_path):
    sim = simulator(size=f"{CAT}={SIZE}", latency=0.3)
    url = postgres_server.database()
    settings = {"TMAPI_STORE": url, "TMAPI_STORE_BATCH": 5,
                "TMAPI_MAX_CONCURRENCY": 1}  # fmt: skip
    crawl = start_crawl(sim.url, tmp_path, settings)  # 12 pages, ~4 s
    wait_for_observations(url)
    postgres_server.stop()
    time.sleep(1)
    postgres_server.start()
    assert crawl.wait(120) == 0
    log = (tmp_path / "crawl.log").read_text()
    assert "unreachable" in log and "reachable again" in log
    store = open_store(url)
    [run] = store.runs()
    assert run["observations"] == SIZE
    store.close()
