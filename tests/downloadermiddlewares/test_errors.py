"""The error contract in-process: the error middleware as the add-on wires it,
handed answers built by hand (``scrapy.http.TextResponse``), as Scrapy tests
its own retry middleware. Every TMAPI code, given as the HTTP status, as the
JSON body's ``code``, or both, maps to one decision:

* retry: a new Request is returned, a copy without the token, with its retry
  counts and the end of its backoff in meta;
* fail: ``PageFailed``, the page is given up and never retried;
* hold (439): every call waits, then one call probes;
* stop (401/403): ``CrawlStopped``, the crawl closes with ``tmapi_bad_token``.

The same contract in real crawls against the simulator:
tests/crawls/test_errors.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from scrapy import Request
from scrapy.exceptions import (
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response, TextResponse
from twisted.internet.error import ConnectionLost

from tests.answers import a_page, another, answer, raw_answer
from tests.conftest import SENTINEL_TOKEN
from tmapi_crawler import signals
from tmapi_crawler.contract.api import CategoryInfo
from tmapi_crawler.contract.endpoints import CATEGORY_INFO
from tmapi_crawler.contract.outcome import BAD_TOKEN, NO_BALANCE
from tmapi_crawler.downloadermiddlewares.errors import TMAPIErrorMiddleware
from tmapi_crawler.exceptions import CrawlStopped, PageFailed
from tmapi_crawler.meta import (
    ANSWER,
    ATTEMPT_KEYS,
    MAX_RETRIES,
    NOT_BEFORE,
    PROBE,
    RETRIES,
)

pytestmark = pytest.mark.timeout(60)

# Retries wait for their backoff before they are sent: short ones here.
QUICK = {"TMAPI_BACKOFF_BASE": 0.01, "TMAPI_BACKOFF_MAX": 0.02}
STYLES = ("status", "body", "both")


class Contract:
    """The error middleware of an opened crawler, and page 1 of its category."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.middleware = crawler.downloader_middleware(TMAPIErrorMiddleware)
        (self.page_1,) = crawler.start_requests()

    def send(self, request: Request) -> None:
        """What the middleware does before a call: returns once the call may
        go out (after its backoff, a hold, a place among the calls in flight),
        or raises why it may not."""
        return self.crawler.run(self.middleware.process_request, request)

    def sending(self, request: Request) -> asyncio.Task[None]:
        """``send`` started and left running (the test drives the loop)."""
        return self.crawler.loop.create_task(self.middleware.process_request(request))

    def read(self, request: Request, response: Response) -> Any:
        """What the middleware makes of *response*: the response, a retry, or
        the exception it raises."""
        return self.crawler.run(self.middleware.process_response, request, response)

    def call(self, request: Request, code: int, style: str = "both") -> Any:
        """*request* sent and answered *code*: what the middleware makes of it."""
        self.send(request)
        return self.read(request, answer(request, code, style))

    def fail(self, request: Request, exception: Exception) -> Any:
        self.send(request)
        return self.crawler.run(self.middleware.process_exception, request, exception)

    def wait(self, seconds: float) -> None:
        self.crawler.run(asyncio.sleep, seconds)

    @property
    def stats(self) -> dict[str, Any]:
        return self.crawler.stats


@pytest.fixture
def contract(open_crawler: Any) -> Any:
    """``contract(**settings)``: a :class:`Contract` of a fresh crawler."""
    return lambda **settings: Contract(open_crawler(settings))


def assert_no_token(request: Request) -> None:
    text = repr((request.url, request.headers, request.meta, request.body))
    assert SENTINEL_TOKEN not in text


def assert_a_retry(
    contract: Contract, retry: Any, request: Request, reason: str, count: int = 1
) -> None:
    assert isinstance(retry, Request) and retry is not request
    assert retry.url == request.url and retry.dont_filter
    assert retry.meta[RETRIES][reason] == count
    assert retry.meta[NOT_BEFORE] > request.meta.get(NOT_BEFORE, 0)  # a backoff
    assert not ATTEMPT_KEYS & set(retry.meta)  # nothing of the attempt answered
    assert_no_token(retry)
    assert contract.stats[f"tmapi/retry/reason_count/{reason}"] >= 1


