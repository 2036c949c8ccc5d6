"""Faults the simulator injects: every documented error code, and the ways a
real gateway breaks (HTML error pages, truncated JSON, dropped connections).

A scripted fault is written ``CAT:PAGE=KIND[@STYLE],KIND...``: the calls for
that category and page get the listed answers in order, then real pages; a
kind ending in ``*`` repeats for ever. ``*`` matches any category or page.
Examples: ``1031922:3=503,499@body,truncated`` or ``*:*=439*``.
Rates (``503=0.05``) inject a fault into that share of all calls.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

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
        return cls(kind, style or default_style)


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


# --- quirks: answers that succeed but bend the documented shape ---------------
# Each applies to every answer for its category and page (``*`` for any):
# ``--quirk CAT:PAGE=KIND[,KIND...]``.
QUIRKS = {
    "item_id_string": "the first item's item_id as a string",
    "null_strings": "null for the first item's title, price and shop_info.shop_name",
    "missing_nested": "the first item without shop_info and delivery_info",
    "extra_fields": "undocumented fields in data and in every item",
    "not_object": "the first item replaced by a string",
    "huge": "10 MB of padding in an undocumented field of data",
    "non_utf8": "bytes that are not UTF-8 inside the first item object's title",
    "endless": "has_next_page true on every page, also past the last (empty ones)",
    "hostile": "the page's first nine items each carry one hostile value (HOSTILE)",
    # an item's details (ITEM_ID:0=odd_details): simulator/variants.py
    "odd_details": "an item's details with fields that do not fit: a stock of "
    "'many', a variant without skuid, a video_url that is no URL, main_imgs a string",
}
HUGE_PADDING = 10 * 1024 * 1024
NON_UTF8 = b"\xff\xfe\xc3("  # not UTF-8 in any reading
# ``hostile``: one value each for the page's first nine items, as (field, value);
# a dotted field is nested. A str value from _RAW to a NUL is sent as the raw
# JSON text between them (a number no Python float holds: ``1e309``).
_RAW = "\x00RAW:"
HUGE_TITLE = "\u202e" + "x" * 49_999 + "\x00" + "y" * 49_999  # 100,000 characters
HOSTILE: tuple[tuple[str, Any], ...] = (
    ("item_id", 2**70),  # past 64 bits
    ("item_id", -610947572360),  # negative
    ("item_id", "".join(chr(0xFF10 + d) for d in (1, 2, 3, 4, 5))),  # full-width
    ("price", _RAW + "NaN\x00"),
    ("price", _RAW + "1e309\x00"),
    ("price", "-3.00"),
    ("shop_info.company_name", {"zh": "公司", "en": "company"}),  # an object
    ("title", HUGE_TITLE),  # 100,000 characters, a NUL and a right-to-left override
    ("img", "javascript:alert(1)"),
)


@dataclass(frozen=True, slots=True)
class Quirk:
    cat_id: int | None
    page: int | None
    kinds: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str) -> Quirk:
        where, sep, what = spec.partition("=")
        cat, colon, page = where.partition(":")
        kinds = tuple(kind.strip() for kind in what.split(",") if kind.strip())
        if not sep or not colon or not kinds:
            raise ValueError(f"quirk {spec!r} is not CAT:PAGE=KIND[,KIND...]")
        for kind in kinds:
            if kind not in QUIRKS:
                raise ValueError(
                    f"unknown quirk {kind!r}; allowed: {', '.join(QUIRKS)}"
                )
        return cls(
            None if cat.strip() == "*" else int(cat),
            None if page.strip() == "*" else int(page),
            kinds,
        )

    def matches(self, cat_id: int | None, page: int | None) -> bool:
        return self.cat_id in (None, cat_id) and self.page in (None, page)


def quirks_for(quirks: list[Quirk], cat_id: int | None, page: int | None) -> list[str]:
    return [kind for q in quirks if q.matches(cat_id, page) for kind in q.kinds]


def apply_quirks(data: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    """*data* bent by the shape quirks (``huge`` and ``non_utf8`` act on the body)."""
    items = data["items"]
    first = items[0] if items else None
    if "item_id_string" in kinds and first:
        first["item_id"] = str(first["item_id"])
    if "null_strings" in kinds and first:
        first.update(title=None, price=None)
        if isinstance(first.get("shop_info"), dict):
            first["shop_info"]["shop_name"] = None
    if "missing_nested" in kinds and first:
        first.pop("shop_info", None)
        first.pop("delivery_info", None)
    if "extra_fields" in kinds:
        data["x_trace_id"] = "a1b2c3"
        for item in items:
            item["x_rank_debug"] = {"score": 0.5, "bucket": [1, 2]}
    if "not_object" in kinds and first:
        items[0] = "item removed"
    if "endless" in kinds:
        data["has_next_page"] = True
    if "huge" in kinds:
        data["x_padding"] = "x" * HUGE_PADDING
    if "hostile" in kinds:
        for item, (name, value) in zip(items, HOSTILE, strict=False):
            if isinstance(item, dict):
                _set(item, name, value)
    objects = [item for item in items if isinstance(item, dict)]
    if "non_utf8" in kinds and objects and isinstance(objects[0].get("title"), str):
        objects[0]["title"] = "\x00NON_UTF8\x00" + objects[0]["title"]
    return data


def _set(item: dict[str, Any], name: str, value: Any) -> None:
    *parents, last = name.split(".")
    for parent in parents:
        item = item.setdefault(parent, {})
    item[last] = value


_RAW_JSON = re.compile(rb'"\\u0000RAW:([^"\\]*)\\u0000"')


def encode_quirky(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, ensure_ascii=False).encode()
    body = _RAW_JSON.sub(rb"\1", body)
    return body.replace(b"\\u0000NON_UTF8\\u0000", NON_UTF8)
