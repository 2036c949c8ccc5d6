"""One window of calls in flight per account, shared in a real Redis."""

from __future__ import annotations

import time

import redis

from tmapi_crawler.contract.credentials import token_key
from tmapi_crawler.distributed.window import SharedWindow


def window(server, account="account-a", lease=30.0, **options) -> SharedWindow:
    client = redis.Redis.from_url(server.url)
    return SharedWindow(client, account, lease=lease, ceiling=16, **options)


def take_all(worker: SharedWindow, in_use: int = 0):
    taken = []
    while (call := worker.take(in_use + len(taken), 0.0)) is not None:
        taken.append(call)
    return taken


def test_workers_on_one_account_share_its_window(redis_server):
    one, two = window(redis_server, remembered=3), window(redis_server)
    first = [one.take(0, 0.0), one.take(1, 0.0)]
    assert [c.level for c in first if c] == [1, 2]
    assert two.take(0, 0.0).level == 3  # counted over both workers
    assert two.take(1, 0.0) is None  # the account's window is full
    one.on_success(first[0], 0.0)
    assert two.take(1, 0.0) is not None


def test_accounts_have_windows_of_their_own(redis_server):
    keys = [token_key("token-of-a-1234"), token_key("token-of-b-5678")]
    a, b = (window(redis_server, key, remembered=2) for key in keys)
    assert len(take_all(a)) == 2 and len(take_all(b)) == 2
    client = redis.Redis.from_url(redis_server.url)
    assert {k.decode() for k in client.keys("tmapi:account:*:places")} == {
        f"tmapi:account:{key}:places" for key in keys
    }


def test_no_second_call_at_an_unproven_level_whichever_worker_sends_it(redis_server):
    # a window of 3, only level 1 proven
    one, two = window(redis_server, start=2), window(redis_server, start=2)
    taken = [one.take(0, 0.0), one.take(1, 0.0), two.take(0, 0.0)]
    assert [c.level for c in taken] == [1, 2, 3] and taken[2].probe
    one.settle(taken[0])  # a place is free, but the next call would be at 3,
    assert two.take(1, 0.0) is None  # where the probe is still unanswered
    time.sleep(0.05)
    one.on_success(taken[1], 0.0)  # alone: it proves level 1 only
    assert one.proven == 1
    time.sleep(0.05)
    # the probe held, and so did the call at level 2, in flight with it (the
    # one at level 1 ended without an answer): level 2 is proven, not 3
    two.on_success(taken[2], 0.0)
    assert two.proven == 2
    assert two.take(0, 0.0).level == 1


def test_a_call_whose_answer_was_read_late_proves_no_level_it_never_had(
    redis_server,
):
    # a worker busy elsewhere reads its answer late: its place stays taken
    # (no second call at its level yet), but it was over at the server
    one, two = window(redis_server, start=2), window(redis_server, start=2)
    first = one.take(0, 0.0)
    time.sleep(0.05)
    one.arrived(first, time.monotonic())  # back, not read yet
    time.sleep(0.01)
    second = two.take(0, 0.0)
    assert second.level == 2  # counted over both workers
    time.sleep(0.3)
    two.on_success(second, 0.0)
    one.on_success(first, 0.0)  # read at last, 0.3 s after it came back
    assert one.proven == two.proven == 1  # the two were never clearly together


def test_calls_of_two_workers_sent_at_once_prove_their_level_in_any_order(
    redis_server,
):
    one, two = window(redis_server, start=2), window(redis_server, start=2)
    calls = [one.take(0, 0.0), two.take(0, 0.0)]
    time.sleep(0.1)
    two.on_success(calls[1], 0.0)  # read first: the other is still out
    assert two.proven == 1
    one.on_success(calls[0], 0.0)
    assert one.proven == 2


def test_a_killed_workers_places_come_back_when_their_lease_expires(redis_server):
    killed = window(redis_server, lease=0.5, remembered=4)
    assert len(take_all(killed)) == 4  # and then it dies holding them
    other = window(redis_server, lease=30.0)
    assert other.take(0, 0.0) is None
    time.sleep(0.7)
    assert len(take_all(other)) == 4


def test_what_one_worker_learns_the_others_apply(redis_server):
    one, two = window(redis_server, remembered=4), window(redis_server)
    one.held = False
    calls = take_all(one)
    assert len(calls) == 4
    one._update(lambda: setattr(one, "size", 5))  # probing one above
    probe = two.take(0, 0.0)
    assert probe.level == 5 and probe.probe
    two.on_throttle(probe, 0.0, in_flight_at_send=1)
    assert one.take(4, 0.0) is None  # level 5 refuted for the whole account
    one._load(one.client.hgetall(one.keys["state"]))
    assert (one.size, one.proven, one.held) == (4, 4, True)


def test_past_the_opening_window_the_account_has_one_probe_at_a_time(redis_server):
    one, two = window(redis_server, start=2), window(redis_server, start=2)
    one.settle(one.take(0, 0.0))  # the account's state is set
    # a window grown past what is proven (climbing): 8 wide, 3 proven
    client = redis.Redis.from_url(redis_server.url)
    client.hset(one.keys["state"], mapping={"size": 8, "proven": 3})
    taken = take_all(one)
    assert [c.level for c in taken] == [1, 2, 3, 4]  # one probe, above 3
    assert take_all(two, in_use=0) == []  # not a second, whichever worker
    one.settle(taken[3])  # the probe is answered: the next may go
    assert [c.level for c in take_all(two)] == [4]
