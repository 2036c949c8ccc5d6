"""The API's error contract in real crawls against the simulator."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import SENTINEL_TOKEN, stat

FAST = {"TMAPI_BACKOFF_BASE": 0.05, "TMAPI_BACKOFF_MAX": 0.2}


def calls_for(sim, cat_id, page):
    return [c for c in sim.calls() if (c["cat_id"], c["page"]) == (cat_id, page)]


def assert_token_kept_secret(result):
    assert SENTINEL_TOKEN not in result.log
    if result.output.exists():
        assert SENTINEL_TOKEN not in result.output.read_text()


def test_temporary_faults_are_retried_until_the_page_arrives(simulator, crawl):
    faults = "503,499,417,500,truncated,html502"
    sim = simulator(size="41=60", fault=f"41:2={faults}")
    result = crawl(sim.url, {"cat_id": "41"}, FAST)
    assert result.returncode == 0, result.log[-3000:]
    assert len({i["item_id"] for i in result.items}) == 60
    outcomes = [c["outcome"] for c in calls_for(sim, 41, 2)]
    assert outcomes == [f"fault:{kind}" for kind in faults.split(",")] + ["ok"]
    assert Counter(c["page"] for c in sim.calls()) == {1: 1, 2: 7, 3: 1}
    assert "Retrying page 2 of category 41 (en)" in result.log
    assert_token_kept_secret(result)


@pytest.mark.parametrize("style", ["status", "body", "both"])
@pytest.mark.parametrize("code", ["503", "499", "417", "500"])
def test_each_code_in_each_style_is_retried_once(simulator, crawl, code, style):
    sim = simulator(size="42=40", fault=f"42:2={code}@{style}")
    result = crawl(sim.url, {"cat_id": "42"}, FAST)
    assert result.returncode == 0, result.log[-3000:]
    assert len({i["item_id"] for i in result.items}) == 40
    assert [c["outcome"] for c in calls_for(sim, 42, 2)] == [f"fault:{code}", "ok"]


@pytest.mark.parametrize("breakage", ["dataloss", "reset", "empty", "garbage"])
def test_broken_transfers_and_bodies_are_retried(simulator, crawl, breakage):
    sim = simulator(size="43=40", fault=f"43:2={breakage}")
    result = crawl(sim.url, {"cat_id": "43"}, FAST)
    assert result.returncode == 0, result.log[-3000:]
    assert len({i["item_id"] for i in result.items}) == 40
    assert len(calls_for(sim, 43, 2)) == 2
    assert_token_kept_secret(result)


def test_a_timeout_is_retried(simulator, crawl):
    sim = simulator(size="44=40", fault="44:2=timeout", timeout_delay=3)
    result = crawl(sim.url, {"cat_id": "44"}, {**FAST, "DOWNLOAD_TIMEOUT": 1})
    assert result.returncode == 0, result.log[-3000:]
    assert len({i["item_id"] for i in result.items}) == 40
    assert "TimeoutError" in result.log or "took longer" in result.log
    assert_token_kept_secret(result)


def test_retries_stop_at_the_configured_number_per_reason(simulator, crawl, tmp_path):
    sim = simulator(size="45=60", fault="45:2=500*")
    failed_file = tmp_path / "failed.jsonl"
    settings = {
        **FAST,
        "TMAPI_MAX_RETRIES": json.dumps({"temporary": 2}),
        "TMAPI_FAILED_PAGES_FILE": str(failed_file),
    }
    result = crawl(sim.url, {"cat_id": "45"}, settings)
    assert result.returncode == 3  # incomplete
    assert len(calls_for(sim, 45, 2)) == 3  # the call and two retries
    assert len({i["item_id"] for i in result.items}) == 40
    failed = [json.loads(line) for line in failed_file.read_text().splitlines()]
    assert [(f["cat_id"], f["page"]) for f in failed] == [(45, 2)]
    assert "gave up after 3 attempts" in failed[0]["reason"]
    assert "Page 2 of category 45" in result.log


@pytest.mark.parametrize("style", ["status", "body"])
def test_a_parameter_error_fails_its_page_only_and_is_never_retried(
    simulator, crawl, tmp_path, style
):
    sim = simulator(size="46=100", fault=f"46:3=422@{style}")
    failed_file = tmp_path / "failed.jsonl"
    result = crawl(
        sim.url, {"cat_id": "46"}, {**FAST, "TMAPI_FAILED_PAGES_FILE": str(failed_file)}
    )
    assert result.returncode == 3
    assert len(calls_for(sim, 46, 3)) == 1
    pages = Counter(i["page"] for i in result.items)
    assert sorted(pages) == [1, 2, 4, 5] and all(n == 20 for n in pages.values())
    line = next(
        line for line in result.log.splitlines() if "Page 3 of category 46" in line
    )
    assert "422" in line and "cat_id=46" in line and "page=3" in line
    assert json.loads(failed_file.read_text())["page"] == 3
    assert_token_kept_secret(result)


@pytest.mark.parametrize("style", ["status", "body", "both"])
def test_persistent_439_stops_the_crawl_after_the_configured_probes(
    simulator, crawl, style
):
    sim = simulator(size="47=100", fault=f"*:*=439@{style}*")
    settings = {"TMAPI_BALANCE_RETRIES": 2, "TMAPI_BALANCE_RETRY_DELAY": 0.5}
    result = crawl(sim.url, {"cat_id": "47"}, settings)
    assert result.returncode == 4  # stopped before the end
    assert "'finish_reason': 'tmapi_insufficient_balance'" in result.log
    assert "Top up the account" in result.log
    assert len(sim.calls()) == 3  # the first call and two probes, nothing after
    assert_token_kept_secret(result)


def test_a_439_that_clears_lets_the_crawl_finish(simulator, crawl):
    sim = simulator(size="48=60", fault="48:1=439,439")
    settings = {"TMAPI_BALANCE_RETRIES": 3, "TMAPI_BALANCE_RETRY_DELAY": 0.3}
    result = crawl(sim.url, {"cat_id": "48"}, settings)
    assert result.returncode == 0, result.log[-3000:]
    assert len({i["item_id"] for i in result.items}) == 60
    assert len(sim.calls()) == 5  # page 1 three times, then pages 2 and 3


@pytest.mark.parametrize("placement", ["query", "header"])
def test_a_rejected_token_stops_the_crawl_at_the_first_answer(
    simulator, crawl, placement
):
    sim = simulator(size=["49=200", "50=200"], token="the-right-token", latency=0.2)
    result = crawl(sim.url, {"cat_id": "49,50"}, {"TMAPI_TOKEN_PLACEMENT": placement})
    assert result.returncode == 4
    assert "'finish_reason': 'tmapi_bad_token'" in result.log
    assert "Check TMAPI_TOKEN" in result.log
    calls = sim.calls()
    first_answer = min(c["t"] + c["dt"] for c in calls)
    assert all(c["t"] <= first_answer for c in calls)  # nothing sent after it
    assert len(calls) == 2  # the two page-1 calls already in flight
    assert_token_kept_secret(result)


def test_a_capped_account_settles_near_its_limit(simulator, crawl):
    sim = simulator(size=["51=2000", "52=1000"], latency=0.1, max_concurrency=4)
    result = crawl(sim.url, {"cat_id": "51,52"}, {"CONCURRENT_REQUESTS": 32})
    assert result.returncode == 0, result.log[-3000:]
    assert len({i["item_id"] for i in result.items}) == 3000
    calls = sim.calls()
    start = calls[0]["t"]
    later = [c for c in calls if c["t"] > start + 2]
    throttled = sum(c["status"] == 503 for c in later)
    assert later and throttled / len(later) < 0.05
    assert max(c["in_flight"] for c in calls if c["status"] == 200) == 4
    assert_token_kept_secret(result)


@pytest.mark.parametrize("cap_answer", ["at-once", "after-latency"])
def test_each_probe_of_the_window_costs_one_503_however_it_comes_back(
    simulator, crawl, cap_answer
):
    """A 60-page crawl at a cap of 4: however late the 503 comes, no second
    call goes out at a number in flight that has not yet held."""
    sim = simulator(
        size="53=1200", latency=0.2, max_concurrency=4, cap_answer=cap_answer
    )
    result = crawl(sim.url, {"cat_id": "53"}, {"CONCURRENT_REQUESTS": 32})
    assert result.returncode == 0, result.log[-3000:]
    assert len({i["item_id"] for i in result.items}) == 1200
    refused = [c for c in sim.calls() if c["status"] == 503]
    probes = stat(result.log, "tmapi/concurrency/probes")
    assert 1 <= len(refused) <= probes
    # the first probe above 4 meets the cap; the next waits 64 successes
    assert len(refused) == 1, refused
    assert stat(result.log, "tmapi/concurrency/current") == 4
