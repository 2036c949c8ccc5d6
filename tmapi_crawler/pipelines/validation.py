"""Item pipeline: validation (the spider's raw dict -> :class:`ProductItem`).

:class:`ValidationPipeline` turns the spider's raw item (the API's fields plus
the crawl context) into a typed, normalised :class:`ProductItem`. An invalid
item is logged with its item_id, category and page, counted in
``tmapi/items/invalid/<field>/<kind>`` (known fields and a fixed set of kinds
only, so the number of stat keys stays bounded) and dropped, or, with
``TMAPI_QUARANTINE_FEED`` set, passed on as an :class:`InvalidItem` that only
the quarantine feed exports.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from pydantic import ValidationError

from tmapi_crawler.contract.details import DetailItem
from tmapi_crawler.contract.items import InvalidItem, ProductItem, problems
from tmapi_crawler.contract.stats import (
    ITEMS_INVALID,
    ITEMS_QUARANTINED,
    invalid_field,
)
from tmapi_crawler.exceptions import InvalidItemDropped

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


logger = logging.getLogger(__name__)


def _where(item: Any) -> str:
    get = item.get if isinstance(item, dict) else lambda name: getattr(item, name)
    return (
        f"item {get('item_id')!r:.40} of category {get('cat_id')} "
        f"({get('language')}) page {get('page')} position {get('position')}"
    )


class ValidationPipeline:
    def __init__(self, stats: StatsCollector, quarantine: bool) -> None:
        self.stats = stats
        self.quarantine = quarantine

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidationPipeline:
        quarantine = bool(crawler.settings.get("TMAPI_QUARANTINE_FEED"))
        return cls(crawler.stats, quarantine)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, ProductItem | InvalidItem | DetailItem):
            return item
        # The spider's items are plain dicts: ItemAdapter.asdict() would copy
        # every nested value after asking each if it is an item (a quarter of
        # the item path's CPU, bench/ benchmark 4); pydantic does not mutate it.
        raw = item if isinstance(item, dict) else ItemAdapter(item).asdict()
        try:
            return ProductItem.model_validate(raw)
        except ValidationError as error:
            found = problems(error)
        self.stats.inc_value(ITEMS_INVALID)
        for problem in {(p.field, p.kind) for p in found}:
            self.stats.inc_value(invalid_field(*problem))
        reason = "; ".join(f"{p.field}: {p.message}" for p in found)
        logger.warning("Invalid %s: %s", _where(raw), reason)
        if not self.quarantine:
            raise InvalidItemDropped(f"invalid {_where(raw)}: {reason}")
        self.stats.inc_value(ITEMS_QUARANTINED)
        return InvalidItem(
            item_id=raw.get("item_id"),
            cat_id=raw.get("cat_id"),
            language=raw.get("language"),
            page=raw.get("page"),
            position=raw.get("position"),
            errors=[p.as_dict() for p in found],
            item=raw,
        )
