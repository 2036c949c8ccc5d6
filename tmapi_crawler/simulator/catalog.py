"""A deterministic 1688 catalog for the simulator.

Every category has a seed-derived size (a few items to tens of thousands)
and realistic products in the documented shape: Chinese titles translated per
language, CNY price strings clustered on popular price points, "100000+" style
sales and "57%" repurchase rates. The documentation's three sample items open
category 1031922. The same seed gives the same catalog on every machine, so
tests compute what a crawl must deliver by calling :meth:`Catalog.expected`.

Days (``--day N``): day 0 is the catalog above; each later day evolves the
one before it deterministically (:func:`evolve`): some prices change, some
listings go, some gone the day before come back, new ones appear. Tests
compute the exact changes between two days from :meth:`Catalog.products`.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

SAMPLE_CATEGORY = 1031922
SAMPLE_RESPONSE = Path(__file__).with_name("sample_response.json")
MIN_SIZE, MAX_SIZE = 3, 40_000
LANGUAGE_COLUMNS = ("zh", "en", "ru", "vi", "ja", "ko")

NOUNS = (
    (
        "太阳镜",
        "sunglasses",
        "солнцезащитные очки",
        "kính râm",
        "サングラス",
        "선글라스",
    ),
    (
        "手机壳",
        "phone case",
        "чехол для телефона",
        "ốp điện thoại",
        "スマホケース",
        "휴대폰 케이스",
    ),
    ("保温杯", "thermos cup", "термокружка", "cốc giữ nhiệt", "保温カップ", "보온컵"),
    (
        "收纳盒",
        "storage box",
        "коробка для хранения",
        "hộp đựng đồ",
        "収納ボックス",
        "수납함",
    ),
    (
        "数据线",
        "charging cable",
        "кабель для зарядки",
        "cáp sạc",
        "充電ケーブル",
        "충전 케이블",
    ),
    ("连衣裙", "dress", "платье", "váy liền", "ワンピース", "원피스"),
    ("运动鞋", "sneakers", "кроссовки", "giày thể thao", "スニーカー", "운동화"),
    ("双肩包", "backpack", "рюкзак", "ba lô", "リュック", "백팩"),
    ("发夹", "hair clip", "заколка", "kẹp tóc", "ヘアクリップ", "헤어핀"),
    (
        "玩具车",
        "toy car",
        "игрушечная машинка",
        "xe đồ chơi",
        "おもちゃの車",
        "장난감 자동차",
    ),
    ("毛巾", "towel", "полотенце", "khăn tắm", "タオル", "수건"),
    ("耳机", "earphones", "наушники", "tai nghe", "イヤホン", "이어폰"),
    ("台灯", "desk lamp", "настольная лампа", "đèn bàn", "デスクライト", "스탠드"),
    ("雨伞", "umbrella", "зонт", "ô dù", "傘", "우산"),
    ("袜子", "socks", "носки", "tất", "靴下", "양말"),
    ("钥匙扣", "keychain", "брелок", "móc khóa", "キーホルダー", "키링"),
    ("水杯", "water bottle", "бутылка для воды", "bình nước", "水筒", "물병"),
    ("抱枕", "throw pillow", "подушка", "gối ôm", "クッション", "쿠션"),
)
ADJECTIVES = (
    ("新款", "new", "новый", "mới", "新作", "신상"),
    ("爆款", "best-selling", "хит продаж", "bán chạy", "大人気", "인기"),
    ("批发", "wholesale", "оптом", "bán sỉ", "卸売", "도매"),
    ("韩版", "Korean-style", "в корейском стиле", "kiểu Hàn", "韓国風", "한국 스타일"),
    ("防水", "waterproof", "водонепроницаемый", "chống nước", "防水", "방수"),
    ("便携", "portable", "портативный", "di động", "携帯用", "휴대용"),
    ("可爱", "cute", "милый", "dễ thương", "かわいい", "귀여운"),
    ("大容量", "large-capacity", "вместительный", "dung tích lớn", "大容量", "대용량"),
    ("透明", "transparent", "прозрачный", "trong suốt", "透明", "투명"),
    ("复古", "retro", "ретро", "cổ điển", "レトロ", "레트로"),
    ("儿童", "children's", "детский", "trẻ em", "子供用", "어린이"),
)
PLACES = (
    ("浙江", "义乌市"),
    ("浙江", "台州市"),
    ("广东", "广州市"),
    ("广东", "深圳市"),
    ("江苏", "苏州市"),
    ("福建", "泉州市"),
    ("山东", "临沂市"),
    ("河北", "保定市"),
)
COMPANY_WORDS = ("恒达", "鑫源", "华美", "优品", "聚星", "创意", "金盛", "宏发")
COMPANY_KINDS = ("有限公司", "商行", "工厂", "贸易有限公司", "电子商务商行")
# Popular price points, in fen: many products share them, as on 1688.
PRICE_POINTS = (
    60,
    100,
    150,
    200,
    250,
    300,
    500,
    990,
    1000,
    1280,
    1500,
    1990,
    2500,
    2990,
    3900,
    4900,
    5900,
    9900,
)
IMAGE_BASE = "https://cbu01.alicdn.com/img/ibank/"
SALES_STEPS = (100000, 50000, 10000, 5000, 1000, 500, 100)


@dataclass(frozen=True, slots=True)
class Product:
    """One product and the hidden attributes the API filters and sorts on."""

    item_id: int
    price_fen: int
    sales: int
    new_arrival: bool
    support_dropshipping: bool
    free_shipping: bool
    is_super_factory: bool
    fields: dict[str, Any]  # the documented item shape, titles in Chinese
    titles: tuple[str, ...]  # the title in LANGUAGE_COLUMNS order

    @property
    def price(self) -> Decimal:
        return Decimal(self.price_fen) / 100

    def render(self, language: str) -> dict[str, Any]:
        """The item as the API returns it in *language*."""
        item = dict(self.fields)
        title = self.titles[LANGUAGE_COLUMNS.index(language)]
        if title != item["title"]:
            item["title_origin"] = item["title"]
            item["title"] = title
        return item


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _sales_text(sales: int) -> str:
    for step in SALES_STEPS:
        if sales >= step:
            return f"{step}+"
    return str(sales)


def category_size(seed: int, cat_id: int) -> int:
    """A seed-derived catalog size, log-uniform from a few to tens of thousands."""
    rng = random.Random(f"{seed}:size:{cat_id}")
    return int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))


def _sample_products() -> list[Product]:
    items = json.loads(SAMPLE_RESPONSE.read_text("utf-8"))["data"]["items"]
    return [
        Product(
            item_id=item["item_id"],
            price_fen=int(Decimal(item["price"]) * 100),
            sales=100000,
            new_arrival=False,
            support_dropshipping=True,
            free_shipping=item["delivery_info"]["free_shipping"],
            is_super_factory=item["shop_info"]["is_super_factory"],
            fields=item,
            titles=(item["title"],) * len(LANGUAGE_COLUMNS),
        )
        for item in items
    ]


def _product(
    rng: random.Random, item_id: int, path: list[str], forced_price: int | None = None
) -> Product:
    words = [*rng.sample(ADJECTIVES, rng.randint(1, 3)), rng.choice(NOUNS)]
    code = str(rng.randint(100, 9999))
    titles = tuple(
        (code + "".join(w[0] for w in words))
        if column == 0
        else f"{code} " + " ".join(w[column] for w in words)
        for column in range(len(LANGUAGE_COLUMNS))
    )
    if rng.random() < 0.45:
        price = rng.choice(PRICE_POINTS)
    else:
        price = max(10, round(math.exp(rng.gauss(math.log(2000), 1.0))))
    if forced_price is not None:  # the draws above still happen: same catalog else
        price = forced_price
    origin = "" if rng.random() < 0.7 else _yuan(price + rng.randint(1, price))
    sales = int(math.exp(rng.uniform(0, math.log(300_000))))
    moq = rng.choice((1, 1, 2, 2, 3, 5, 10, 20, 50, 100))
    province, city = rng.choice(PLACES)
    free_shipping, ship_48h = rng.random() < 0.3, rng.random() < 0.5
    super_factory = rng.random() < 0.15
    company = (
        city[:-1] + "".join(rng.sample(COMPANY_WORDS, 2)) + rng.choice(COMPANY_KINDS)
    )
    fields = {
        "item_id": item_id,
        "product_url": f"https://detail.1688.com/offer/{item_id}.html",
        "title": titles[0],
        "img": f"{IMAGE_BASE}O1CN01{item_id:x}_!!{rng.randint(10**9, 10**10)}-0.jpg",
        "category_path": path,
        "price": _yuan(price),
        "price_info": {
            "price": _yuan(price),
            "sale_price": _yuan(price),
            "origin_price": origin,
        },
        "currency": "CNY",
        "moq": str(moq),
        "quantity_begin": str(moq),
        "sale_info": {"sale_quantity_90days": _sales_text(sales)},
        "delivery_info": {
            "area_from": [province, city],
            "free_shipping": free_shipping,
            "ship_in_48h": ship_48h,
        },
        "shop_info": {
            "company_name": company,
            "is_powerful_seller": rng.random() < 0.3,
            "is_super_factory": super_factory,
            "shop_years": rng.randint(1, 15),
            "score_info": {
                "composite_score": f"{rng.choice((3.5, 4.0, 4.5, 4.5, 5.0)):.1f}"
            },
        },
        "item_repurchase_rate": f"{rng.randint(0, 80)}%",
        "low_refund_rate": rng.random() < 0.4,
        "ship_in_48h": ship_48h,
        "one_piece_min_order": moq == 1,
    }
    return Product(
        item_id=item_id,
        price_fen=price,
        sales=sales,
        new_arrival=rng.random() < 0.2,
        support_dropshipping=rng.random() < 0.6,
        free_shipping=free_shipping,
        is_super_factory=super_factory,
        fields=fields,
        titles=titles,
    )


SORT_KEYS = {
    "default": None,
    "sales": lambda p: (-p.sales, p.item_id),
    "price_up": lambda p: (p.price_fen, p.item_id),
    "price_down": lambda p: (-p.price_fen, p.item_id),
}


@dataclass(frozen=True, slots=True)
class Selection:
    """The products a query matches, in the query's order, before the cap."""

    products: tuple[Product, ...]

    def __len__(self) -> int:
        return len(self.products)


