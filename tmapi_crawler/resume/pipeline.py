"""The items of a page fetched again after a kill that the feed already holds,
dropped (see :mod:`tmapi_crawler.resume`)."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tmapi_crawler.contract.stats import RESUME_ITEMS_ALREADY_DELIVERED
from tmapi_crawler.exceptions import AlreadyDelivered
from tmapi_crawler.resume.extension import ResumeJournal

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)


class ReplayedItemFilter:
    """Drops items of a page fetched again after a kill that the feed already
    holds (the page was in flight, some of its items were written)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReplayedItemFilter:
        return cls(crawler)

    @cached_property
    def journal(self) -> ResumeJournal | None:
        return ResumeJournal.of(self.crawler)

    def process_item(self, item: Any) -> Any:
        if (
            self.journal is not None
            and self.journal.replayed
            and isinstance(item, dict)
            and self.journal.already_delivered(item)
        ):
            self.crawler.stats.inc_value(RESUME_ITEMS_ALREADY_DELIVERED)
            raise AlreadyDelivered("duplicate: in the feed before the last run ended")
        return item
