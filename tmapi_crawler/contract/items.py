"""The product item: typed, validated and normalised, raw text kept where lossy.

:class:`ProductItem` is a pydantic model of one item of the items endpoint
(the fields ``../shared/tmapi/API.md`` documents) plus the crawl context the
spider adds. Validating a raw API dict normalises it:

- prices (``price``, ``price_info.price|sale_price|origin_price``) become
  exact :class:`~decimal.Decimal` values, ``""`` becomes ``None``; feeds write
  them as JSON strings (``"0.60"``), as Scrapy's JSON encoder does for every
  Decimal, so no digit is lost to binary floats;
- ``sale_info.sale_quantity_90days`` ``"100000+"`` (or ``"1.5万+"``) becomes
  the integer lower bound, the text is kept in ``sale_quantity_90days_text``;
- ``item_repurchase_rate`` ``"57%"`` becomes the fraction ``0.57``;
- ``moq``, ``quantity_begin``, ``shop_info.shop_years`` become integers and
  ``shop_info.score_info.composite_score`` a number;
- ``item_id`` is an ``int`` whether the API sent a number or a string.

Every value is bounded where it is typed, to what every sink holds (a JSON
reader, Parquet's ``int64`` and ``decimal128(18, 2)``, SQLite, PostgreSQL):
ids and counts are 64-bit integers (:data:`INT64_MAX`), prices finite, not
negative and below :data:`MAX_PRICE`, strings free of NUL, other control
characters and bidirectional overrides (:func:`unsafe_text`) and at most
:data:`MAX_TEXT` characters, URLs absolute ``http(s)``.

Fields the API adds that the model does not know are kept (``extra="allow"``,
at every level) and exported beside the known ones. A value that cannot be
read raises a :class:`pydantic.ValidationError` whose error types are the
small fixed set :data:`ERROR_KINDS` (see :func:`problems`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Annotated, Any
from urllib.parse import urlsplit

from itemadapter import ItemAdapter
from itemadapter.adapter import PydanticAdapter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    model_validator,
)
from pydantic import Field as ModelField
from pydantic_core import PydanticCustomError

from tmapi_crawler.contract.api import int_of_digits

# Every kind of validation failure; stats keys are built from these only.
ERROR_KINDS = ("missing", "type", "negative", "range", "url", "text")

INT64_MAX = 2**63 - 1  # Parquet's int64, SQLite's INTEGER, PostgreSQL's BIGINT
MAX_PRICE = Decimal(1_000_000_000)  # yuan; decimal128(18, 2) holds 10**16
MAX_TEXT = 10_000  # characters of any string; titles are under a few hundred


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


# --- normalisers: raw API value -> typed value (pure, unit-tested) ------------


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# NUL and the other C0 and C1 controls but tab and line breaks; DEL; the
# bidirectional embeddings, overrides and isolates (text shown reversed).
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def unsafe_text(text: str) -> str | None:
    """Why *text* cannot be delivered as it is, or None."""
    if len(text) > MAX_TEXT:
        return f"is longer than {MAX_TEXT} characters"
    if found := _UNSAFE.search(text):
        return f"holds the control character U+{ord(found.group()):04X}"
    return None


def check_text(value: str) -> str:
    """A string every sink can hold and every reader show as it is."""
    if (why := unsafe_text(value)) is not None:
        raise _error("text", "the text " + why)
    return value


def _int64(number: int, what: str) -> int:
    if number > INT64_MAX:
        raise _error("range", f"{what} does not fit in 64 bits")
    return number


def parse_item_id(value: object) -> int:
    """An int or a string of ASCII digits; the same id either way; positive
    and within 64 bits. No shortest id is imposed: the API documents none."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (
        isinstance(value, str)
        and value.isascii()
        and (digits := int_of_digits(value.strip())) is not None
    ):
        number = digits
    elif _blank(value):
        raise _error("missing", "item_id is missing")
    else:  # full-width digits too: the API writes ids in ASCII digits
        raise _error("type", "item_id must be an integer or a string of ASCII digits")
    if number <= 0:
        raise _error("range", "item_id must be positive")
    return _int64(number, "item_id")


