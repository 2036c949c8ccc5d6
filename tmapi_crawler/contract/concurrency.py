"""How many TMAPI calls to keep in flight, learnt from the API's 503s.

TMAPI does not publish per-plan concurrency limits; a 503 is the only signal,
and API.md does not say whether it comes back at once or only after a call's
latency. :class:`ConcurrencyWindow` is built so that a probe costs one 503
either way. A call's *level* is the number of calls in flight when it took
its place, itself included. A level is *proven* once a call that surely had
that many calls in flight at the server succeeded; the window never lets a
second call out at a level not yet proven while a call at that level is
unanswered (:meth:`ConcurrencyWindow.may_send`), so each unproven level costs
at most one 503 however late its answer comes.

The window starts at ``start``, every level above 1 unproven (each sent
once), and one probe above it. Whenever every level of the window is proven
(a round of successes), the window grows. Until the first 503, on a token
with no remembered limit (*climbing*), it triples (5, 15, 45...: from 4 to 16
in three rounds): a first run finds its level quickly, and a cap within a
round costs each level above it one 503, once per token, as the limit is
then remembered. After a 503, or from a remembered limit, it grows by twice
the probes of the round before (one, two, four...). A 503 for a call at
level *n* proves the limit below *n*: the window drops to the highest level
not refuted, growth stops, and the next probe (one level up) waits for
``wait`` successes, doubled by each 503 (up to :data:`MAX_PROBE_AFTER`), so
a limit that has held is tried ever more rarely, as every probe that meets
it is a 503 and maybe a paid call. A probe that holds brings the wait back to
``probe_after`` and growth resumes. Never above the ceiling
(``CONCURRENT_REQUESTS`` or ``TMAPI_MAX_CONCURRENCY``).

A level is proven only as far as the crawler can tell from its own clock:
*n* calls that all succeeded and were surely at the server at one moment
(:func:`held_together`: all sent by a moment *t*, all back clearly after it,
a quarter of a call's duration later). Not the order of sending: calls sent
at once, from one process or from several workers, reach the server in any
order, and the one that came last may be the one refused. An answer is back
when the download handler returns it (:meth:`ConcurrencyWindow.arrived`),
not when it is read: a busy process reads answers late, and a call whose
answer waits to be read must not prove a level the account never had. A 503
is charged to the call's level at sending. :class:`CallGate` holds calls
back to what the window admits. Free of Scrapy.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

INF = float("inf")
MAX_PROBE_AFTER = 1024  # successes: the longest wait between two probes
# how clearly another call must have overlapped a call to count for its level,
# a share of the call's duration: an answer read late by a busy process must
# not prove a level the account never had in flight
PROOF_MARGIN = 0.25


@dataclass(eq=False)
class Call:
    """One call's place among the calls in flight."""

    seq: int  # order of taking places
    level: int  # calls in flight when it took its place, itself included
    sent: float  # when it went out (monotonic seconds)
    probe: bool  # sent at a level not proven then
    back: float = INF  # when its answer came back (read or not; INF: not yet)
    released: bool = False  # its place in the gate is free again
    place: str = ""  # its name in a shared window (distributed.window)
    took: float = 0.0  # when it took its place, on this process's clock


def held_together(call: Call, lives: Iterable[Call], margin: float) -> int:
    """The most of *lives* (successful calls, *call* among them) surely at
    the server at one moment with *call*: all sent by a moment *t* at or after
    *call* went out, all back clearly after it (*margin*: a share of *call*'s
    duration). The account held that many calls in flight."""
    clearly = margin * max(0.0, call.back - call.sent)
    alive = [c for c in lives if c.back > call.sent + clearly]
    moments = {c.sent for c in alive if call.sent <= c.sent < call.back - clearly}
    return max(
        (sum(c.sent <= t < c.back - clearly for c in alive) for t in moments),
        default=1,
    )


