"""How many TMAPI calls to keep in flight, learnt from the API's 503s.

TMAPI does not publish per-plan concurrency limits; a 503 is the only signal.
:class:`ConcurrencyWindow` adapts like TCP: it starts small and doubles while
calls succeed (slow start); a 503 for a call sent while *n* calls were in
flight proves the limit is below *n*, so the window drops to *n - 1* at once
(503s for calls sent before that cut say nothing new and are ignored); then
it probes one call higher only after a run of successes, so a crawl settles
at the account's limit and spends few calls on 503s. Each probe that fails
doubles the run of successes before the next one (up to
:data:`MAX_PROBE_AFTER`): a limit that has held is tried ever more rarely,
since every probe that meets it is a paid 503. Never above the ceiling
(``CONCURRENT_REQUESTS`` or ``TMAPI_MAX_CONCURRENCY``). :class:`CallGate`
holds calls back to the window's size. Free of Scrapy.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

MAX_PROBE_AFTER = 1024  # successes: the longest wait between two probes


@dataclass
class ConcurrencyWindow:
    ceiling: int
    start: int = 4
    floor: int = 1
    probe_after: int = 32  # successes at the limit before trying one call more
    size: int = field(init=False)
    slow_start: bool = field(init=False, default=True)
    last_cut: float = field(init=False, default=float("-inf"))
    successes: int = field(init=False, default=0)
    wait: int = field(init=False)  # successes before the next probe
    probing: bool = field(init=False, default=False)  # the size is a probe's

    def __post_init__(self) -> None:
        self.ceiling = max(self.floor, self.ceiling)
        self.size = max(self.floor, min(self.start, self.ceiling))
        self.wait = self.probe_after

    def on_success(self, sent_at: float) -> None:
        """A call sent at *sent_at* came back without a 503."""
        if sent_at < self.last_cut or self.size >= self.ceiling:
            return
        self.successes += 1
        if self.slow_start:
            threshold = self.size
        else:  # a probe holds after probe_after successes; then try higher soon
            threshold = self.probe_after if self.probing else self.wait
        if self.successes >= threshold:
            if self.probing:  # the probed size held: the limit may be higher
                self.wait = self.probe_after
            self.probing = not self.slow_start
            self.size = min(
                self.ceiling, self.size * 2 if self.slow_start else self.size + 1
            )
            self.successes = 0

    def on_throttle(self, sent_at: float, in_flight_at_send: int, now: float) -> None:
        """A call sent at *sent_at*, with *in_flight_at_send* calls in flight
        (itself included), was answered 503: the limit is below that number."""

        if sent_at < self.last_cut:  # sent before the last cut: nothing new
            return
        if self.probing:  # the probe met the limit: probe again later
            self.wait = min(MAX_PROBE_AFTER, self.wait * 2)
            self.probing = False
        self.slow_start = False
        self.successes = 0
        self.last_cut = now
        # The limit is below in_flight_at_send; a lone 503 at a low count (an
        # upstream hiccup) halves the window rather than collapsing it.
        evidence = max(in_flight_at_send - 1, (self.size + 1) // 2)
        self.size = max(self.floor, min(self.size - 1, evidence))


class CallGate:
    """At most ``limit`` calls in flight; the limit may change at any time.

    Scrapy's downloader slot cannot be the gate: in Scrapy 2.19 a slot marks a
    request as transferring only when its download coroutine starts, so
    requests queued in one loop tick all pass a slot's concurrency check at
    once (seen: 11 transfers in a slot of concurrency 4).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # granted just as it was cancelled: give it back
            raise

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def set_limit(self, limit: int) -> None:
        self.limit = limit
        self._wake()

    def abort(self, error: Exception) -> None:
        """Fail every waiter with *error* (the crawl is stopping)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)
