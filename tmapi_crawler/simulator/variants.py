"""The simulator's item details (``/1688/item_detail``): variants, tiers,
images and seller of a listed product, deterministic from the seed, the
item_id and the day.

Each product has one to three colours times one or two sizes of variants
(SKUs); a variant costs the listing's price plus a fixed offset (the first
none), so a listing repriced on a day reprices its variants. Each day draws
each variant's stock again (:data:`OUT_OF_STOCK` of them at 0) and gives
some products one new colour (:data:`NEW_VARIANT`). Tests compute the exact
variant changes between two days from :func:`variants`. The shape follows
the integrator's imitation in ``../shared/tmapi/API.md`` (``skus``,
``sku_price_range``, ``main_imgs``, ``shop_info``); stock alternates between
numbers and strings, as the real API may send either.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tmapi_crawler.simulator.catalog import IMAGE_BASE, Product, _yuan

COLOURS = (
    ("黑色", "black"), ("白色", "white"), ("红色", "red"), ("蓝色", "blue"),
    ("绿色", "green"), ("粉色", "pink"), ("灰色", "grey"),
)  # fmt: skip
SIZES = ("S", "M", "L", "XL")
OUT_OF_STOCK = 0.15  # share of variants at 0 stock on a day
NEW_VARIANT = 0.10  # share of products that gain a colour on a day


@dataclass(frozen=True, slots=True)
class Variant:
    sku_id: str
    colour: int  # index into COLOURS
    size: str
    offset_fen: int  # over the listing's price
    sale_count: int

    def price_fen(self, product: Product) -> int:
        return product.price_fen + self.offset_fen

    def stock(self, seed: int, day: int) -> int:
        rng = random.Random(f"{seed}:stock:{self.sku_id}:{day}")
        return 0 if rng.random() < OUT_OF_STOCK else rng.randint(1, 5000)


def variants(seed: int, item_id: int, day: int) -> list[Variant]:
    """The product's variants on *day*, in a fixed order."""
    rng = random.Random(f"{seed}:skus:{item_id}")
    colours = rng.sample(range(len(COLOURS)), rng.randint(1, 3))
    sizes = rng.sample(SIZES, rng.randint(1, 2))
    found: list[Variant] = []

    def add(colour: int, size: str) -> None:
        offset = 0 if not found else rng.choice((0, 50, 100, 200))
        sku_id = str(item_id * 100 + len(found))
        found.append(Variant(sku_id, colour, size, offset, rng.randint(0, 9000)))

    for colour in colours:
        for size in sizes:
            add(colour, size)
    for later in range(1, day + 1):
        draw = random.Random(f"{seed}:newsku:{item_id}:{later}").random()
        unused = [c for c in range(len(COLOURS)) if c not in colours]
        if draw < NEW_VARIANT and unused:
            colours.append(unused[0])
            add(unused[0], sizes[0])
    return found


def detail_data(
    seed: int, cat_id: int, product: Product, day: int, language: str
) -> dict[str, Any]:
    """The ``data`` of one item's details in *language*."""
    rng = random.Random(f"{seed}:detail:{product.item_id}")
    zh = language == "zh"
    listed = product.render(language)
    shop = listed.get("shop_info", {})
    moq = int(listed.get("moq") or 1)
    skus = []
    for n, variant in enumerate(variants(seed, product.item_id, day)):
        colour = COLOURS[variant.colour][0 if zh else 1]
        stock = variant.stock(seed, day)
        price = variant.price_fen(product)
        skus.append(
            {
                "skuid": variant.sku_id,
                "specid": f"spec{variant.sku_id}",
                "sale_price": _yuan(price),
                "origin_price": _yuan(price + 100),
                "stock": stock if n % 2 == 0 else str(stock),
                "sale_count": variant.sale_count,
                "props_ids": f"0:{variant.colour};1:{SIZES.index(variant.size)}",
                "props_names": f"{'颜色' if zh else 'colour'}:{colour};"
                f"{'尺码' if zh else 'size'}:{variant.size}",
            }
        )
    tiers = [(moq, product.price_fen), (moq * 10, product.price_fen * 95 // 100)]
    member = f"b2b-{rng.randint(10**9, 10**10)}"
    return {
        "item_id": product.item_id,
        "product_url": listed["product_url"],
        "title": listed["title"],
        "category_id": cat_id,
        "root_category_id": cat_id,
        "currency": "CNY",
        "offer_unit": "件",
        "product_props": [{"材质": "塑料"}, {"产地": "义乌"}],
        "main_imgs": [
            f"{IMAGE_BASE}O1CN01{product.item_id:x}_{n}.jpg" for n in range(3)
        ],
        "video_url": (
            f"https://cloud.video.taobao.com/{product.item_id}.mp4"
            if rng.random() < 0.5
            else ""
        ),
        "shop_info": {
            "shop_name": shop.get("company_name"),
            "company_name": shop.get("company_name"),
            "shop_url": f"https://shop{rng.randint(10**6, 10**7)}.1688.com",
            "seller_login_id": member,
            "seller_user_id": str(rng.randint(10**9, 10**10)),
            "seller_member_id": member,
        },
        "skus": skus,
        "sku_price_range": {
            "begin_num": moq,
            "sku_param": [
                {"beginAmount": least, "price": _yuan(fen)} for least, fen in tiers
            ],
        },
        "sale_count": product.sales,
    }


def apply_detail_quirks(data: dict[str, Any], kinds: list[str]) -> None:
    """An item's details bent by the quirks that apply to them
    (``odd_details``: fields the crawler must leave out, never crash on)."""
    if "odd_details" in kinds and data["skus"]:
        data["skus"][0]["stock"] = "many"
        data["skus"].append({"specid": "no-skuid", "stock": 1})
        data["video_url"] = "not a url"
        data["main_imgs"] = "one.jpg"
        data["x_detail_trace"] = {"kept": True}