# --- the decision table ---------------------------------------------------------------

DECISIONS = {
    417: "retry",  # temporary upstream failure
    499: "retry",  # upstream timeout
    500: "retry",  # server error
    503: "retry",  # too many calls in flight
    422: "fail",  # the request is wrong: retrying cannot help
    439: "hold",  # the account cannot pay
    401: "stop",  # the token is refused
    403: "stop",
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("code", list(DECISIONS))
def test_each_code_in_each_style_maps_to_its_decision(contract, code, style):
    calls = contract(TMAPI_BALANCE_RETRY_DELAY=300)
    page_1 = calls.page_1
    decision = DECISIONS[code]
    if decision == "retry":
        assert_a_retry(calls, calls.call(page_1, code, style), page_1, str(code))
    elif decision == "fail":
        with pytest.raises(PageFailed, match=f"TMAPI error {code} .*not retried"):
            calls.call(page_1, code, style)
        assert calls.stats[f"tmapi/gave_up/{code}"] == 1
        assert "tmapi/retry/count" not in calls.stats
    elif decision == "hold":
        assert_a_retry(calls, calls.call(page_1, code, style), page_1, "439")
        held = calls.sending(another(page_1, 2))
        calls.wait(0.05)
        assert not held.done()  # every call waits out the hold (300 s here)
        held.cancel()
    else:
        with pytest.raises(CrawlStopped):
            calls.call(page_1, code, style)
        assert calls.crawler.closed() == BAD_TOKEN
    assert calls.stats[f"tmapi/response/{code}"] == 1


@pytest.mark.parametrize(
    ("status", "body", "decision"),
    [
        # the answer seen without a key: HTTP 401, a 401x code, "message"
        (401, {"code": 4011, "message": "no API key found in request"}, "stop"),
        (200, {"code": 4011, "msg": "bad key"}, "stop"),
        (429, {"code": 429, "msg": "too many requests"}, "retry"),
        (502, {"code": 502, "msg": "bad gateway"}, "retry"),
        (404, {"code": 404, "msg": "not found"}, "fail"),
        # the body's error code wins over the status, both being errors
        (503, {"code": 422, "msg": "Parameter error"}, "fail"),
        # an HTTP error wins over a body that claims success
        (500, {"code": 200, "msg": "success", "data": {}}, "retry"),
    ],
)
def test_codes_beyond_the_documented_table(contract, status, body, decision):
    calls = contract()
    page_1 = calls.page_1
    calls.send(page_1)
    response = raw_answer(page_1, json.dumps(body).encode(), status)
    if decision == "stop":
        with pytest.raises(CrawlStopped):
            calls.read(page_1, response)
        assert calls.crawler.closed() == BAD_TOKEN
    elif decision == "fail":
        with pytest.raises(PageFailed, match="not retried"):
            calls.read(page_1, response)
    else:
        assert isinstance(calls.read(page_1, response), Request)


def test_a_page_is_handed_on_with_its_parsed_answer(contract):
    calls = contract()
    page_1 = calls.page_1
    calls.send(page_1)
    response = a_page(page_1)
    assert calls.read(page_1, response) is response
    page = page_1.meta[ANSWER]
    assert page.page == 1 and len(page.items) == 3
    assert calls.stats["tmapi/response/200"] == 1


def test_a_retry_waits_a_backoff_that_doubles_up_to_the_maximum(contract):
    calls = contract(TMAPI_BACKOFF_BASE=0.02, TMAPI_BACKOFF_MAX=0.05)
    request = calls.page_1
    # each retry's backoff: between half its ceiling and its ceiling, the
    # ceiling doubling from TMAPI_BACKOFF_BASE up to TMAPI_BACKOFF_MAX
    for ceiling in (0.02, 0.04, 0.05, 0.05):
        calls.send(request)
        before = time.time()
        request = calls.read(request, answer(request, 503))
        after = time.time()
        assert request.meta[NOT_BEFORE] - before >= ceiling / 2
        assert request.meta[NOT_BEFORE] - after <= ceiling
    assert request.meta[RETRIES] == {"503": 4}


def test_after_a_stop_no_call_goes_out(contract):
    calls = contract()
    with pytest.raises(CrawlStopped):
        calls.call(calls.page_1, 401)
    later = another(calls.page_1, 2)
    with pytest.raises(CrawlStopped, match="not sent: crawl stopped"):
        calls.send(later)
    assert calls.stats["tmapi/pages/unsent"] == 1
    assert calls.crawler.closed() == BAD_TOKEN


# --- 439: the balance hold ------------------------------------------------------------


def test_after_a_439_one_probe_goes_out_and_its_page_releases_the_others(contract):
    calls = contract(**QUICK, TMAPI_BALANCE_RETRY_DELAY=0.1)
    retry = calls.call(calls.page_1, 439)
    calls.send(retry)  # once the hold is over: the probe
    assert retry.meta.get(PROBE) is True
    other = another(calls.page_1, 2)
    waiting = calls.sending(other)
    calls.wait(0.05)
    assert not waiting.done()  # the others wait for the probe's answer
    calls.read(retry, a_page(retry))
    calls.crawler.run(lambda: waiting)
    assert not other.meta.get(PROBE)


def test_a_439_that_persists_stops_the_crawl_after_the_probes(contract):
    calls = contract(**QUICK, TMAPI_BALANCE_RETRIES=2, TMAPI_BALANCE_RETRY_DELAY=0.01)
    first_probe = calls.call(calls.page_1, 439, "body")
    second_probe = calls.call(first_probe, 439, "body")
    with pytest.raises(CrawlStopped):
        calls.call(second_probe, 439, "body")
    assert first_probe.meta[PROBE] and second_probe.meta[PROBE]
    assert calls.crawler.closed() == NO_BALANCE
    assert calls.stats["tmapi/response/439"] == 3  # the call and two probes


# --- the retry limits -----------------------------------------------------------------


def test_retries_stop_at_the_limit_of_their_reason(contract):
    calls = contract(**QUICK, TMAPI_MAX_RETRIES=json.dumps({"temporary": 2}))
    first = calls.call(calls.page_1, 500)
    second = calls.call(first, 500)
    assert second.meta[RETRIES] == {"500": 2}
    with pytest.raises(PageFailed, match="gave up after 3 attempts"):
        calls.call(second, 500)
    assert calls.stats["tmapi/gave_up/500"] == 1


def test_a_codes_own_limit_wins_over_its_kinds(contract):
    limits = {"temporary": 3, "499": 1}
    calls = contract(**QUICK, TMAPI_MAX_RETRIES=json.dumps(limits))
    retry = calls.call(calls.page_1, 499)
    with pytest.raises(PageFailed, match="gave up after 2 attempts"):
        calls.call(retry, 499)
    other = calls.call(calls.call(another(calls.page_1, 2), 499), 500)
    assert other.meta[RETRIES] == {"499": 1, "500": 1}  # 500: temporary's 3


def test_every_reason_counts_toward_the_limit_per_page(contract):
    calls = contract(**QUICK, TMAPI_MAX_RETRIES_PER_PAGE=3)
    request = calls.call(calls.page_1, 503)
    request = calls.call(request, 500)
    calls.send(request)
    request = calls.read(request, raw_answer(request, b"<html>busy</html>"))
    assert request.meta[RETRIES] == {"503": 1, "500": 1, "malformed": 1}
    with pytest.raises(PageFailed, match="gave up after 4 attempts"):
        calls.fail(request, DownloadTimeoutError("took longer than 60 s"))


def test_a_request_may_carry_its_own_limits_or_refuse_retries(contract):
    calls = contract(**QUICK)
    page_1 = calls.page_1
    strict = page_1.replace(meta={**page_1.meta, MAX_RETRIES: {"temporary": 0}})
    with pytest.raises(PageFailed, match="gave up after 1 attempts"):
        calls.call(strict, 500)
    never = page_1.replace(meta={**page_1.meta, "dont_retry": True})
    with pytest.raises(PageFailed, match="not retried"):
        calls.call(never, 503)


# --- network errors and malformed bodies ----------------------------------------------


@pytest.mark.parametrize(
    "exception",
    [
        DownloadTimeoutError("took longer than 60 s"),
        DownloadConnectionRefusedError("refused"),
        ResponseDataLossError("cut short"),
        ConnectionLost("lost"),
        TimeoutError("timed out"),
    ],
    ids=lambda exception: type(exception).__name__,
)
def test_network_errors_are_retried_up_to_their_limit(contract, exception):
    calls = contract(**QUICK)
    request = calls.page_1
    for count in (1, 2, 3):  # TMAPI_MAX_RETRIES["network"]
        retry = calls.fail(request, exception)
        assert_a_retry(calls, retry, request, "network", count)
        request = retry
    with pytest.raises(PageFailed, match="gave up after 4 attempts"):
        calls.fail(request, exception)
    assert calls.stats[f"tmapi/exception/{type(exception).__name__}"] == 4


def test_other_exceptions_are_left_to_scrapy(contract):
    calls = contract()
    assert calls.fail(calls.page_1, ValueError("a bug")) is None
    assert calls.fail(calls.page_1, IgnoreRequest("dropped")) is None
    assert "tmapi/retry/count" not in calls.stats


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b"",
        b'{"code": 200, "msg": "success", "data": {"page": 1, "ite',
        bytes(range(128, 256)),
        b'{"code": "x", "data": {}}',
        b'{"code": 200, "data": [1, 2]}',
    ],
    ids=["html", "empty", "truncated", "garbage", "code", "data"],
)
def test_a_malformed_body_is_retried_up_to_its_limit(contract, body):
    calls = contract(**QUICK)
    request = calls.page_1
    for count in (1, 2, 3):  # TMAPI_MAX_RETRIES["malformed"]
        calls.send(request)
        retry = calls.read(request, raw_answer(request, body))
        assert_a_retry(calls, retry, request, "malformed", count)
        request = retry
    calls.send(request)
    with pytest.raises(PageFailed, match="gave up after 4 attempts"):
        calls.read(request, raw_answer(request, body))
    assert calls.stats["tmapi/response/malformed"] == 4


