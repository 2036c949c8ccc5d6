"""The Redis client of every distributed part: scrapy-redis's, failing fast."""

from __future__ import annotations

import pytest
import redis
from scrapy.settings import Settings

from tmapi_crawler.distributed.connection import connect_from, safe_url


def test_a_password_stays_out_of_log_lines():
    assert safe_url("redis://user:secret@host:6379/0") == "redis://***@host:6379/0"


def client(url: str, **params) -> redis.Redis:
    return connect_from(Settings({"REDIS_URL": url, "REDIS_PARAMS": params}))


def test_redis_params_reach_the_client(redis_server):
    named = client(redis_server.url, client_name="worker-7")
    named.ping()
    names = [c["name"] for c in redis_server.client().client_list()]
    assert "worker-7" in names


def test_a_command_redis_does_not_answer_fails_and_is_not_sent_again(redis_server):
    """scrapy-redis's own defaults retry on a timeout; the project's client
    gives the error to its caller at once (the scheduler rides out outages)."""
    worker = client(redis_server.url, socket_timeout=0.3)  # REDIS_PARAMS wins
    worker.ping()
    admin = redis_server.client()
    connections = admin.info("stats")["total_connections_received"]
    admin.execute_command("CLIENT", "PAUSE", 5000, "WRITE")  # Redis hangs
    try:
        with pytest.raises(redis.TimeoutError):
            worker.set("key", "value")
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    assert admin.info("stats")["total_connections_received"] == connections
    assert admin.get("key") is None
