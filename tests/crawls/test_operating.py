"""Operating a crawl: the run summary, the call budget, the dry run, the progress
line; real ``scrapy crawl`` runs against the simulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from decimal import Decimal

from tests.conftest import ROOT, SENTINEL_TOKEN
from tests.terminal import on_a_terminal
from tmapi_crawler.simulator.catalog import Catalog


def summary_of(result) -> dict:
    path = result.output.with_name(result.output.stem + ".summary.json")
    return json.loads(path.read_text(encoding="utf-8"))


def row_for(summary: dict, cat_id: int) -> dict:
    (row,) = [
        r for r in summary["categories"] if r["label"].startswith(f"category {cat_id} ")
    ]
    return row


def test_the_summary_matches_the_simulator_log_and_the_output(
    simulator, crawl, tmp_path
):
    # 61: 3 pages; 62: 7 pages, page 3 refused for good (422), page 5 once 500.
    sim = simulator(size=["61=45", "62=130"], fault=["62:3=422*", "62:5=500"])
    result = crawl(
        sim.url,
        {"cat_id": "61,62"},
        {
            "TMAPI_COST_PER_CALL": "0.0025 USD",
            "CONCURRENT_REQUESTS": 4,
            "TMAPI_FAILED_PAGES_FILE": str(tmp_path / "failed.jsonl"),
        },
    )
    summary = summary_of(result)
    assert SENTINEL_TOKEN not in json.dumps(summary)
    calls = sim.calls()
    by_cat = defaultdict(list)
    for call in calls:
        by_cat[call["cat_id"]].append(call)
    delivered = Counter(item["cat_id"] for item in result.items)
    for cat_id in (61, 62):
        row, log = row_for(summary, cat_id), by_cat[cat_id]
        pages_ok = {c["page"] for c in log if c["outcome"] == "ok"}
        pages_sent = {c["page"] for c in log}
        assert row["calls"] == len(log)
        assert row["retries"] == len(log) - len(pages_sent)
        assert row["done"] == len(pages_ok)
        assert row["failed"] == len(pages_sent - pages_ok)
        assert row["items"] == delivered[cat_id]
        assert row["total_count"] == {61: 45, 62: 130}[cat_id]
        assert row["pages"] == {61: 3, 62: 7}[cat_id]
        failed = {str(page) for page in pages_sent - pages_ok}
        assert set(row["failed_pages"]) == failed
    assert "3" in row_for(summary, 62)["failed_pages"]  # 422: never retried
    assert row_for(summary, 62)["retries"] == 1  # page 5's 500, then success
    assert summary["retries_by_reason"] == {"500": 1}
    totals = summary["totals"]
    assert totals["calls"] == summary["calls"] == len(calls)
    assert totals["items"] == summary["items_exported"] == len(result.items)
    cost = Decimal(summary["estimated_cost"]["amount"])
    assert cost == Decimal("0.0025") * len(calls)
    assert summary["finish_reason"] == "finished"
    assert summary["exit_code"] == result.returncode == 3  # a page failed
    assert summary["complete"] is False
    assert any("category 62 (en): pages 3" in step for step in summary["next_steps"])
    # The same figures in the log's table.
    row = row_for(summary, 62)
    cells = [row[name] for name in ("total_count", "pages", "done", "failed", "items")]
    assert re.search(
        r"^category 62 \(en\)\s+" + r"\s+".join(map(str, cells)), result.log, re.M
    )
    assert f"This run: {len(calls)} calls" in result.log


def test_the_budget_stops_after_exactly_the_allowed_calls_and_resumes(
    simulator, crawl, tmp_path
):
    sim = simulator(size=["63=45", "64=310"], latency=0.05)
    # A window of one call at first: requests queue at the call gate while
    # the budget runs out, and must be turned back without being sent.
    job = {"JOBDIR": str(tmp_path / "job"), "TMAPI_CONCURRENCY_START": 1}
    first = crawl(
        sim.url,
        {"cat_id": "63,64"},
        {**job, "TMAPI_MAX_CALLS": 7},
        output_name="first.jsonl",
    )
    assert first.returncode == 4, first.log[-3000:]
    calls = sim.calls()
    assert len(calls) == 7
    # Every answer in flight was exported.
    assert len(first.items) == sum(c["items"] for c in calls)
    summary = summary_of(first)
    assert summary["finish_reason"] == "tmapi_budget_exhausted"
    assert summary["calls"] == 7 and summary["max_calls"] == 7
    assert "Resume with the same command" in summary["next_steps"][0]

    second = crawl(sim.url, {"cat_id": "63,64"}, job, output_name="second.jsonl")
    assert second.returncode == 0, second.log[-3000:]
    pages = Counter((c["cat_id"], c["page"]) for c in sim.calls())
    assert max(pages.values()) == 1  # no page paid for twice
    assert len(pages) == 3 + 16
    catalog = Catalog(seed=0, sizes={63: 45, 64: 310})
    expected = {(cat, p.item_id) for cat in (63, 64) for p in catalog.expected(cat)}
    both = [(i["cat_id"], i["item_id"]) for i in first.items + second.items]
    assert sorted(both) == sorted(expected)
    summary = summary_of(second)
    assert summary["complete"] is True
    assert summary["totals"]["done"] == 19 and summary["totals"]["calls"] == 19


def test_a_dry_run_makes_one_call_per_category_and_prints_the_plan(simulator, crawl):
    sim = simulator(size=["65=45", "66=310"])
    result = crawl(
        sim.url,
        {"cat_id": "65,66,1031922", "language": "en,ru", "dry_run": "yes"},
        {"TMAPI_COST_PER_CALL": "0.01 USD"},
    )
    assert result.returncode == 0, result.log[-3000:]
    calls = sim.calls()
    assert sorted((c["cat_id"], c["params"]["language"], c["page"]) for c in calls) == [
        (cat, language, 1) for cat in (65, 66, 1031922) for language in ("en", "ru")
    ]
    assert not result.output.exists()  # no items exported, no empty file
    summary = summary_of(result)
    assert summary["dry_run"] is True
    assert {row["label"]: row["pages"] for row in summary["categories"]} == {
        f"category {cat} ({language})": pages
        for cat, pages in ((65, 3), (66, 16), (1031922, 100))
        for language in ("en", "ru")
    }
    assert "The full crawl needs 238 pages: 238 calls (2.38 USD)" in result.log
    assert "This dry run made 6 calls" in result.log


def test_the_progress_line_is_logged_when_stderr_is_not_a_terminal(simulator, crawl):
    sim = simulator(size="67=400", latency=0.05)
    settings = {
        "TMAPI_PROGRESS_INTERVAL": 0.2,
        "CONCURRENT_REQUESTS": 2,
        "TMAPI_COST_PER_CALL": "0.002 USD",
    }
    result = crawl(sim.url, {"cat_id": "67"}, settings)
    assert result.returncode == 0, result.log[-3000:]
    lines = re.findall(
        r"Progress: pages (\d+)/(\d+) done \| items (\d+) \| calls (\d+), "
        r"retries (\d+), 503 [\d.]+% \| ETA [\d:?]+ \| cost ~[\d.]+ USD",
        result.log,
    )
    assert lines
    done, planned, items, calls, _ = map(int, lines[-1])
    assert done <= planned == 20 and items <= 400 and calls <= 20

    quiet = crawl(sim.url, {"cat_id": "67"}, {**settings, "TMAPI_PROGRESS": "off"})
    assert quiet.returncode == 0
    assert "Progress: " not in quiet.log


def test_bad_operator_settings_stop_the_run_before_any_call(simulator, crawl):
    sim = simulator()
    result = crawl(
        sim.url,
        {"cat_id": "5", "dry_run": "maybe"},
        {
            "TMAPI_COST_PER_CALL": "cheap",
            "TMAPI_MAX_CALLS": "0",
            "TMAPI_PROGRESS": "loud",
        },
    )
    assert result.returncode == 2
    for named in (
        "dry_run='maybe'",
        "TMAPI_COST_PER_CALL='cheap': must be a number and a currency",
        "TMAPI_MAX_CALLS='0'",
        "TMAPI_PROGRESS='loud'",
    ):
        assert named in result.log
    assert sim.calls() == []

    with_job = crawl(sim.url, {"cat_id": "5", "dry_run": "true"}, {"JOBDIR": "j"})
    assert with_job.returncode == 2
    assert "dry_run=true with JOBDIR" in with_job.log
    assert sim.calls() == []


def test_on_a_terminal_a_live_display_and_a_table_replace_the_log_lines(
    simulator, tmp_path
):
    sim = simulator(size="68=130", latency=0.05)
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", "cat_id=68"]
    command += ["-s", f"TMAPI_BASE_URL={sim.url}", "-O", str(tmp_path / "i.jsonl")]
    command += ["-s", "TMAPI_PAGE_SIZE_PROBE=20"]  # DOCUMENTED_PAGES
    code, screen, _ = on_a_terminal(
        command, ROOT, columns=160, TMAPI_TOKEN=SENTINEL_TOKEN
    )
    assert code == 0, screen[-3000:]
    assert re.search(r"pages .* 7/7 items 130 \| calls 7", screen)
    assert "┃ category" in screen and "Run summary" in screen
    assert "Progress: " not in screen  # the display, not the log line
    assert (tmp_path / "i.summary.json").exists()


def test_a_crawl_without_redis_imports_neither_redis_nor_what_is_switched_off(
    simulator, tmp_path
):
    """redis-py (~70 ms at every start) is a distributed crawl's alone; the
    cookies middleware's tldextract and the remote control's aiohttp server
    (switched off) are imported by no crawl: the modules the crawl's process
    held at its exit, a ``scrapy crawl`` as a user runs it."""
    sim = simulator(size="5=20")
    held = tmp_path / "modules.json"
    argv = ["scrapy", "crawl", "category", "-a", "cat_id=5"]
    argv += ["-O", str(tmp_path / "items.jsonl"), "-s", f"TMAPI_BASE_URL={sim.url}"]
    script = (
        "import atexit, json, pathlib, runpy, sys\n"
        f"out = pathlib.Path({str(held)!r})\n"
        "atexit.register(lambda: out.write_text(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = {argv!r}\n"
        "runpy.run_module('scrapy', run_name='__main__')\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env = {**environ, "TMAPI_TOKEN": SENTINEL_TOKEN}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules = set(json.loads(held.read_text()))
    assert {"scrapy", "tmapi_crawler.pipelines.dedupe"} <= modules
    unwanted = {"redis", "scrapy_redis", "tldextract", "aiohttp.web"}
    assert modules & unwanted == set()
    assert len(sim.calls()) == 1  # the crawl ran: one page of 20