class Catalog:
    """Products per category, derived from a seed; sizes can be pinned."""

    def __init__(
        self,
        seed: int = 0,
        sizes: dict[int, int] | None = None,
        *,
        price_end_inclusive: bool = True,
        dense: dict[int, tuple[int, int]] | None = None,
        day: int = 0,
    ) -> None:
        self.seed = seed
        self.day = day
        self.sizes = dict(sizes or {})
        self.dense = dict(dense or {})  # cat_id: (price in fen, products on it)
        self.price_end_inclusive = price_end_inclusive
        # every product of the categories built so far, for item details:
        # item_id -> (cat_id, the product listed today, or None: gone today)
        self.known: dict[int, tuple[int, Product | None]] = {}
        self.products = lru_cache(maxsize=64)(self._products)
        self.select = lru_cache(maxsize=1024)(self._select)

    def size(self, cat_id: int) -> int:
        return self.sizes.get(cat_id) or category_size(self.seed, cat_id)

    def _products(self, cat_id: int) -> tuple[Product, ...]:
        rng = random.Random(f"{self.seed}:catalog:{cat_id}")
        products = _sample_products() if cat_id == SAMPLE_CATEGORY else []
        count = max(0, self.size(cat_id) - len(products))
        path = [str(rng.randint(1, 99)), str(rng.randint(100, 999))]
        ids = rng.sample(range(500_000_000_000, 1_000_000_000_000), count)
        dense_price, dense_count = self.dense.get(cat_id, (None, 0))
        products += [
            _product(rng, item_id, path, dense_price if n < dense_count else None)
            for n, item_id in enumerate(ids)
        ]
        listed, away = products, list[Product]()
        for day in range(1, self.day + 1):
            listed, away = evolve(self.seed, cat_id, day, path, listed, away)
        self.known.update((p.item_id, (cat_id, None)) for p in away)
        self.known.update((p.item_id, (cat_id, p)) for p in listed)
        return tuple(listed)

    def find(self, item_id: int) -> tuple[int, Product | None] | None:
        """(its category, the product listed today or None if gone today) of
        an item of a category built so far; None: no such item."""
        return self.known.get(item_id)

    def _select(
        self,
        cat_id: int,
        sort: str = "default",
        price_start: Decimal | None = None,
        price_end: Decimal | None = None,
        flags: frozenset[str] = frozenset(),
    ) -> Selection:
        def wanted(product: Product) -> bool:
            if price_start is not None and product.price < price_start:
                return False
            if price_end is not None and (
                product.price > price_end
                or (not self.price_end_inclusive and product.price == price_end)
            ):
                return False
            return all(getattr(product, flag) for flag in flags)

        chosen = [p for p in self.products(cat_id) if wanted(p)]
        key = SORT_KEYS[sort]
        if key is not None:
            chosen.sort(key=key)
        return Selection(tuple(chosen))

    def expected(
        self, cat_id: int, *, cap: int | None = 2000, **query: Any
    ) -> list[Product]:
        """What a complete crawl of one query delivers: the matches up to the cap."""
        flags = frozenset(
            name
            for name in (
                "new_arrival",
                "support_dropshipping",
                "free_shipping",
                "is_super_factory",
            )
            if query.pop(name, None)
        )
        selection = self.select(cat_id, flags=flags, **query)
        return list(selection.products[:cap])


