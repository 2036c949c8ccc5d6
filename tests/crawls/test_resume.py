"""Stop, kill and resume real crawls with ``-s JOBDIR=...``: nothing lost, only
pages in flight at a kill fetched twice, every item delivered once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SENTINEL_TOKEN
from tests.crawlers import DOCUMENTED_PAGES
from tmapi_crawler.feeds.feedfile import read_items
from tmapi_crawler.resume import journal
from tmapi_crawler.simulator.catalog import Catalog

SIZES = {41: 600, 42: 390}  # 60 + 39 pages of 10
ARGUMENTS = {"cat_id": "41,42", "page_size": "10"}


def start_crawl(
    url: str,
    jobdir: Path | None,
    output: Path,
    log: Path,
    arguments: dict[str, Any],
    default_feed: str | None = None,
    settings: dict[str, Any] | None = None,
) -> subprocess.Popen[bytes]:
    """``scrapy crawl`` writing to *output* (``-O``), or with no ``-O`` to the
    default feed *default_feed*; in the job *jobdir* (None: no job)."""
    command = [sys.executable, "-m", "scrapy", "crawl", "category"]
    if default_feed is None:
        command += ["-O", str(output)]
    for name, value in arguments.items():
        command += ["-a", f"{name}={value}"]
    chosen = {
        "TMAPI_BASE_URL": url,
        **DOCUMENTED_PAGES,
        **({"JOBDIR": jobdir} if jobdir is not None else {}),
        "CONCURRENT_REQUESTS": 4,
        "TMAPI_CONCURRENCY_START": 4,
        **({"TMAPI_DEFAULT_FEED": default_feed} if default_feed else {}),
        **(settings or {}),
    }
    chosen["TMAPI_BALANCE_RETRIES"] = 0  # a 439 stops the crawl at once
    for name, value in chosen.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, "TMAPI_TOKEN": SENTINEL_TOKEN}
    with log.open("ab") as sink:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)


def settled(jobdir: Path) -> int:
    return len(journal.load(jobdir / journal.JOURNAL_NAME).settled)


def wait_until(process: subprocess.Popen[bytes], condition: Any) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, "the crawl ended before the moment came"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def wait_until_answered(sim) -> None:
    """The simulator has answered (and logged) every call it received."""
    health = f"{sim.url}/_simulator/health"
    deadline = time.monotonic() + 30
    while json.load(urllib.request.urlopen(health))["in_flight"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def pages_in_flight(jobdir: Path) -> set[tuple[int, int]]:
    """(category, page) leased and not settled: in flight when the run ended."""
    state = journal.load(jobdir / journal.JOURNAL_NAME)
    pages = set()
    for fp in state.in_flight:
        meta = state.queued[fp]["meta"]["tmapi"]
        pages.add((meta["query"]["cat_id"], meta["page"]))
    return pages


def pages_called(sim) -> Counter:
    return Counter(
        (c["cat_id"], c["page"]) for c in sim.calls() if c["outcome"] == "ok"
    )


def assert_catalog_delivered_once(output: Path) -> None:
    items = list(read_items(output))
    assert output.read_bytes().endswith(b"\n")
    catalog = Catalog(seed=0, sizes=SIZES)
    for cat_id in SIZES:
        expected = {p.item_id for p in catalog.expected(cat_id)}
        delivered = Counter(i["item_id"] for i in items if i["cat_id"] == cat_id)
        assert set(delivered) == expected
        assert max(delivered.values()) == 1, "an item was written twice"


def test_sigkill_at_three_moments_loses_nothing(simulator, tmp_path):
    # a fifth of the pages repeat an item of the page before: the crawler's
    # dedupe must drop each repeat, whichever run delivered the first one
    sim = simulator(
        size=[f"{c}={n}" for c, n in SIZES.items()], latency=0.05, repeat_rate=0.2
    )
    jobdir, output, log = tmp_path / "job", tmp_path / "items.jsonl", tmp_path / "log"
    total_pages = 99
    kills: list[tuple[set[tuple[int, int]], Counter]] = []  # in flight, calls
    for moment in (5, total_pages // 2, total_pages - 8):  # early, middle, late
        crawl = start_crawl(sim.url, jobdir, output, log, ARGUMENTS)
        wait_until(crawl, lambda moment=moment: settled(jobdir) >= moment)
        crawl.send_signal(signal.SIGKILL)
        crawl.wait()
        wait_until_answered(sim)
        in_flight = pages_in_flight(jobdir)
        assert in_flight, "no page was in flight at the kill"
        kills.append((in_flight, pages_called(sim)))
    # a kill may cut the line being written: the next run repairs the file
    with output.open("ab") as feed:
        feed.write(b'{"item_id": "123", "title": "cut by a ki')
    crawl = start_crawl(sim.url, jobdir, output, log, ARGUMENTS)
    assert crawl.wait(timeout=120) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "Resuming the job" in text and "line cut by a kill" in text
    called = pages_called(sim)
    assert set(called) == {
        (cat_id, page)
        for cat_id, size in SIZES.items()
        for page in range(1, -(-size // 10) + 1)
    }
    # only pages in flight at a kill were fetched twice, and only once more
    fetched_again = []
    for number, (in_flight, at_kill) in enumerate(kills):
        after = kills[number + 1][1] if number + 1 < len(kills) else called
        again = {p for p in at_kill if at_kill[p] and after[p] > at_kill[p]}
        assert again <= in_flight
        fetched_again.append(sorted(again))
    assert max(called.values()) <= 2
    assert sum(n - 1 for n in called.values()) == sum(map(len, fetched_again))
    assert_catalog_delivered_once(output)
    print("pages fetched twice after each kill:", fetched_again)  # for the report
    assert SENTINEL_TOKEN not in "".join(
        path.read_text(errors="replace") for path in jobdir.rglob("*") if path.is_file()
    )


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_then_resume_fetches_no_page_twice(simulator, tmp_path, stop):
    sim = simulator(size=[f"{c}={n}" for c, n in SIZES.items()], latency=0.05)
    jobdir, log = tmp_path / "job", tmp_path / "log"
    # SIGTERM: the default feed, a new name per start time; SIGINT: -O items.jsonl
    default_feed = None
    if stop == "SIGTERM":
        default_feed = str(tmp_path / "out" / "%(name)s-%(time)s.jsonl")
    start = partial(start_crawl, sim.url, jobdir, tmp_path / "items.jsonl", log)
    crawl = start(ARGUMENTS, default_feed)
    wait_until(crawl, lambda: settled(jobdir) >= 30)
    crawl.send_signal(getattr(signal, stop))
    assert crawl.wait(timeout=60) == 4  # stopped before the end: resumable
    stopped_at = settled(jobdir)
    time.sleep(1.1)  # a later start time: a new default file name, were it not kept
    crawl = start(ARGUMENTS, default_feed)
    assert crawl.wait(timeout=120) == 0, log.read_text()[-3000:]
    called = pages_called(sim)
    assert len(called) == 99
    assert max(called.values()) == 1  # no page fetched twice
    outputs = list((tmp_path / "out").glob("*.jsonl")) if default_feed else []
    assert len(outputs) == (1 if default_feed else 0)  # one file for the job
    assert_catalog_delivered_once(outputs[0] if outputs else tmp_path / "items.jsonl")
    summary = [line for line in log.read_text().splitlines() if "Resuming" in line]
    assert f"{stopped_at} pages done before" in summary[0]
    assert f"Resumed: {stopped_at} pages done" in log.read_text()  # run summary


def test_a_finished_job_run_again_sends_nothing(simulator, tmp_path):
    sim = simulator(size="43=35")
    jobdir, output, log = tmp_path / "job", tmp_path / "items.jsonl", tmp_path / "log"
    arguments = {"cat_id": "43"}
    assert start_crawl(sim.url, jobdir, output, log, arguments).wait(60) == 0
    calls = len(sim.calls())
    assert start_crawl(sim.url, jobdir, output, log, arguments).wait(60) == 0
    assert len(sim.calls()) == calls
    assert len(list(read_items(output))) == 35  # kept, not overwritten by -O
    feeds = json.loads((jobdir / "tmapi-feeds.json").read_text())
    assert output.resolve().as_uri() in feeds.values()


def test_pages_a_stop_refused_are_sent_by_the_next_run(simulator, tmp_path):
    """No balance: the crawl stops and refuses what is queued; after a top-up
    the same command sends exactly the pages that were not answered."""
    sim = simulator(
        size=[f"{c}={n}" for c, n in SIZES.items()], latency=0.02, fault="41:20=439*"
    )
    jobdir, output, log = tmp_path / "job", tmp_path / "items.jsonl", tmp_path / "log"
    arguments = {**ARGUMENTS, "cat_id": "41"}
    stopped = start_crawl(
        sim.url, jobdir, output, log, {**arguments, "max_pages": "40"}
    )
    assert stopped.wait(timeout=60) == 4
    assert "tmapi_insufficient_balance" in log.read_text()
    urllib.request.urlopen(
        urllib.request.Request(f"{sim.url}/_simulator/faults", method="DELETE")
    )
    resumed = start_crawl(
        sim.url, jobdir, output, log, {**arguments, "max_pages": "40"}
    )
    assert resumed.wait(timeout=120) == 0, log.read_text()[-3000:]
    answered = pages_called(sim)
    assert set(answered) == {(41, page) for page in range(1, 41)}
    assert max(answered.values()) == 1  # every page paid for once
    items = list(read_items(output))
    assert len(items) == len({i["item_id"] for i in items}) == 400
