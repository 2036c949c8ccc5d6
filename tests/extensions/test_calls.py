"""Calls in flight in-process (:class:`CallsInFlight`), as the add-on wires it:
the error middleware reports each answer to it and it alone moves the
window, opens the downloader slot, and reads and keeps the learned limit.
The same in real crawls: tests/crawls/test_learned_limit.py,
tests/crawls/test_operating.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answers import a_page, another, answer
from tests.conftest import SENTINEL_TOKEN
from tmapi_crawler.contract import limits
from tmapi_crawler.contract.credentials import token_key
from tmapi_crawler.contract.stats import CONCURRENCY_LEARNED, CONCURRENCY_REMEMBERED
from tmapi_crawler.downloadermiddlewares.errors import TMAPIErrorMiddleware
from tmapi_crawler.extensions.calls import SLOT, CallsInFlight
from tmapi_crawler.meta import PERMIT

pytestmark = pytest.mark.timeout(60)


KEY = token_key(SENTINEL_TOKEN)


def limits_file(tmp_path: Path, limit: int) -> Path:
    path = tmp_path / "limits.json"
    limits.write_limit(path, KEY, limit)
    return path


def test_the_window_starts_at_the_remembered_limit_and_keeps_what_held(
    open_crawler, tmp_path
):
    path = limits_file(tmp_path, limit=6)
    crawler = open_crawler(
        {
            "TMAPI_LIMITS_FILE": str(path),
            "TMAPI_REMEMBER_LIMIT": True,
            "TMAPI_MAX_CONCURRENCY": 16,
        }
    )
    calls = CallsInFlight.of(crawler.crawler)
    assert calls.remembered == 6 and calls.window.proven == 6
    assert calls.where == f"{path}, entry {KEY}"
    middleware = crawler.downloader_middleware(TMAPIErrorMiddleware)
    assert middleware.calls is calls  # the middleware reports, it owns nothing
    (page_1,) = crawler.start_requests()
    crawler.run(middleware.process_request, page_1)
    assert page_1.meta[PERMIT] is not None and page_1.meta["download_slot"] == SLOT
    downloader = crawler.crawler.engine.downloader
    assert downloader.per_slot_settings[SLOT]["concurrency"] == 16
    assert downloader.total_concurrency >= 32  # a successor ready for each call
    crawler.run(middleware.process_response, page_1, a_page(page_1))
    assert calls.learned == 6  # what held, told by the answer
    crawler.close()
    stats = crawler.stats
    assert stats[CONCURRENCY_REMEMBERED] == 6 and stats[CONCURRENCY_LEARNED] == 6
    assert limits.read_limit(path, KEY) == 6


def test_a_503_shrinks_the_window_and_the_smaller_limit_is_kept(open_crawler, tmp_path):
    path = limits_file(tmp_path, limit=8)
    crawler = open_crawler(
        {
            "TMAPI_LIMITS_FILE": str(path),
            "TMAPI_REMEMBER_LIMIT": True,
            "TMAPI_MAX_CONCURRENCY": 16,
            "TMAPI_BACKOFF_BASE": 0.01,
            "TMAPI_BACKOFF_MAX": 0.02,
        }
    )
    calls = CallsInFlight.of(crawler.crawler)
    middleware = crawler.downloader_middleware(TMAPIErrorMiddleware)
    (page_1,) = crawler.start_requests()
    requests = [page_1, *(another(page_1, n) for n in range(2, 5))]
    for request in requests:
        crawler.run(middleware.process_request, request)
    assert calls.window.size >= 8  # proven by the last run
    refused = requests[-1]
    retry = crawler.run(middleware.process_response, refused, answer(refused, 503))
    assert retry is not refused  # retried, by the error contract
    assert calls.window.size < 8 and calls.learned == calls.window.proven < 8
    crawler.close()
    assert limits.read_limit(path, KEY) == calls.learned


def test_nothing_is_remembered_when_switched_off(open_crawler, tmp_path):
    path = limits_file(tmp_path, limit=6)
    crawler = open_crawler(
        {"TMAPI_LIMITS_FILE": str(path), "TMAPI_REMEMBER_LIMIT": False}
    )
    calls = CallsInFlight.of(crawler.crawler)
    assert calls.remembered is None and calls.where is None
    crawler.close()
    assert CONCURRENCY_LEARNED not in crawler.stats
    assert limits.read_limit(path, KEY) == 6  # left as it was