def test_requests_that_are_not_tmapi_calls_pass_untouched(contract):
    calls = contract()
    other = Request("http://127.0.0.1:9/robots.txt")
    assert calls.send(other) is None
    response = TextResponse(other.url, status=503, body=b"busy", request=other)
    assert calls.read(other, response) is response
    timeout = DownloadTimeoutError("took longer than 60 s")
    assert calls.crawler.run(calls.middleware.process_exception, other, timeout) is None
    assert not any(name.startswith("tmapi/response") for name in calls.stats)


def test_any_endpoints_answer_is_parsed_by_its_contract_and_its_problems_logged_once(
    contract, caplog
):
    """The category tree's answers take the same path as pages: parsed by the
    endpoint's parser, handed on, their problems logged in one line and counted."""
    calls = contract()
    heard: list[tuple[Any, Any]] = []

    def answer_read(request: Request, endpoint: Any, answer: Any) -> None:
        heard.append((endpoint, answer))

    calls.crawler.crawler.signals.connect(answer_read, signal=signals.answer_read)
    info = calls.crawler.crawler.spider.info_request(910)
    calls.send(info)
    children = [{"id": 911, "name": "a", "has_children": False}, {"id": "x"}, 7]
    body = json.dumps({"code": 200, "data": {"id": 910, "children": children}})
    response = raw_answer(info, body.encode())
    assert calls.read(info, response) is response
    parsed = info.meta[ANSWER]
    assert isinstance(parsed, CategoryInfo)
    assert [child.id for child in parsed.children] == [911]
    assert heard == [(CATEGORY_INFO, parsed)]
    assert calls.stats["tmapi/tree/with_problems"] == 1
    assert "tmapi/pages/with_problems" not in calls.stats
    (line,) = [r.getMessage() for r in caplog.records if "not a category" in r.message]
    assert (
        line.startswith("category info of 910: ") and line.count("not a category") == 2
    )