@dataclass
class ConcurrencyWindow:
    ceiling: int
    start: int = 4
    floor: int = 1
    probe_after: int = 32  # successes at a limit found before probing above it
    remembered: int | None = None  # a limit that held before: start there, proven
    size: int = field(init=False)  # the most calls allowed in flight now
    proven: int = field(init=False)  # the highest level proven
    step: int = field(init=False, default=1)  # probes of the last round
    held: bool = field(init=False, default=False)  # a 503 stopped growth
    climbing: bool = field(init=False)  # no 503 yet, nothing remembered: triple
    successes: int = field(init=False, default=0)  # since the last cut
    wait: int = field(init=False)  # successes before the next probe once held
    last_cut: float = field(init=False, default=float("-inf"))
    refuted: int | None = field(init=False, default=None)  # lowest level 503'd
    probes: int = field(init=False, default=0)  # calls sent at unproven levels
    peak: int = field(init=False)  # the highest level proven in this run
    _unanswered: dict[int, Call] = field(init=False, default_factory=dict)
    _levels: Counter[int] = field(init=False, default_factory=Counter)
    _recent: deque[Call] = field(init=False)
    _seq: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.ceiling = max(self.floor, self.ceiling)
        self.wait = self.probe_after
        self._recent = deque(maxlen=4 * self.ceiling + 8)
        self.climbing = not self.remembered
        if self.remembered:  # it held before: start there, probe later
            self.proven = self.size = max(
                self.floor, min(self.remembered, self.ceiling)
            )
            self.held = self.size < self.ceiling
        else:  # every level above the floor unproven; one probe above the start
            self.proven = self.floor
            self.size = max(self.floor, min(self.start + 1, self.ceiling))
        self.peak = self.proven

    @property
    def in_flight(self) -> int:
        return len(self._unanswered)

    # -- sending ------------------------------------------------------------

    def may_send(self, in_use: int) -> bool:
        """May one more call go out while *in_use* places are taken?"""
        level = in_use + 1
        if level > self.size:
            return False
        return level <= self.proven or not self._levels[level]

    def sent(self, in_use: int, now: float) -> Call:
        """A call took the next place (after :meth:`may_send` said yes)."""
        level = in_use + 1
        self._seq += 1
        call = Call(self._seq, level, now, probe=level > self.proven)
        self.probes += call.probe
        self._unanswered[call.seq] = call
        self._levels[level] += 1
        return call

    def take(self, in_use: int, now: float) -> Call | None:
        """The next place, if the window lets one more call out now."""
        return self.sent(in_use, now) if self.may_send(in_use) else None

    def arrived(self, call: Call, now: float) -> None:
        """*call*'s answer came back (it is read later: :meth:`on_success`,
        :meth:`on_throttle`): its call was over at the server by *now*."""
        call.back = min(call.back, now)

    def settle(self, call: Call) -> None:
        """The call is over without an answer to learn from (or was learnt
        from already): it no longer holds its level."""
        if self._unanswered.pop(call.seq, None) is not None:
            self._levels[call.level] -= 1

    # -- answers ------------------------------------------------------------

    def on_success(self, call: Call, now: float, sent_at: float | None = None) -> None:
        """*call* was answered without a 503 (*sent_at*: when it really left)."""
        self._answered(call, now, sent_at)
        self._recent.append(call)
        # Once the ceiling is proven no proof can raise it (no more calls are
        # ever in flight): the answer counts as a success without the proof's
        # work (~10-50 us an answer, on every page of a long crawl).
        proven = self.proven >= self.ceiling
        self.held_at(
            self.proven if proven else held_together(call, self._recent, PROOF_MARGIN)
        )

    def held_at(self, level: int) -> None:
        """*level* calls surely in flight together all succeeded."""
        if level > self.proven:
            self.proven = level
            self.peak = max(self.peak, level)
            if self.refuted is not None and level >= self.refuted:
                # a level refuted before held: the limit rose, probe soon again
                self.refuted, self.wait = None, self.probe_after
        self.size = max(self.size, min(self.proven, self.ceiling))
        self.successes += 1
        if self.size >= self.ceiling:
            return
        if self.held:
            if self.successes >= self.wait:  # the limit held long enough: probe
                self.held, self.step, self.successes = False, 1, 0
                self.size = self.proven + 1
        elif self.proven >= self.size:  # every level of the window held
            self.step = 2 * self.proven if self.climbing else 2 * self.step
            self.size = min(self.ceiling, self.proven + self.step)

    def on_throttle(self, call: Call, now: float, in_flight_at_send: int) -> None:
        """*call* was answered 503; *in_flight_at_send* is what the sender
        counted as it left (the level is the lower of the two)."""
        self._answered(call, now, None)
        self.refused_at(max(1, min(call.level, in_flight_at_send)), call.sent, now)

    def refused_at(self, level: int, sent: float, now: float) -> None:
        """A call sent at *sent* with *level* calls in flight (at most) was
        answered 503 at *now*."""
        bound = max(self.floor, level - 1)  # the limit is below level
        if bound < (self.proven + 1) // 2:
            # a lone 503 far below what held (an upstream hiccup): halve the
            # window rather than collapse it, once per cut
            if sent < self.last_cut:
                return
            bound = max(self.floor, (self.proven + 1) // 2)
        self.proven = min(self.proven, bound)
        self.refuted = min(self.refuted or bound + 1, bound + 1)
        self.size = max(self.floor, min(self.size, max(self.proven, bound)))
        if sent >= self.last_cut:  # a new cut: the next probe waits longer
            self.wait = min(MAX_PROBE_AFTER, self.wait * 2)
            self.last_cut = now
        self.held, self.step, self.successes = True, 1, 0
        self.climbing = False

    def _answered(self, call: Call, now: float, sent_at: float | None) -> None:
        """Settle *call*, answered (read) at *now*."""
        if sent_at is not None:
            call.sent = sent_at
        self.settle(call)
        self.arrived(call, now)  # unless it came back earlier


class CallGate:
    """Calls wait here until the window lets one more out.

    Scrapy's downloader slot cannot be the gate: in Scrapy 2.19 a slot marks a
    request as transferring only when its download coroutine starts, so
    requests queued in one loop tick all pass a slot's concurrency check at
    once (seen: 11 transfers in a slot of concurrency 4).
    """

    def __init__(
        self,
        window: ConcurrencyWindow,
        clock: Callable[[], float] = time.monotonic,
        poll: float | None = None,
    ) -> None:
        """*poll*: seconds between looks while calls wait, for a window that
        others change too (a shared one); None: only releases wake it."""
        self.window, self.clock, self.poll = window, clock, poll
        self.in_use = 0
        self._waiters: deque[asyncio.Future[Call]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def acquire(self) -> Call:
        if not self._waiters and (call := self._take()):
            return call
        waiter: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._schedule_poll()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.window.settle(waiter.result())  # granted as it was cancelled
                self.release()
            raise

    def _take(self) -> Call | None:
        call = self.window.take(self.in_use, self.clock())
        if call is not None:
            self.in_use += 1
        return call

    def _schedule_poll(self) -> None:
        if self.poll and self._timer is None and self._waiters:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.poll, self._polled)

    def _polled(self) -> None:
        self._timer = None
        self.wake()
        self._schedule_poll()

    def release(self) -> None:
        """A place is free (a call's level stays taken until it is settled
        in the window: :meth:`ConcurrencyWindow.settle`)."""
        self.in_use -= 1
        self.wake()

    def wake(self) -> None:
        """Let out whoever the window admits now (after it changed)."""
        while self._waiters:
            if self._waiters[0].done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            call = self._take()
            if call is None:
                return
            self._waiters.popleft().set_result(call)

    def abort(self, error: Exception) -> None:
        """Fail every waiter with *error* (the crawl is stopping)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
