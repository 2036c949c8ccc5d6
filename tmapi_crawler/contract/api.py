"""The TMAPI "1688 Get Category Items V2" contract, free of Scrapy.

This module owns the endpoint: the query a category page is fetched with
(:class:`CategoryQuery`, :func:`page_url`) and what an answer means
(:func:`parse_data`, then :func:`page_from_data`): a :class:`Page` of items,
or an :class:`ApiError` carrying the code and message whether the code came as
the HTTP status or in the JSON body (``msg`` or ``message``). The facts it
encodes are in ``../shared/tmapi/API.md``; where they are uncertain, every
reading is accepted.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

ITEMS_PATH = "/1688/category/items/v2"
CATEGORY_INFO_PATH = "/1688/category/info"
LANGUAGES = ("en", "zh", "ru", "vi", "ja", "ko")
SORTS = ("default", "sales", "price_up", "price_down")
FILTER_FLAGS = (
    "new_arrival",
    "support_dropshipping",
    "free_shipping",
    "is_super_factory",
)
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 50  # search endpoints document 20; one integrator asks 50 of this one
SUCCESS_CODES = frozenset({0, 200})
TOKEN_QUERY_FIELD = "apiToken"
TOKEN_HEADER = "apikey"

Language = Literal["en", "zh", "ru", "vi", "ja", "ko"]
Sort = Literal["default", "sales", "price_up", "price_down"]

_BOOLEAN_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "false": False,
    "0": False,
    "no": False,
}


def parse_boolean(value: object) -> bool:
    """true/false/1/0/yes/no in any case, or a real bool; anything else is refused."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in _BOOLEAN_WORDS:
        raise PydanticCustomError(
            "boolean", "must be one of true, false, 1, 0, yes, no"
        )
    return _BOOLEAN_WORDS[word]


def _price_text(price: Decimal) -> str:
    """A price as the API takes it: plain digits, no exponent, no trailing zeros."""
    return format(price.normalize(), "f")


class QueryOptions(BaseModel):
    """The options of a category query that are the same for every category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sort: Sort = "default"
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    price_start: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    price_end: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    new_arrival: bool | None = None
    support_dropshipping: bool | None = None
    free_shipping: bool | None = None
    is_super_factory: bool | None = None

    @field_validator(*FILTER_FLAGS, mode="before")
    @classmethod
    def _boolean_words(cls, value: object) -> bool | None:
        return None if value is None else parse_boolean(value)

    @model_validator(mode="after")
    def _price_range_ordered(self) -> QueryOptions:
        if (
            self.price_start is not None
            and self.price_end is not None
            and self.price_start > self.price_end
        ):
            raise PydanticCustomError(
                "price_range",
                "price_start {start} is above price_end {end}",
                {"start": str(self.price_start), "end": str(self.price_end)},
            )
        return self

    def filters(self) -> dict[str, str | bool]:
        """The filters this query applies, as sent (prices as text)."""
        found: dict[str, str | bool] = {}
        for name in ("price_start", "price_end"):
            price = getattr(self, name)
            if price is not None:
                found[name] = _price_text(price)
        for name in FILTER_FLAGS:
            flag = getattr(self, name)
            if flag is not None:
                found[name] = flag
        return found


class CategoryQuery(QueryOptions):
    """One category in one language with its options: all a page request
    carries but the page number and the token."""

    cat_id: int = Field(gt=0)
    language: Language = "en"

    def params(self, page: int | None = None) -> list[tuple[str, str]]:
        """Query-string fields in a fixed order, so equal queries give equal URLs."""
        fields = [("cat_id", str(self.cat_id)), ("language", self.language)]
        if page is not None:
            fields.append(("page", str(page)))
        fields += [("page_size", str(self.page_size)), ("sort", self.sort)]
        for name, value in self.filters().items():
            text = ("true" if value else "false") if isinstance(value, bool) else value
            fields.append((name, text))
        return fields

    @cached_property  # the query is frozen; the ledger asks several times a page
    def key(self) -> str:
        """A stable identity of the query, the same on every machine."""
        return urlencode(self.params())

    @property
    def label(self) -> str:
        """A short human name for logs: category, language and what is not default."""
        extras: list[str] = [self.language]
        if self.sort != "default":
            extras.append(f"sort={self.sort}")
        extras += [f"{name}={value}" for name, value in self.filters().items()]
        return f"category {self.cat_id} ({', '.join(extras)})"


def is_loopback(host: str) -> bool:
    """Whether *host* names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url_problems(base_url: str, *, allow_plain_http: bool) -> list[str]:
    """Why calls cannot go to *base_url* (``TMAPI_BASE_URL``): not an http(s)
    URL, or plain http:// to a host beyond loopback, which would carry the
    token (in the query string) across the network in clear."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"TMAPI_BASE_URL={base_url!r}: must be an http:// or https:// URL"]
    if parts.scheme == "https" or allow_plain_http or is_loopback(parts.hostname):
        return []
    return [
        f"TMAPI_BASE_URL={base_url!r}: plain http:// sends the token in "
        "clear (it is in the query string); use https://, or set "
        "TMAPI_ALLOW_PLAIN_HTTP=true to allow it (http:// to loopback, "
        "127.0.0.0/8, ::1 or localhost, is always allowed)"
    ]


def page_url(base_url: str, query: CategoryQuery, page: int) -> str:
    """The URL of one page, without the token (it is added at download time)."""
    return f"{base_url.rstrip('/')}{ITEMS_PATH}?{urlencode(query.params(page))}"


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


def _as_int(value: object) -> int | None:
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
    body_code = _as_int(payload.get("code")) if isinstance(payload, dict) else None
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
        value = _as_int(data.get(name))
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


# --- the category tree: /1688/category/info -----------------------------------


def category_info_url(base_url: str, cat_id: int | None = None) -> str:
    """The URL of one category's info (the top level without an id), no token."""
    query = f"?{urlencode({'cat_id': cat_id})}" if cat_id is not None else ""
    return f"{base_url.rstrip('/')}{CATEGORY_INFO_PATH}{query}"


