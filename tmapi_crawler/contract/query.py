"""The query a category page is fetched with, and the URL of one page. Free of Scrapy.

A :class:`CategoryQuery` is one category in one language with its options
(:class:`QueryOptions`: sort, page size, price range, the boolean filters),
validated as the API takes them; :meth:`CategoryQuery.params` gives its
query-string fields in a fixed order, so that equal queries give equal URLs
and one :attr:`~CategoryQuery.key` on every machine. :func:`page_url` is the
URL of one page of it, without the token (the download handler adds it).
Part of the items endpoint's contract (:mod:`tmapi_crawler.contract.api`).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from typing import Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

ITEMS_PATH = "/1688/category/items/v2"
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


def page_url(base_url: str, query: CategoryQuery, page: int) -> str:
    """The URL of one page, without the token (it is added at download time)."""
    return f"{base_url.rstrip('/')}{ITEMS_PATH}?{urlencode(query.params(page))}"
