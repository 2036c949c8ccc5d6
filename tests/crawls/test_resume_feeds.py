"""SIGKILL a job three times (early, middle, near the end), then run it to the
end, with every kind of feed: every catalog item exactly once across all the
job's outputs, only pages in flight at a kill fetched twice."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SENTINEL_TOKEN
from tests.crawlers import DOCUMENTED_PAGES
from tests.crawls.test_resume import (
    pages_called,
    pages_in_flight,
    settled,
    wait_until,
    wait_until_answered,
)
from tests.servers import s3_settings
from tmapi_crawler.simulator.catalog import Catalog

SIZES = {41: 200, 42: 100}  # 20 + 10 pages of 10
PAGES = 30
ARGUMENTS = {"cat_id": "41,42", "page_size": "10"}
BUCKET = "tmapi-items"
MOMENTS = (3, PAGES // 2, PAGES - 5)  # pages settled: early, middle, near the end


def _feeds(**feeds: str) -> dict[str, Any]:
    return {"FEEDS": json.dumps({uri: {"format": kind} for uri, kind in feeds.items()})}


# case: (run number, output directory) -> extra command-line arguments, settings
CASES: dict[str, Callable[[int, Path], tuple[list[str], dict[str, Any]]]] = {
    "one local file": lambda run, out: (["-O", str(out / "items.jsonl")], {}),
    "per-run file names": lambda run, out: (
        ["-O", str(out / f"items-{time.strftime('%H%M%S')}-{run}.jsonl")],
        {},
    ),
    "s3 per-run object names": lambda run, out: (
        [],
        _feeds(**{f"s3://{BUCKET}/items-%(time)s.jsonl": "jsonlines"}),
    ),
    "two feeds": lambda run, out: (
        [],
        _feeds(
            **{str(out / "items.jsonl"): "jsonlines", str(out / "items.csv"): "csv"}
        ),
    ),
    "a CSV without the language column": lambda run, out: (
        [],
        {
            "FEEDS": json.dumps(
                {
                    str(out / "items.jsonl"): {"format": "jsonlines"},
                    str(out / "items.csv"): {
                        "format": "csv",
                        "fields": ["item_id", "cat_id", "page", "title"],
                    },
                }
            )
        },
    ),
    "batches": lambda run, out: (
        [],
        {
            **_feeds(**{f"s3://{BUCKET}/batch-%(batch_id)03d.jsonl": "jsonlines"}),
            "FEED_EXPORT_BATCH_ITEM_COUNT": 45,
        },
    ),
}


def start(
    case: str, run: int, sim_url: str, s3_url: str, tmp: Path
) -> subprocess.Popen[bytes]:
    extra, settings = CASES[case](run, tmp / "out")
    command = [sys.executable, "-m", "scrapy", "crawl", "category", *extra]
    for name, value in ARGUMENTS.items():
        command += ["-a", f"{name}={value}"]
    settings = {
        "TMAPI_BASE_URL": sim_url,
        **DOCUMENTED_PAGES,
        "JOBDIR": tmp / "job",
        "TMAPI_SUMMARY_FILE": tmp / "summary.json",
        "CONCURRENT_REQUESTS": 4,
        "TMAPI_CONCURRENCY_START": 4,
        **s3_settings(s3_url),
        **settings,
    }
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, "TMAPI_TOKEN": SENTINEL_TOKEN}
    with (tmp / "log").open("ab") as sink:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)


def outputs(tmp: Path, s3) -> dict[str, dict[str, bytes]]:
    """Every output of the job, by format: {name: content}."""
    found: dict[str, dict[str, bytes]] = {"jsonl": {}, "csv": {}}
    for path in sorted((tmp / "out").glob("*.*[lv]")):  # .jsonl, .csv
        found["csv" if path.suffix == ".csv" else "jsonl"][path.name] = (
            path.read_bytes()
        )
    client = s3.client()
    for entry in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = client.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        found["jsonl"][f"s3:{entry['Key']}"] = body
    return {kind: files for kind, files in found.items() if files}


def item_ids(kind: str, content: bytes) -> list[int]:
    lines = content.decode("utf-8").splitlines()
    if kind == "csv":  # a resumed run appends its own header line
        rows = csv.DictReader(lines)
        return [int(r["item_id"]) for r in rows if r["item_id"] != "item_id"]
    ids = []
    for line in lines:
        try:
            ids.append(int(json.loads(line)["item_id"]))
        except ValueError:
            ids.append(-1)  # a line cut short or run into the next one
    return ids


def kill_and_resume(case: str, sim, s3_url: str, tmp: Path, s3) -> dict[str, Any]:
    """The job killed at each moment then run to the end; what it delivered."""
    jobdir = tmp / "job"
    (tmp / "out").mkdir()
    kills: list[tuple[set[tuple[int, int]], Counter]] = []
    for run, moment in enumerate(MOMENTS, start=1):
        crawl = start(case, run, sim.url, s3_url, tmp)
        wait_until(crawl, lambda moment=moment: settled(jobdir) >= moment)
        crawl.send_signal(signal.SIGKILL)
        crawl.wait()
        wait_until_answered(sim)
        kills.append((pages_in_flight(jobdir), pages_called(sim)))
        if "%(time)s" in json.dumps(CASES[case](run, tmp / "out")):
            time.sleep(1)  # a new %(time)s (whole seconds) for the next run
    crawl = start(case, len(MOMENTS) + 1, sim.url, s3_url, tmp)
    code = crawl.wait(timeout=120)
    log = (tmp / "log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    called = pages_called(sim)
    fetched_again, outside = [], set()
    for number, (in_flight, at_kill) in enumerate(kills):
        after = kills[number + 1][1] if number + 1 < len(kills) else called
        again = {p for p in at_kill if at_kill[p] and after[p] > at_kill[p]}
        outside |= again - in_flight
        fetched_again.append(len(again))
    catalog = Catalog(seed=0, sizes=SIZES)
    expected = {p.item_id for cat in SIZES for p in catalog.expected(cat)}
    found = outputs(tmp, s3)
    result: dict[str, Any] = {"fetched again": fetched_again, "outside": outside}
    for kind, files in found.items():
        counts = Counter(
            i for content in files.values() for i in item_ids(kind, content)
        )
        result[kind] = {
            "files": len(files),
            "lost": len(expected - set(counts)),
            "doubled": sum(n - 1 for n in counts.values() if n > 1),
            "foreign": len(set(counts) - expected - {-1}),
            "corrupt": counts[-1],
        }
    result["log"] = log
    result["never fetched"] = {
        (c, p) for c, n in SIZES.items() for p in range(1, n // 10 + 1)
    } - set(called)
    return result


@pytest.mark.parametrize("case", list(CASES))
def test_sigkill_three_times_every_item_once_in_every_feed(
    case, simulator, s3_server, tmp_path
):
    sim = simulator(
        size=[f"{c}={n}" for c, n in SIZES.items()], latency=0.1, repeat_rate=0.2
    )
    s3 = s3_server()
    s3.client().create_bucket(Bucket=BUCKET)
    result = kill_and_resume(case, sim, s3.url, tmp_path, s3)
    log = result.pop("log")
    print(case, {k: v for k, v in result.items()})  # for the report
    assert not result["never fetched"]
    assert not result["outside"], "a page not in flight at a kill was fetched twice"
    two = {"jsonl", "csv"}
    kinds = {"two feeds": two, "a CSV without the language column": two}.get(
        case, {"jsonl"}
    )
    assert set(result) - {"fetched again", "outside", "never fetched"} == kinds
    for kind in kinds:
        assert result[kind]["lost"] == 0, (kind, result[kind])
        assert result[kind]["doubled"] == 0, (kind, result[kind])
        assert result[kind]["foreign"] == result[kind]["corrupt"] == 0
    assert "Recovered: " in log  # the run summary says what was recovered
    if case.startswith("s3") or case == "batches":
        assert "a killed run left spooled" in log
        uploaded = re.findall(r"'tmapi/spool/items_recovered': (\d+)", log)
        assert sum(map(int, uploaded)) > 0
    assert SENTINEL_TOKEN not in "".join(
        path.read_text(errors="replace")
        for path in (tmp_path / "job").rglob("*")
        if path.is_file()
    )


@pytest.mark.parametrize("name", ["items.parquet", "items.json"])
def test_a_file_that_cannot_be_appended_to_is_kept_whole_and_each_run_writes_its_own(
    name, simulator, crawl, tmp_path
):
    """A Parquet file (its footer last) or a JSON array: a job stopped by its
    call budget and resumed, then run once more when finished, keeps the
    first run's file whole; each later run writes its own (``-run<N>``)."""
    import pyarrow.parquet as pq

    sim = simulator(size="77=200")
    job = {"JOBDIR": str(tmp_path / "job")}
    stopped = crawl(sim.url, {"cat_id": 77}, {**job, "TMAPI_MAX_CALLS": 4},
                    output_name=name)  # fmt: skip
    assert stopped.returncode == 4, stopped.log[-3000:]
    assert "is not a file of lines: a SIGKILL would leave it unreadable" in (
        stopped.log
    )  # the user is told at the start
    for _ in range(2):  # resumed to the end, then run again: nothing to do
        resumed = crawl(sim.url, {"cat_id": 77}, job, output_name=name)
        assert resumed.returncode == 0, resumed.log[-3000:]
    stem, suffix = name.split(".")
    files = [tmp_path / f"{stem}{part}.{suffix}" for part in ("", "-run2", "-run3")]

    def ids(path: Path) -> list[int]:
        if suffix == "parquet":
            return pq.read_table(path).column("item_id").to_pylist()
        return [item["item_id"] for item in json.loads(path.read_text("utf-8"))]

    held = [ids(path) for path in files]  # each file whole: it reads
    assert [len(found) for found in held] == [80, 120, 0]
    expected = {p.item_id for p in Catalog(seed=0, sizes={77: 200}).expected(77)}
    assert Counter(i for found in held for i in found) == Counter(expected)
