"""The learned limit of calls in flight is remembered between runs: real
crawls in subprocesses, against a capped simulator."""

from __future__ import annotations

import redis

from tests.conftest import SENTINEL_TOKEN, run_crawl, stat
from tmapi_crawler.contract.credentials import token_key
from tmapi_crawler.contract.limits import REDIS_KEY


def refused(calls):
    return sum(c["status"] == 503 for c in calls)


def test_a_second_run_with_the_same_token_starts_at_the_limit_the_first_found(
    simulator, crawl, tmp_path
):
    sim = simulator(size="61=400", latency=0.1, max_concurrency=3)
    first = crawl(sim.url, {"cat_id": "61"}, {"CONCURRENT_REQUESTS": 16})
    assert first.returncode == 0, first.log[-3000:]
    assert refused(sim.calls()) >= 1  # the first run met the cap to learn it
    assert stat(first.log, "tmapi/concurrency/learned") == 3
    assert "Calls in flight: started from the default start" in first.log
    state = tmp_path / "cache" / "tmapi-crawler" / "limits.json"
    assert token_key(SENTINEL_TOKEN) in state.read_text()
    assert SENTINEL_TOKEN not in state.read_text()

    before = len(sim.calls())
    second = crawl(sim.url, {"cat_id": "61"}, {"CONCURRENT_REQUESTS": 16})
    assert second.returncode == 0, second.log[-3000:]
    calls = sim.calls()[before:]
    assert stat(second.log, "tmapi/concurrency/remembered") == 3
    assert "Calls in flight: started from 3, ended at 3" in second.log
    # 20 pages at the remembered 3: no probe, not one 503
    assert refused(calls) == 0 and len(calls) == 20
    assert max(c["in_flight"] for c in calls) == 3


def test_a_job_directory_keeps_its_own_limit(simulator, crawl, tmp_path):
    sim = simulator(size="62=200", latency=0.05, max_concurrency=2)
    settings = {"JOBDIR": str(tmp_path / "job"), "CONCURRENT_REQUESTS": 8}
    result = crawl(sim.url, {"cat_id": "62"}, settings)
    assert result.returncode == 0, result.log[-3000:]
    state = tmp_path / "job" / "tmapi-limits.json"
    assert '"limit": 2' in state.read_text()
    assert SENTINEL_TOKEN not in state.read_text()
    assert not (tmp_path / "cache" / "tmapi-crawler").exists()


def test_remembering_can_be_switched_off(simulator, crawl, tmp_path):
    sim = simulator(size="63=100", latency=0.02)
    result = crawl(sim.url, {"cat_id": "63"}, {"TMAPI_REMEMBER_LIMIT": "false"})
    assert result.returncode == 0, result.log[-3000:]
    assert not (tmp_path / "cache").exists()
    assert "Calls in flight:" not in result.log


def test_with_redis_the_limit_is_kept_in_redis_for_every_worker(
    simulator, redis_server, tmp_path
):
    sim = simulator(size="64=300", latency=0.1, max_concurrency=3)
    settings = {"CONCURRENT_REQUESTS": 16, "TMAPI_IDLE_CLOSE": 1, "TMAPI_CRAWL_ID": 1}
    env = {"REDIS_URL": redis_server.url}
    first = run_crawl(tmp_path / "a", sim.url, {"cat_id": "64"}, settings, env=env)
    assert first.returncode == 0, first.log[-3000:]
    client = redis.Redis.from_url(redis_server.url)
    assert client.hget(REDIS_KEY, token_key(SENTINEL_TOKEN)) == b"3"
    assert not (tmp_path / "a" / "cache").exists()  # nothing on disk
    # another worker's run (another machine: another cache) starts there
    second = run_crawl(
        tmp_path / "b",
        sim.url,
        {"cat_id": "64"},
        {**settings, "TMAPI_CRAWL_ID": "2"},
        env=env,
    )
    assert second.returncode == 0, second.log[-3000:]
    assert stat(second.log, "tmapi/concurrency/remembered") == 3
    for key in client.keys("*"):
        dumped = client.dump(key) or b""
        assert SENTINEL_TOKEN.encode() not in key + dumped
