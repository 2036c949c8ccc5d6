"""What an answer of TMAPI means: its data, or the error it carries. Free of Scrapy.

:func:`parse_data` reads the envelope every endpoint shares and returns its
``data``, or raises an :class:`ApiError` carrying the code and message
whether the code came as the HTTP status or in the JSON body (``msg`` or
``message``); :func:`classify` says what an error code means for a crawler
(:class:`ErrorKind`). Bytes that are not UTF-8 and lone surrogates are
replaced, not fatal. For the items endpoint, :func:`page_from_data` reads
``data`` into a :class:`Page`, recording survivable departures from the
contract in :attr:`Page.problems`. The facts it encodes are in
``../shared/tmapi/API.md``; where they are uncertain, every reading is
accepted. Part of the items endpoint's contract
(:mod:`tmapi_crawler.contract.api`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from tmapi_crawler.contract.query import DEFAULT_PAGE_SIZE

SUCCESS_CODES = frozenset({0, 200})


class ErrorKind(StrEnum):
    """What an error means for a crawler; the policy for each lives in middlewares."""

    BAD_TOKEN = "bad_token"  # 401/403, 401x body codes: nothing can succeed
    INSUFFICIENT_BALANCE = (
        "insufficient_balance"  # 439: every call fails until topped up
    )
    BAD_PARAMETER = "bad_parameter"  # 422 and other 4xx: retrying cannot help
    CONCURRENCY_LIMIT = "concurrency_limit"  # 503/429: too many calls in flight
    TEMPORARY = "temporary"  # 417, 499, 500, 5xx: try again later
    MALFORMED = "malformed"  # not the JSON the contract promises (HTML, truncated)


def classify(code: int) -> ErrorKind:
    """The kind of an API or HTTP error code."""
    if code in (401, 403) or 4010 <= code <= 4039:
        return ErrorKind.BAD_TOKEN
    if code == 439:
        return ErrorKind.INSUFFICIENT_BALANCE
    if code in (429, 503):
        return ErrorKind.CONCURRENCY_LIMIT
    if code in (417, 499) or 500 <= code <= 599:
        return ErrorKind.TEMPORARY
    if 400 <= code <= 499:
        return ErrorKind.BAD_PARAMETER
    return ErrorKind.TEMPORARY


class ApiError(Exception):
    """An answer that carries no page: the API's code and message, and where
    the code came from (``status`` for the HTTP status, ``body`` for JSON)."""

    def __init__(
        self,
        code: int | None,
        message: str,
        *,
        http_status: int,
        source: Literal["status", "body", "content"],
    ) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.source = source
        super().__init__(str(self))

    @property
    def kind(self) -> ErrorKind:
        return ErrorKind.MALFORMED if self.code is None else classify(self.code)

    @property
    def reason(self) -> str:
        """A short stable name for stats and retry counters: the code, or the kind."""
        return str(self.code) if self.code is not None else self.kind.value

    def __str__(self) -> str:
        where = f"HTTP {self.http_status}" + (
            f", body code {self.code}" if self.source == "body" else ""
        )
        code = self.code if self.code is not None else "malformed"
        return f"TMAPI error {code} ({where}): {self.message}"


def malformed(message: str, http_status: int = 200) -> ApiError:
    """An answer that is not the JSON the contract promises."""
    return ApiError(None, message, http_status=http_status, source="content")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a category, as the API reported it."""

    page: int
    page_size: int
    total_count: int | None
    has_next_page: bool
    items: list[dict[str, Any]]
    problems: tuple[str, ...] = ()  # what did not match the contract but was survivable

    @property
    def last_page(self) -> int | None:
        """The last page ``total_count`` promises, or None when it is unknown."""
        if self.total_count is None or self.page_size <= 0:
            return None
        return max(1, math.ceil(self.total_count / self.page_size))


def _snippet(body: bytes, limit: int = 120) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return " ".join(text.split()) or "(empty body)"


def int_of_digits(text: str, *, signed: bool = False) -> int | None:
    """The integer *text* spells in decimal digits (with a leading "-" if
    *signed*), or None. ``str.isdigit`` is not the test: it accepts "²",
    which ``int`` refuses with a ValueError."""
    digits = text[1:] if signed and text.startswith("-") else text
    return int(text) if digits.isdecimal() else None


