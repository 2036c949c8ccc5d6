"""The adaptive window of calls in flight, on its own (no Scrapy, no server).

:func:`crawl` plays a crawl against a model of the account: calls arrive at
once, the account answers 503 to each call above its cap (at once, or after
the call's latency: API.md does not say which), the others after their
latency. The crawl-level behaviour (real crawls against a capped simulator)
is in tests/crawls/test_errors.py and bench/ (benchmark 2).
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from tmapi_crawler.contract.concurrency import MAX_PROBE_AFTER, Call, ConcurrencyWindow

MODES = ("at-once", "after-latency")


@dataclass
class Played:
    """What a model crawl did."""

    sent: int = 0
    throttled: list[Call] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # the window at each send
    # (level, proven then, levels of the calls unanswered then) at each send
    sends: list[tuple[int, int, list[int]]] = field(default_factory=list)
    finished: float = 0.0


def crawl(
    window: ConcurrencyWindow,
    cap: int,
    calls: int,
    mode: str = "at-once",
    latency: float = 0.2,
    jitter: float = 0.0,
    seed: int = 0,
    raise_cap_at: tuple[int, int] | None = None,  # (after this many calls, new cap)
    start: float = 0.0,  # the clock at the start (a window's clock never runs back)
) -> Played:
    """Send *calls* successful calls (a refused call is sent again) through
    *window* against an account capped at *cap*."""
    rng = random.Random(seed)
    played = Played()
    events: list[tuple[float, int, Call, bool]] = []  # (time, seq, call, refused)
    at_server = 0
    unanswered: dict[int, Call] = {}
    in_use, done, now = 0, 0, start
    while done < calls:
        while in_use < calls - done and window.may_send(in_use):
            levels = sorted(c.level for c in unanswered.values())
            played.sends.append((in_use + 1, window.proven, levels))
            call = window.sent(in_use, now)
            played.sizes.append(window.size)
            in_use += 1
            unanswered[call.seq] = call
            played.sent += 1
            at_server += 1
            if raise_cap_at and played.sent >= raise_cap_at[0]:
                cap = raise_cap_at[1]
            refused = at_server > cap
            took = 0.0 if refused and mode == "at-once" else latency
            took += rng.uniform(0, jitter) if took else 0.0
            heapq.heappush(events, (now + took, call.seq, call, refused))
        now, _, call, refused = heapq.heappop(events)
        at_server -= 1
        in_use -= 1
        del unanswered[call.seq]
        if refused:
            played.throttled.append(call)
            window.on_throttle(call, now, call.level)
        else:
            done += 1
            window.on_success(call, now)
        window.settle(call)
    played.finished = now
    return played


def test_without_a_cap_a_first_run_climbs_to_the_ceiling_in_three_rounds():
    window = ConcurrencyWindow(ceiling=16, start=4)
    played = crawl(window, cap=100, calls=200)
    assert played.throttled == []
    # one probe above the start, then tripling while nothing refused: 5, 15, 16
    steps = sorted(set(played.sizes))
    assert steps == [5, 15, 16]
    assert played.sizes.index(16) < 1 + 5 + 15 + 16
    assert window.proven == 16


def _changes(sizes: list[int]) -> list[int]:
    return [size for i, size in enumerate(sizes) if i == 0 or sizes[i - 1] != size]


def test_a_cap_within_the_first_climb_costs_each_level_above_it_one_503():
    window = ConcurrencyWindow(ceiling=64, start=4, probe_after=4)
    played = crawl(
        window, cap=8, calls=300, mode="after-latency", raise_cap_at=(60, 40)
    )
    sizes = _changes(played.sizes)
    assert sizes[:3] == [5, 15, 8]
    first = [call.level for call in played.throttled[:7]]
    assert first == list(range(9, 16))
    # once refused, the window no longer triples: a limit raised later is
    # found by probing one, two, four, eight... levels more
    assert window.climbing is False
    runs, run = [], [sizes[0]]
    for size in sizes[1:]:
        run = [*run, size] if size > run[-1] else [size]
        runs.append(run)
    climb = max(runs, key=len)  # the longest climb: to the raised limit
    steps = [b - a for a, b in itertools.pairwise(climb)]
    assert steps[:4] == [1, 2, 4, 8]


def test_a_remembered_limit_is_not_climbed_by_tripling():
    window = ConcurrencyWindow(ceiling=64, start=4, remembered=8)
    assert window.climbing is False


def test_calls_prove_a_level_together_whatever_order_they_are_read_in():
    window = ConcurrencyWindow(ceiling=16, start=4)
    first, second = window.sent(0, 0.0), window.sent(1, 0.001)
    window.on_success(second, 0.2)  # the first one's answer is still out
    assert window.proven == 1
    window.on_success(first, 0.201)
    assert window.proven == 2  # both held, in flight together


def test_a_call_refused_proves_no_level_for_the_calls_beside_it():
    """Calls sent at once reach the server in any order: the one sent first
    may come last and be refused, the others then had it in flight beside
    them at the server, but the account did not hold it."""
    window = ConcurrencyWindow(ceiling=16, start=2)  # levels 1, 2, 3
    calls = [window.sent(n, 0.0001 * n) for n in range(3)]
    window.on_success(calls[2], 0.2)
    window.on_success(calls[1], 0.2)
    window.on_throttle(calls[0], 0.2, in_flight_at_send=1)
    assert window.proven <= 2 and window.peak == 2


def test_an_answer_read_late_counts_from_when_it_came_back():
    """A busy process reads an answer late; the call was over at the server
    when its answer came back, and proves nothing for calls sent after."""
    window = ConcurrencyWindow(ceiling=16, start=4)
    first = window.sent(0, 0.0)
    second = window.sent(1, 0.1)  # level 2, while the first was in flight
    window.arrived(first, 0.11)  # the first one's answer is back, not read
    window.on_success(second, 0.3)
    window.on_success(first, 0.35)  # read at last
    assert window.proven == 1  # at the server, the two were never together


def test_a_remembered_limit_is_where_the_window_starts_proven():
    window = ConcurrencyWindow(ceiling=16, start=4, remembered=12)
    assert (window.size, window.proven) == (12, 12)
    played = crawl(window, cap=12, calls=12)
    assert played.throttled == [] and window.probes == 0
    # a remembered limit above the ceiling is clipped to it
    assert ConcurrencyWindow(ceiling=8, remembered=12).size == 8


@given(
    cap=st.integers(1, 12),
    ceiling=st.integers(1, 24),
    start=st.integers(1, 16),
    mode=st.sampled_from(MODES),
    jitter=st.sampled_from([0.0, 0.05, 0.3]),
    seed=st.integers(0, 1000),
)
def test_a_probe_costs_one_503_however_the_503_arrives(
    cap, ceiling, start, mode, jitter, seed
):
    window = ConcurrencyWindow(ceiling=ceiling, start=start, probe_after=8)
    played = crawl(window, cap, 400, mode=mode, jitter=jitter, seed=seed)
    # the property itself: never a second call at a level not yet proven
    # while a call at that level is unanswered
    for level, proven, unanswered in played.sends:
        assert level <= proven or level not in unanswered
    # so every 503 is a probe's, one per probe
    assert all(call.probe for call in played.throttled)
    assert len(played.throttled) <= window.probes
    # and never proves more than the cap; without jitter (calls overlapping
    # clearly) it ends at the cap (or the ceiling), or probing one above
    limit = min(cap, ceiling)
    assert window.proven <= limit and window.size <= min(ceiling, limit + 1)
    if not jitter:
        assert limit <= window.size


@given(mode=st.sampled_from(MODES), seed=st.integers(0, 100))
def test_a_steady_cap_costs_few_503s_and_probes_ever_more_rarely(mode, seed):
    """At a steady cap of 4, one 503 on the first probe, then one per probe,
    each probe waiting twice as long as the one before (64, 128, ...)."""
    window = ConcurrencyWindow(ceiling=32, start=4, probe_after=32)
    played = crawl(window, cap=4, calls=60, mode=mode, jitter=0.02, seed=seed)
    assert len(played.throttled) == 1  # 60 pages: under 3% of calls
    played = crawl(
        window,
        cap=4,
        calls=4000,
        mode=mode,
        jitter=0.02,
        seed=seed,
        start=played.finished,
    )
    # probes after 64, 128, ... successes: about 6 fit in 4,000 calls
    assert len(played.throttled) <= 7
    assert window.wait == MAX_PROBE_AFTER or window.wait >= 2048 // 32


def test_the_wait_between_probes_is_bounded():
    window = ConcurrencyWindow(ceiling=32, start=4, probe_after=32)
    crawl(window, cap=4, calls=40_000, latency=0.01)
    assert window.wait == MAX_PROBE_AFTER


def test_a_limit_raised_mid_crawl_is_found():
    window = ConcurrencyWindow(ceiling=32, start=4, probe_after=8)
    played = crawl(window, cap=4, calls=1000, raise_cap_at=(300, 10))
    assert window.proven == 10
    # probes at 5 meeting the old cap, then one over the new one
    assert len(played.throttled) <= 12


def test_a_lone_503_far_below_the_limit_halves_the_window_once():
    window = ConcurrencyWindow(ceiling=16, start=16, remembered=16)
    calls = [window.sent(n, 1.0) for n in range(16)]
    window.on_throttle(calls[0], 1.1, in_flight_at_send=1)  # a hiccup
    assert (window.size, window.proven) == (8, 8)
    window.on_throttle(calls[1], 1.2, in_flight_at_send=2)  # sent before the cut
    assert window.size == 8


def test_a_refused_probe_is_cut_and_not_sent_again_until_the_wait():
    window = ConcurrencyWindow(ceiling=16, start=4, probe_after=32, remembered=4)
    window.held = False
    window.size = 5
    calls = [window.sent(n, 0.0) for n in range(5)]
    assert calls[4].probe and not window.may_send(4)  # level 5 taken, unanswered
    window.on_throttle(calls[4], 0.01, in_flight_at_send=5)
    window.settle(calls[4])
    assert window.size == 4 and window.wait == 64 and window.held
    assert not window.may_send(4)