# What a day does to a category (shares of its listings, drawn per listing).
DAY_PRICE_CHANGE = 0.10
DAY_GONE = 0.05
DAY_BACK = 0.5  # of the listings gone the day before
DAY_NEW = 0.05  # new listings, at least one a day


def _repriced(product: Product, fen: int) -> Product:
    fields = dict(product.fields)
    fields["price"] = _yuan(fen)
    fields["price_info"] = {
        **fields.get("price_info", {}),
        "price": _yuan(fen),
        "sale_price": _yuan(fen),
    }
    return replace(product, price_fen=fen, fields=fields)


def evolve(
    seed: int,
    cat_id: int,
    day: int,
    path: list[str],
    listed: list[Product],
    away: list[Product],
) -> tuple[list[Product], list[Product]]:
    """One day of a category: (listed, gone) of *day* from those of the day
    before. The same arguments give the same day on every machine."""
    rng = random.Random(f"{seed}:day:{day}:{cat_id}")
    kept: list[Product] = []
    gone: list[Product] = []
    for product in listed:
        draw = rng.random()
        if draw < DAY_GONE:
            gone.append(product)
        elif draw < DAY_GONE + DAY_PRICE_CHANGE:
            factor = rng.choice((0.8, 0.9, 0.95, 1.05, 1.1, 1.25))
            fen = max(10, round(product.price_fen * factor))
            kept.append(
                _repriced(product, fen if fen != product.price_fen else fen + 1)
            )
        else:
            kept.append(product)
    back = [product for product in away if rng.random() < DAY_BACK]
    returned = {product.item_id for product in back}
    stay_away = [product for product in away if product.item_id not in returned]
    known = {p.item_id for p in (*listed, *away)}
    new = []
    for _ in range(max(1, round(len(listed) * DAY_NEW))):
        item_id = rng.randrange(500_000_000_000, 1_000_000_000_000)
        if item_id not in known:
            known.add(item_id)
            new.append(_product(rng, item_id, path))
    return kept + back + new, stay_away + gone
