"""Item details (``/1688/item_detail``): the query, the typed detail item and
its tolerant parser. Free of Scrapy.

One paid call per item. The documented part of the answer (``item_id``,
``title``, ``category_id``, ``currency``, ``offer_unit``, ``product_props``)
is small; the variants (``skus``), quantity tiers (``sku_price_range``),
images, video and seller (``shop_info``) are known only from an
integrator's imitation (``../shared/tmapi/API.md``), so
:func:`detail_from_data` reads every field tolerantly: strings or numbers,
missing fields, ``null`` lists. A value that does not fit is left out (None)
and named in the answer's problems (the error contract logs them once and
counts the answer in ``tmapi/details/with_problems``; the spider counts each
field in ``tmapi/details/unfit/<field>``); fields it does not know are kept
in ``extra``, raw. ``data`` null means the item no longer exists:
:attr:`DetailAnswer.item` is None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from pydantic_core import PydanticCustomError

from tmapi_crawler.contract.items import (
    check_text,
    parse_count,
    parse_item_id,
    parse_optional_url,
    parse_price,
)

DETAIL_PATH = "/1688/item_detail"
# which listings get a detail call: judged by the store during the crawl
STORE_KINDS = ("new", "price", "back")
MAX_DETAIL_CALLS = "TMAPI_MAX_DETAIL_CALLS"  # the setting capping them
DETAIL_CHOICES = (*STORE_KINDS, "all", "none")


def parse_detail_kinds(value: object) -> frozenset[str]:
    """``"new,price"`` -> ``{"new", "price"}``; ``"all"`` -> ``{"all"}``;
    ``"none"``, empty or None -> nothing. ValueError names what is allowed."""
    if value is None:
        return frozenset()
    parts = (
        value
        if isinstance(value, list | tuple | set | frozenset)
        else (str(value).split(","))
    )
    kinds = {str(part).strip() for part in parts if str(part).strip()}
    unknown = sorted(kinds - set(DETAIL_CHOICES))
    if unknown or (("all" in kinds or "none" in kinds) and len(kinds) > 1):
        raise ValueError(
            "must be 'all', 'none', or one or more of "
            f"{', '.join(STORE_KINDS)} separated by commas"
        )
    return frozenset(kinds - {"none"})


# the top-level fields the parser reads (the rest goes to ``extra``)
READ = frozenset(
    {
        "item_id", "title", "category_id", "root_category_id", "currency",
        "offer_unit", "product_url", "product_props", "main_imgs", "video_url",
        "shop_info", "skus", "sku_price_range", "sale_count",
    }
)  # fmt: skip
SKU_READ = frozenset(
    {"skuid", "specid", "sale_price", "origin_price", "stock", "sale_count",
     "props_names", "props_ids"}
)  # fmt: skip


def detail_url(base_url: str, item_id: int, language: str) -> str:
    """The URL of one item's details, without the token. The language is
    always sent: the endpoint's default is ``zh``, not the crawl's."""
    query = urlencode({"item_id": item_id, "language": language})
    return f"{base_url.rstrip('/')}{DETAIL_PATH}?{query}"


class Seller(BaseModel):
    member_id: str | None = None
    user_id: str | None = None
    login_id: str | None = None
    shop_name: str | None = None
    company_name: str | None = None
    shop_url: str | None = None


class Tier(BaseModel):
    """A quantity tier: from *min_quantity* units, *price* a unit."""

    min_quantity: int
    price: str  # an exact decimal string


class Sku(BaseModel):
    """One variant: its properties (``{"颜色": "黑色"}``), price and stock."""

    id: str
    spec_id: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    price: str | None = None  # exact decimal strings
    origin_price: str | None = None
    stock: int | None = None
    sale_count: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class DetailItem(BaseModel):
    """One item's details, in one language, as crawled."""

    item_id: int
    language: str
    title: str | None = None
    category_id: int | None = None
    root_category_id: int | None = None
    currency: str | None = None
    offer_unit: str | None = None
    product_url: str | None = None
    images: list[str] = Field(default_factory=list)
    video: str | None = None
    seller: Seller = Field(default_factory=Seller)
    properties: list[dict[str, str]] = Field(default_factory=list)
    tiers: list[Tier] = Field(default_factory=list)
    skus: list[Sku] = Field(default_factory=list)
    sale_count: int | None = None
    crawled_at: str | None = None  # UTC, ISO 8601
    extra: dict[str, Any] = Field(default_factory=dict)  # fields not read, raw


