"""Alert rules as ``TMAPI_ALERTS`` gives them, and the webhook's POST against
a real receiver on loopback: retried with backoff, never with the token."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SENTINEL_TOKEN
from tests.webhooks import WebhookReceiver
from tmapi_crawler.alerts.rules import problems
from tmapi_crawler.alerts.webhook import post, shown

HOOK = "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    ("rules", "said"),
    [
        ("[{", "TMAPI_ALERTS: not JSON"),
        ({"when": "new"}, "TMAPI_ALERTS: expected a list of rules"),
        ([{"when": "new"}], "TMAPI_ALERTS[0]: 'webhook' must be an http:// or"),
        ([{"when": "new", "webhook": "ftp://x/"}], "'webhook' must be an http://"),
        ([{"when": "price_drop", "webhook": HOOK}], "'percent' must be a number"),
        ([{"when": "price_below", "price": -1, "webhook": HOOK}], "'price' must be"),
        ([{"when": "new", "webhook": HOOK, "top": 0}], "'top' must be a whole"),
        ([{"when": "new", "webhook": HOOK, "colour": 1}], "unknown keys ['colour']"),
        ([{"when": "new", "webhook": HOOK, "cat_id": "x"}], "'cat_id' must be ids"),
        ([{"when": "new", "webhook": HOOK}, {"when": "new", "webhook": HOOK,
          "name": "new-0"}], "two rules have the same name"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_said_with_what_is_allowed(rules, said):
    value = rules if isinstance(rules, str) else json.dumps(rules)
    [problem] = problems(value)
    assert said in problem


def test_good_rules_have_no_problem():
    rules = [
        {"when": "price_drop", "percent": 10, "webhook": HOOK, "items": [1, 2]},
        {"when": "price_below", "price": "9.90", "webhook": HOOK, "cat_id": 5},
        {"when": "new", "super_factory": True, "seller": "x", "webhook": HOOK},
        {"when": "back", "webhook": HOOK}, {"when": "gone", "webhook": HOOK},
    ]  # fmt: skip
    assert problems(rules) == [] and problems([]) == [] and problems(None) == []


def test_a_webhook_that_fails_twice_takes_the_third_try():
    waits: list[float] = []
    with WebhookReceiver(fail_first=2) as receiver:
        error = post(receiver.url, {"text": "hi"}, attempts=3, backoff=0.5,
                     sleep=waits.append)  # fmt: skip
    assert error is None
    assert receiver.posts == 3 and receiver.bodies == [{"text": "hi"}]
    assert waits == [0.5, 1.0]  # doubled each try


def test_a_webhook_that_keeps_failing_is_said_without_its_path():
    with WebhookReceiver(500) as receiver:
        error = post(receiver.url, {"text": "hi"}, attempts=2, sleep=lambda _: None)
    assert receiver.posts == 2
    assert error == f"{shown(receiver.url)}: HTTP 500 after 2 attempt(s)"
    assert "secret-path" not in error


def test_a_message_with_the_token_is_never_sent():
    with WebhookReceiver() as receiver:
        error = post(receiver.url, {"text": f"x {SENTINEL_TOKEN}"},
                     secret=SENTINEL_TOKEN)  # fmt: skip
    assert error is not None and "token" in error
    assert receiver.posts == 0
