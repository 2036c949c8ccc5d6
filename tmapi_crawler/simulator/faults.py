"""Faults the simulator injects: every documented error code, and the ways a
real gateway breaks (HTML error pages, truncated JSON, dropped connections).

A scripted fault is written ``CAT:PAGE=KIND[@STYLE],KIND...``: the calls for
that category and page get the listed answers in order, then real pages; a
kind ending in ``*`` repeats for ever. ``*`` matches any category or page.
Examples: ``1031922:3=503,499@body,truncated`` or ``*:*=439*``.
Rates (``503=0.05``) inject a fault into that share of all calls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

Style = Literal["status", "body", "both"]
STYLES: tuple[Style, ...] = ("status", "body", "both")
MESSAGES = {
    401: "no API key found in request",
    403: "forbidden",
    417: "Failed to retrieve data, please try again or contact customer service.",
    422: "Parameter error",
    439: "Subscription expired or insufficient balance.",
    499: "Please try again or set your request timeout to 60 seconds.",
    500: "Unexpected error, please contact customer service.",
    503: "API request concurrency limit exceeded, please reduce concurrency.",
}
# Breakages that are not an API code: what each sends is described in server.py.
BREAKAGES = ("truncated", "html502", "dataloss", "reset", "timeout", "empty", "garbage")


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected answer: an API code in a style, or a breakage."""

    kind: str  # "503" or a breakage name
    style: Style = "both"

    @property
    def code(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() else None

    @classmethod
    def parse(cls, text: str, default_style: Style = "both") -> Fault:
        kind, _, style = text.strip().partition("@")
        if not (kind.isdigit() and int(kind) in MESSAGES) and kind not in BREAKAGES:
            allowed = ", ".join([*map(str, MESSAGES), *BREAKAGES])
            raise ValueError(f"unknown fault {kind!r}; allowed: {allowed}")
        if style and style not in STYLES:
            raise ValueError(
                f"unknown fault style {style!r}; allowed: {', '.join(STYLES)}"
            )
        return cls(kind, style or default_style)  # type: ignore[arg-type]


@dataclass(slots=True)
class FaultScript:
    """Answers scripted for the calls of one category and page."""

    cat_id: int | None
    page: int | None
    answers: list[Fault]
    repeat_last: bool = False
    used: int = 0

    @classmethod
    def parse(cls, spec: str, default_style: Style = "both") -> FaultScript:
        where, sep, what = spec.partition("=")
        cat, colon, page = where.partition(":")
        if not sep or not colon or not what:
            raise ValueError(f"fault {spec!r} is not CAT:PAGE=KIND[,KIND...]")
        parts = [part for part in what.split(",") if part.strip()]
        repeat = parts[-1].strip().endswith("*")
        parts[-1] = parts[-1].strip().rstrip("*")
        return cls(
            cat_id=None if cat.strip() == "*" else int(cat),
            page=None if page.strip() == "*" else int(page),
            answers=[Fault.parse(part, default_style) for part in parts],
            repeat_last=repeat,
        )

    def matches(self, cat_id: int | None, page: int | None) -> bool:
        return self.cat_id in (None, cat_id) and self.page in (None, page)

    def take(self) -> Fault | None:
        if self.used < len(self.answers):
            self.used += 1
            return self.answers[self.used - 1]
        return self.answers[-1] if self.repeat_last else None


@dataclass(slots=True)
class FaultPlan:
    """Scripted faults first, then random ones by rate."""

    scripts: list[FaultScript] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)
    style: Style = "both"
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def add(self, spec: str) -> None:
        self.scripts.append(FaultScript.parse(spec, self.style))

    def add_rate(self, spec: str) -> None:
        kind, sep, rate = spec.partition("=")
        Fault.parse(kind)
        if not sep or not 0 <= float(rate) <= 1:
            raise ValueError(f"error rate {spec!r} is not KIND=RATE with RATE in 0..1")
        self.rates[kind.strip()] = float(rate)

    def next_fault(self, cat_id: int | None, page: int | None) -> Fault | None:
        for script in self.scripts:
            if script.matches(cat_id, page) and (fault := script.take()):
                return fault
        draw = self.rng.random()
        for kind, rate in self.rates.items():
            if draw < rate:
                return Fault(kind, self.style)
            draw -= rate
        return None