@dataclass(frozen=True, slots=True)
class CategoryNode:
    """A child category as its parent lists it."""

    id: int
    name: str
    name_en: str
    level: int | None
    has_children: bool


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """One category and its children (``id`` None for the top-level listing)."""

    id: int | None
    name: str
    name_en: str
    level: int | None
    parent_id: int | None
    path: tuple[int, ...]
    children: tuple[CategoryNode, ...]
    problems: tuple[str, ...] = ()


def _category_id(entry: dict[str, Any]) -> int | None:
    for name in ("id", "cat_id", "category_id"):
        if (value := _as_int(entry.get(name))) is not None:
            return value
    return None


def category_info_from_data(data: dict[str, Any] | list[Any]) -> CategoryInfo:
    """A :class:`CategoryInfo` from an answer's ``data``.

    A child whose ``has_children`` is missing is taken to have children
    (asking costs one call, skipping loses a branch); a bare list is the top
    level's children.
    """
    if isinstance(data, list):
        data = {"id": None, "children": data}
    problems: list[str] = []
    raw_children = data.get("children") or []
    if not isinstance(raw_children, list):
        raise malformed(f"children is a {type(raw_children).__name__}, not a list")
    children = []
    for entry in raw_children:
        child_id = _category_id(entry) if isinstance(entry, dict) else None
        if child_id is None or child_id <= 0:
            problems.append(f"a child is not a category: {entry!r:.60}")
            continue
        has_children = entry.get("has_children")
        if not isinstance(has_children, bool):
            problems.append(f"child {child_id}: has_children is {has_children!r:.20}")
            has_children = True
        children.append(
            CategoryNode(
                child_id,
                str(entry.get("name") or ""),
                str(entry.get("name_en") or ""),
                _as_int(entry.get("level")),
                has_children,
            )
        )
    path = []
    for step in data.get("path") or []:
        step_id = _category_id(step) if isinstance(step, dict) else _as_int(step)
        if step_id is not None:
            path.append(step_id)
    category_id = _category_id(data)
    return CategoryInfo(
        category_id or None,
        str(data.get("name") or ""),
        str(data.get("name_en") or ""),
        _as_int(data.get("level")),
        _as_int(data.get("parent_id")),
        tuple(path),
        tuple(children),
        tuple(problems),
    )