@dataclass(frozen=True, slots=True)
class DetailAnswer:
    """What one call said: the item (None: it no longer exists) and the
    fields that did not fit (``(field, why)``)."""

    item_id: int
    language: str
    item: DetailItem | None
    unfit: tuple[tuple[str, str], ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(f"{name} {why}" for name, why in self.unfit)

    @property
    def unfit_fields(self) -> tuple[str, ...]:
        """The fields that did not fit, each once (bounded: no indexes)."""
        return tuple(dict.fromkeys(name for name, _ in self.unfit))


class _Reader:
    """Reads values, noting what does not fit instead of failing."""

    def __init__(self) -> None:
        self.unfit: list[tuple[str, str]] = []

    def value(self, name: str, raw: Any, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(raw)
        except PydanticCustomError as error:
            self.unfit.append((name, f"is {raw!r:.40}: {error.message()}"))
        except (TypeError, ValueError):
            self.unfit.append((name, f"is {raw!r:.40}"))
        return None

    def price(self, name: str, raw: Any) -> str | None:
        found = self.value(name, raw, parse_price)
        return None if found is None else str(found)

    def text(self, name: str, raw: Any) -> str | None:
        if raw is None or raw == "":
            return None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            self.unfit.append((name, f"is a {type(raw).__name__}, not text"))
            return None
        return self.value(name, raw, check_text)

    def mapping(self, name: str, raw: Any) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.unfit.append((name, f"is a {type(raw).__name__}, not an object"))
            return {}
        return raw

    def listing(self, name: str, raw: Any) -> list[Any]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.unfit.append((name, f"is a {type(raw).__name__}, not a list"))
            return []
        return raw


FULL_COLON = "\uff1a"  # as Chinese text writes a colon


def _properties(reader: _Reader, raw: Any) -> dict[str, str]:
    """``"颜色:黑色;尺码:M"`` (or ``[...]``, or an object) as a mapping."""
    if isinstance(raw, Mapping):
        pairs = [(str(k), str(v)) for k, v in raw.items()]
    else:
        parts = raw if isinstance(raw, list) else str(raw or "").split(";")
        pairs = []
        for part in parts:
            name, colon, value = str(part).replace(FULL_COLON, ":").partition(":")
            if part and not colon:
                reader.unfit.append(("skus.props_names", f"has {part!r:.40}"))
            elif part:
                pairs.append((name.strip(), value.strip()))
    return dict(pairs)


def _sku(reader: _Reader, raw: Any) -> Sku | None:
    if not isinstance(raw, Mapping):
        reader.unfit.append(("skus", f"holds a {type(raw).__name__}, not an object"))
        return None
    sku_id = reader.text("skus.skuid", raw.get("skuid"))
    if sku_id is None:
        reader.unfit.append(("skus.skuid", "is missing"))
        return None
    return Sku(
        id=sku_id,
        spec_id=reader.text("skus.specid", raw.get("specid")),
        properties=_properties(reader, raw.get("props_names")),
        price=reader.price("skus.sale_price", raw.get("sale_price")),
        origin_price=reader.price("skus.origin_price", raw.get("origin_price")),
        stock=reader.value("skus.stock", raw.get("stock"), parse_count),
        sale_count=reader.value("skus.sale_count", raw.get("sale_count"), parse_count),
        extra={k: v for k, v in raw.items() if k not in SKU_READ},
    )


def _tier(reader: _Reader, raw: Any) -> Tier | None:
    if not isinstance(raw, Mapping):
        reader.unfit.append(("sku_price_range.sku_param", "holds a non-object"))
        return None
    least = reader.value(
        "sku_price_range.sku_param.beginAmount", raw.get("beginAmount"), parse_count
    )
    price = reader.price("sku_price_range.sku_param.price", raw.get("price"))
    if least is None or price is None:
        return None
    return Tier(min_quantity=least, price=price)


def _property(reader: _Reader, raw: Any) -> dict[str, str] | None:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    reader.unfit.append(("product_props", f"holds a {type(raw).__name__}"))
    return None


def detail_from_data(
    data: Mapping[str, Any] | None, item_id: int, language: str, crawled_at: str
) -> DetailAnswer:
    """The answer of one detail call; ``data`` null or empty: the item no
    longer exists."""
    if not data:
        return DetailAnswer(item_id, language, None)
    reader = _Reader()
    answered = reader.value("item_id", data.get("item_id", item_id), parse_item_id)
    if answered is not None and answered != item_id:
        reader.unfit.append(("item_id", f"is {answered}, not the {item_id} asked"))
    shop = reader.mapping("shop_info", data.get("shop_info"))
    tiers_of = reader.mapping("sku_price_range", data.get("sku_price_range"))
    images = [
        url
        for raw in reader.listing("main_imgs", data.get("main_imgs"))
        if (url := reader.value("main_imgs", raw, parse_optional_url))
    ]
    item = DetailItem(
        item_id=item_id,
        language=language,
        title=reader.text("title", data.get("title")),
        category_id=reader.value("category_id", data.get("category_id"), parse_count),
        root_category_id=reader.value(
            "root_category_id", data.get("root_category_id"), parse_count
        ),
        currency=reader.text("currency", data.get("currency")),
        offer_unit=reader.text("offer_unit", data.get("offer_unit")),
        product_url=reader.value(
            "product_url", data.get("product_url"), parse_optional_url
        ),
        images=images,
        video=reader.value("video_url", data.get("video_url"), parse_optional_url),
        seller=Seller(
            member_id=reader.text("shop_info", shop.get("seller_member_id")),
            user_id=reader.text("shop_info", shop.get("seller_user_id")),
            login_id=reader.text("shop_info", shop.get("seller_login_id")),
            shop_name=reader.text("shop_info", shop.get("shop_name")),
            company_name=reader.text("shop_info", shop.get("company_name")),
            shop_url=reader.value(
                "shop_info", shop.get("shop_url"), parse_optional_url
            ),
        ),
        properties=[
            prop
            for raw in reader.listing("product_props", data.get("product_props"))
            if (prop := _property(reader, raw)) is not None
        ],
        tiers=[
            tier
            for raw in reader.listing(
                "sku_price_range.sku_param", tiers_of.get("sku_param")
            )
            if (tier := _tier(reader, raw)) is not None
        ],
        skus=[
            found
            for raw in reader.listing("skus", data.get("skus"))
            if (found := _sku(reader, raw)) is not None
        ],
        sale_count=reader.value("sale_count", data.get("sale_count"), parse_count),
        crawled_at=crawled_at,
        extra={k: v for k, v in data.items() if k not in READ},
    )
    return DetailAnswer(item_id, language, item, tuple(reader.unfit))