def as_int(value: object) -> int | None:
    """A number of an answer, as the API may send it (an int, a string of
    digits, a whole float), or None (a bool, anything else)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int_of_digits(value.strip(), signed=True)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# Set in ``data`` when its text had bytes that are not UTF-8 (replaced by U+FFFD);
# page_from_data turns it into a problem of the page.
REPAIRED_TEXT = "__tmapi_replaced_bytes__"


# A JSON escape of half a UTF-16 surrogate pair (\ud800-\udfff): alone, it
# decodes to a character no UTF-8 file can hold, and the item could not be written.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: Any) -> tuple[Any, int]:
    """*value* with every lone surrogate replaced by U+FFFD, and how many."""
    if isinstance(value, str):
        return _LONE_SURROGATE.subn("\ufffd", value)
    if isinstance(value, list):
        pairs = [_without_lone_surrogates(v) for v in value]
        return [v for v, _ in pairs], sum(n for _, n in pairs)
    if isinstance(value, dict):
        found, count = {}, 0
        for key, item in value.items():
            key, in_key = _without_lone_surrogates(key)
            found[key], in_item = _without_lone_surrogates(item)
            count += in_key + in_item
        return found, count
    return value, 0


def _decode(body: bytes) -> tuple[Any, int]:
    """The JSON of *body*, and how many characters no UTF-8 text can hold
    (bytes that are not UTF-8, lone surrogates) were replaced by U+FFFD."""
    replaced = 0
    try:
        try:
            payload = json.loads(body)
        except UnicodeDecodeError:
            text = body.decode("utf-8", "replace")
            ignored = body.decode("utf-8", "ignore")
            replaced = max(text.count("\ufffd") - ignored.count("\ufffd"), 1)
            payload = json.loads(text)
        if _SURROGATE_ESCAPE.search(body):  # rare: only then walk the answer
            payload, surrogates = _without_lone_surrogates(payload)
            replaced += surrogates
    except (ValueError, RecursionError):
        return None, 0
    return payload, replaced


def _message(payload: dict[str, Any]) -> str:
    message = payload.get("msg") or payload.get("message") or ""
    return str(message)[:300]


def parse_data(
    body: bytes, http_status: int = 200, *, null_data: bool = False
) -> dict[str, Any]:
    """The ``data`` object of any TMAPI answer; :class:`ApiError` unless there is one.

    A body code that is not success wins over HTTP 200; an HTTP error status
    wins over a body that claims success. With *null_data* (an endpoint
    whose ``data`` null says "no such thing"), ``data`` null is ``{}``.
    """
    payload, replaced = _decode(body)
    body_code = as_int(payload.get("code")) if isinstance(payload, dict) else None
    if not 200 <= http_status < 300:
        if isinstance(payload, dict) and body_code not in (None, *SUCCESS_CODES):
            raise ApiError(
                body_code, _message(payload), http_status=http_status, source="body"
            )
        message = _message(payload) if isinstance(payload, dict) else _snippet(body)
        raise ApiError(http_status, message, http_status=http_status, source="status")
    if not isinstance(payload, dict):
        what = "empty" if not body.strip() else "not a JSON object"
        raise malformed(f"body is {what}: {_snippet(body)}", http_status)
    if body_code is not None and body_code not in SUCCESS_CODES:
        raise ApiError(
            body_code, _message(payload), http_status=http_status, source="body"
        )
    if "code" in payload and body_code is None:
        raise malformed(f"code is not a number: {payload['code']!r:.60}", http_status)
    data = payload.get("data")
    if data is None and null_data:
        data = {}
    if not isinstance(data, dict):
        raise malformed(f"data is not an object: {_snippet(body)}", http_status)
    if replaced:
        data[REPAIRED_TEXT] = replaced
    return data


def page_from_data(
    data: dict[str, Any],
    requested_page: int | None = None,
    requested_page_size: int | None = None,
) -> Page:
    """A :class:`Page` from an answer's ``data``.

    Survivable departures from the contract (a missing ``page``, a ``null``
    items list, entries that are not objects) are recorded in
    :attr:`Page.problems` instead of failing the page.
    """
    problems: list[str] = []
    if replaced := data.pop(REPAIRED_TEXT, 0):
        problems.append(
            f"{replaced} invalid UTF-8 sequences or lone surrogates replaced by U+FFFD"
        )

    def number(name: str, fallback: int | None) -> int | None:
        value = as_int(data.get(name))
        if value is not None and value >= 0:
            return value
        problems.append(f"{name} is {data.get(name, 'missing')!r:.40}")
        return fallback

    raw_items = data.get("items")
    if raw_items is None:
        problems.append("items is missing or null")
        raw_items = []
    elif not isinstance(raw_items, list):
        raise malformed(f"items is a {type(raw_items).__name__}, not a list")
    items = [entry for entry in raw_items if isinstance(entry, dict)]
    if len(items) != len(raw_items):
        problems.append(f"{len(raw_items) - len(items)} item entries are not objects")

    page = number("page", requested_page) or requested_page or 1
    page_size = number("page_size", requested_page_size) or requested_page_size
    if not page_size:
        page_size = max(len(items), DEFAULT_PAGE_SIZE)
    total_count = number("total_count", None)
    has_next = data.get("has_next_page")
    if not isinstance(has_next, bool):
        problems.append(f"has_next_page is {has_next!r:.40}")
        has_next = len(raw_items) >= page_size
    if has_next and 0 < len(raw_items) < page_size and page_size > DEFAULT_PAGE_SIZE:
        # a page before the last holds the size served: an API that clamps a
        # size above the documented one may echo it in page_size, or say none
        # (then it would be read at the size asked)
        problems.append(f"page_size is {page_size} but {len(raw_items)} are served")
        page_size = len(raw_items)
    if total_count is not None and has_next and page * page_size >= total_count:
        problems.append(
            f"has_next_page is true but total_count {total_count} ends at this page"
        )
    if has_next and not raw_items:
        problems.append("items is empty but has_next_page is true")
    return Page(page, page_size, total_count, has_next, items, tuple(problems))