_CURRENCY_MARKS = "¥￥ \t"


# What the API usually sends for a price or score ("23.36"): exact as it is,
# finite, not negative; checked without the general path's cost (~1 us each).
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_price(value: object) -> Decimal | None:
    """``"0.60"`` -> ``Decimal("0.60")`` exactly; ``""`` -> None; never negative."""
    if (
        type(value) is str
        and _PLAIN_DECIMAL.fullmatch(value)
        and (price := Decimal(value)) < MAX_PRICE
    ):
        return price
    if _blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise _error("type", "a price must be a decimal number")
    text = str(value).strip().strip(_CURRENCY_MARKS).replace(",", "")
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise _error("type", "a price must be a decimal number") from None
    if not price.is_finite():
        raise _error("type", "a price must be a finite number")
    if price < 0:
        raise _error("negative", "a price cannot be negative")
    if price >= MAX_PRICE:
        raise _error("range", f"a price must be below {MAX_PRICE}")
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:  # "1E+2" -> 100
        try:
            price = price.quantize(Decimal(1))
        except InvalidOperation:  # more digits than any price (1e28)
            raise _error("range", "a price cannot be that large") from None
    return price


_COUNT = re.compile(r"^(?:≥|>=)?\s*(\d[\d,]*)\s*[^\d\s]*$")


