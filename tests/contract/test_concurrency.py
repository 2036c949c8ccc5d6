"""The adaptive window of calls in flight, on its own (no Scrapy, no server).

A round sends ``window.size`` calls at once; the account answers 503 to each
call above its cap, as the simulator does. The crawl-level behaviour (real
crawls against a capped simulator) is in test_errors.py and bench/ (benchmark 2).
"""

from __future__ import annotations

from tmapi_crawler.contract.concurrency import MAX_PROBE_AFTER, ConcurrencyWindow


def run_rounds(window: ConcurrencyWindow, cap: int, rounds: int, t0: float = 0.0):
    """Rounds of calls against an account capped at *cap*; the 503s answered
    and the window's size after each round."""
    throttled, sizes = 0, []
    for n in range(rounds):
        sent_at = t0 + n
        for in_flight in range(1, window.size + 1):
            if in_flight > cap:
                throttled += 1
                window.on_throttle(sent_at, in_flight, now=sent_at + 0.5)
            else:
                window.on_success(sent_at)
        sizes.append(window.size)
    return throttled, sizes


def test_slow_start_doubles_up_to_the_ceiling():
    window = ConcurrencyWindow(ceiling=16, start=4)
    throttled, sizes = run_rounds(window, cap=100, rounds=4)
    assert throttled == 0
    assert sizes == [8, 16, 16, 16]


def test_a_503_cuts_the_window_below_the_calls_in_flight_at_its_sending():
    window = ConcurrencyWindow(ceiling=32, start=8)
    window.on_throttle(sent_at=1.0, in_flight_at_send=6, now=1.2)
    assert window.size == 5
    # a 503 for a call sent before that cut says nothing new
    window.on_throttle(sent_at=0.5, in_flight_at_send=3, now=1.3)
    assert window.size == 5


def test_a_lone_503_at_a_low_count_halves_the_window_at_most():
    window = ConcurrencyWindow(ceiling=32, start=16)
    window.on_throttle(sent_at=1.0, in_flight_at_send=1, now=1.1)
    assert window.size == 8


def test_failed_probes_come_ever_more_rarely():
    """At a steady cap, each probe that meets it doubles the wait before the
    next: the 503s of a long crawl grow with the log of its length."""
    window = ConcurrencyWindow(ceiling=32, start=4, probe_after=32)
    throttled, sizes = run_rounds(window, cap=4, rounds=1000)  # 4,000 calls
    assert max(sizes[10:]) <= 5 and min(sizes[10:]) >= 4
    # slow start (8 sent, 4 refused) plus one refused call per probe; probes
    # wait 32, 64, 128, ... successes: about 7 fit in 4,000 calls
    assert throttled <= 4 + 8
    assert window.wait > 32
    fixed = ConcurrencyWindow(ceiling=32, start=4, probe_after=32)
    fixed_throttled = 0
    for n in range(1000):  # the same crawl if every wait were 32
        fixed.wait = 32
        fixed_throttled += run_rounds(fixed, cap=4, rounds=1, t0=n)[0]
    assert fixed_throttled > 3 * throttled


def test_the_wait_between_probes_is_bounded():
    window = ConcurrencyWindow(ceiling=32, start=4, probe_after=32)
    run_rounds(window, cap=4, rounds=20_000)
    assert window.wait == MAX_PROBE_AFTER


def test_a_probe_that_holds_lets_the_window_climb_to_a_raised_limit():
    """After failed probes (a long wait), a limit raised mid-crawl is found:
    each probe that holds brings the wait back to probe_after."""
    window = ConcurrencyWindow(ceiling=32, start=4, probe_after=8)
    run_rounds(window, cap=4, rounds=200)
    assert window.size in (4, 5) and window.wait > 8
    waited = window.wait  # successes before the next probe: up to 1024
    _, sizes = run_rounds(window, cap=10, rounds=400, t0=1000)
    assert sizes[-1] in (10, 11)  # at the new cap, or probing one above it
    # one long wait for the first probe, then a probe every 8 successes
    # (a round or two each) up from 5 to 10
    reached = sizes.index(10)
    assert reached <= waited // 4 + 12, sizes[: reached + 1]