def parse_count(value: object) -> int | None:
    """``"2"``, ``2``, ``"1,000"``, ``"3年"`` -> an int; ``""``/None -> None."""
    if type(value) is int and 0 <= value <= INT64_MAX:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return _int64(int(value), "a count")
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise _error("type", "must be a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and (match := _COUNT.match(value.strip())):
        number = int(match.group(1).replace(",", ""))
    elif isinstance(value, str) and value.strip().startswith("-"):
        raise _error("range", "cannot be negative")
    else:
        raise _error("type", "must be a whole number")
    if number < 0:
        raise _error("range", "cannot be negative")
    return _int64(number, "a count")


_SALES = re.compile(r"^(\d[\d,]*(?:\.\d+)?)\s*(万|w|W|亿)?\s*\+?$")
_PLAIN_SALES = re.compile(r"([0-9]+)\+?")  # "5000+", the usual shape
_SALES_UNITS = {None: 1, "万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000}


def parse_sales(value: object) -> int | None:
    """``"100000+"`` -> 100000 (a lower bound); ``"1.5万+"`` -> 15000."""
    if type(value) is str and (plain := _PLAIN_SALES.fullmatch(value)):
        return _int64(int(plain.group(1)), "sales")
    if _blank(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise _error("range", "sales cannot be negative")
        return _int64(value, "sales")
    match = _SALES.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _error("type", "sales must look like 500, 100000+ or 1.5万+")
    number = Decimal(match.group(1).replace(",", "")) * _SALES_UNITS[match.group(2)]
    return _int64(int(number), "sales")


def parse_rate(value: object) -> float | None:
    """``"57%"`` -> 0.57. Text is read as a percentage; a number as a fraction."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise _error("type", "a rate must look like 57%")
    if isinstance(value, int | float):
        fraction = Decimal(str(value))
    elif isinstance(value, str):
        try:
            fraction = Decimal(value.strip().removesuffix("%").strip()) / 100
        except InvalidOperation:
            raise _error("type", "a rate must look like 57%") from None
    else:
        raise _error("type", "a rate must look like 57%")
    if not fraction.is_finite() or not 0 <= fraction <= 1:
        raise _error("range", "a rate must be between 0% and 100%")
    return float(fraction)


def parse_score(value: object) -> float | None:
    """``"4.0"`` -> 4.0; ``""`` -> None."""
    if type(value) is str and _PLAIN_DECIMAL.fullmatch(value):
        return float(value)  # the same float as float(Decimal(value))
    if _blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _error("type", "a score must be a number")
    try:
        score = Decimal(str(value).strip())
    except InvalidOperation:
        raise _error("type", "a score must be a number") from None
    if not score.is_finite() or score < 0:
        raise _error("range", "a score must be a number from 0")
    return float(score)


# What the API sends: http(s), a plain host name, no white space.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]*[A-Za-z0-9](?::\d+)?(?:[/?#]\S*)?")
_SPACE = re.compile(r"\s")


def parse_url(value: object) -> str:
    """An absolute http(s) URL; ``//host/path`` gets ``https:``."""
    if _blank(value):
        raise _error("missing", "the URL is missing")
    if not isinstance(value, str):
        raise _error("type", "the URL must be a string")
    url = value.strip()
    if url.startswith("//"):
        url = "https:" + url
    if (why := unsafe_text(url)) is not None:
        raise _error("url", "the URL " + why)
    if _PLAIN_URL.fullmatch(url):  # the usual case, without urlsplit's cost
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _error("url", "the URL is not well formed") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _error("url", "the URL must be an absolute http(s) URL")
    if _SPACE.search(url):
        raise _error("url", "the URL contains white space")
    return url


def parse_optional_url(value: object) -> str | None:
    return None if _blank(value) else parse_url(value)


def parse_title(value: object) -> str:
    if _blank(value):
        raise _error("missing", "the title is missing or empty")
    if not isinstance(value, str):
        raise _error("type", "the title must be a string")
    return check_text(value)


def parse_texts(value: object) -> list[str] | None:
    """A list of strings; numbers in it become strings (``[54, 80]``)."""
    if value is None:
        return None
    if type(value) is list and all(type(v) is str for v in value):
        for text in value:
            check_text(text)
        return value  # pydantic copies it as it validates list[str]
    if not isinstance(value, list | tuple):
        raise _error("type", "must be a list")
    texts = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise _error("type", "must be a list of strings")
        texts.append(check_text(v) if type(v) is str else str(v))
    return texts


ItemId = Annotated[int, BeforeValidator(parse_item_id)]
Price = Annotated[Decimal | None, BeforeValidator(parse_price)]
Count = Annotated[int | None, BeforeValidator(parse_count)]
Rate = Annotated[float | None, BeforeValidator(parse_rate)]
Score = Annotated[float | None, BeforeValidator(parse_score)]
Url = Annotated[str, BeforeValidator(parse_url)]
OptionalUrl = Annotated[str | None, BeforeValidator(parse_optional_url)]
Title = Annotated[str, BeforeValidator(parse_title)]
Texts = Annotated[list[str] | None, BeforeValidator(parse_texts)]
Text = Annotated[str, AfterValidator(check_text)]


# --- the model ------------------------------------------------------------------


class ApiModel(BaseModel):
    """Keeps the fields it does not know (``extra="allow"``)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)


class PriceInfo(ApiModel):
    price: Price = None
    sale_price: Price = None
    origin_price: Price = None


class SaleInfo(ApiModel):
    sale_quantity_90days: Annotated[int | None, BeforeValidator(parse_sales)] = None
    sale_quantity_90days_text: Text | None = None  # as the API sent it: "100000+"

    @model_validator(mode="before")
    @classmethod
    def _keep_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and "sale_quantity_90days_text" not in data:
            raw = data.get("sale_quantity_90days")
            if not _blank(raw):
                data = {**data, "sale_quantity_90days_text": str(raw)}
        return data


class DeliveryInfo(ApiModel):
    area_from: Texts = None
    free_shipping: bool | None = None
    ship_in_48h: bool | None = None


class ScoreInfo(ApiModel):
    composite_score: Score = None


class ShopInfo(ApiModel):
    company_name: Text | None = None
    is_powerful_seller: bool | None = None
    is_super_factory: bool | None = None
    shop_years: Count = None
    score_info: ScoreInfo | None = None


class ProductItem(ApiModel):
    """One product of a category page, normalised, with its crawl context."""

    item_id: ItemId
    product_url: Url
    title: Title
    title_origin: Text | None = None  # the Chinese title when translated
    img: OptionalUrl = None
    category_path: Texts = None
    price: Price = None
    price_info: PriceInfo | None = None
    currency: Text | None = None
    moq: Count = None
    quantity_begin: Count = None
    sale_info: SaleInfo | None = None
    delivery_info: DeliveryInfo | None = None
    shop_info: ShopInfo | None = None
    item_repurchase_rate: Rate = None
    low_refund_rate: bool | None = None
    ship_in_48h: bool | None = None
    one_piece_min_order: bool | None = None
    # the crawl context the spider adds
    cat_id: int | None = None
    language: Text | None = None
    sort: Text | None = None
    filters: dict[str, Any] = ModelField(default_factory=dict)
    page: int | None = None
    position: int | None = None
    crawled_at: Text | None = None  # UTC, ISO 8601


@dataclass
class InvalidItem:
    """An item that failed validation, kept for the quarantine feed."""

    item_id: Any
    cat_id: Any
    language: Any
    page: Any
    position: Any
    errors: list[dict[str, str]]
    item: dict[str, Any] = field(default_factory=dict)  # as the API sent it


# --- errors -------------------------------------------------------------------


def field_paths(model: type[BaseModel] = ProductItem, prefix: str = "") -> list[str]:
    """Every known field as a dotted path (``price_info.sale_price``)."""
    paths = []
    for name, info in model.model_fields.items():
        paths.append(prefix + name)
        for kind in _model_types(info.annotation):
            paths += field_paths(kind, f"{prefix}{name}.")
    return paths


def _model_types(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _model_types(arg)


KNOWN_FIELDS = frozenset(field_paths())


@dataclass(frozen=True)
class Problem:
    """One reason an item is invalid: a known field (or "other") and a kind."""

    field: str
    kind: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "kind": self.kind, "message": self.message}


def problems(error: ValidationError) -> list[Problem]:
    """The errors of a failed validation, on the bounded field x kind grid."""
    found = []
    for entry in error.errors():
        path = ".".join(str(p) for p in entry["loc"] if isinstance(p, str))
        kind = entry["type"]
        if kind not in ERROR_KINDS:
            kind = "missing" if entry.get("input", "") is None else "type"
        found.append(
            Problem(path if path in KNOWN_FIELDS else "other", kind, entry["msg"])
        )
    return found


# --- itemadapter: export the extra fields too -------------------------------------


class ApiModelAdapter(PydanticAdapter):
    """itemadapter's pydantic adapter, plus the fields kept by ``extra="allow"``
    (the stock adapter only sees declared fields, so feeds would drop them)."""

    @classmethod
    def is_item_class(cls, item_class: type) -> bool:
        return isinstance(item_class, type) and issubclass(item_class, ApiModel)

    def __getitem__(self, field_name: str) -> Any:
        extra = self.item.model_extra or {}
        if field_name in extra:
            return extra[field_name]
        return super().__getitem__(field_name)

    def __setitem__(self, field_name: str, value: Any) -> None:
        setattr(self.item, field_name, value)

    def get_field_meta(self, field_name: str) -> MappingProxyType[str, Any]:
        """Extra fields have no metadata (the stock adapter raises KeyError,
        which makes every feed exporter fail on them)."""
        if field_name in (self.item.model_extra or {}):
            return MappingProxyType({})
        return super().get_field_meta(field_name)

    def __iter__(self) -> Iterator[str]:
        yield from type(self.item).model_fields
        yield from self.item.model_extra or {}


if ApiModelAdapter not in ItemAdapter.ADAPTER_CLASSES:
    ItemAdapter.ADAPTER_CLASSES.appendleft(ApiModelAdapter)  # type: ignore[attr-defined]
