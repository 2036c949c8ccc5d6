"""Pages that failed for good, listed where a rerun can find them.

:class:`FailedPagesFile` writes one JSON line per failed page (its category,
language, page, full query and the reason) to ``TMAPI_FAILED_PAGES_FILE`` when
the crawl closes (from the ledger), and logs where. Nothing is written when
no page failed.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

from tmapi_crawler.extensions.ledger import CrawlLedger

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class FailedPagesFile:
    def __init__(self, crawler: Crawler, template: str) -> None:
        self.crawler = crawler
        self.template = template
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FailedPagesFile:
        template = crawler.settings.get("TMAPI_FAILED_PAGES_FILE")
        if not template:
            raise NotConfigured("TMAPI_FAILED_PAGES_FILE is not set")
        return cls(crawler, template)

    def path(self, spider: Spider) -> Path:
        started = self.crawler.stats.get_value("start_time") or datetime.now(UTC)
        stamp = started.replace(microsecond=0).isoformat().replace(":", "-")
        return Path(self.template % {"name": spider.name, "time": stamp})

    def spider_closed(self, spider: Spider) -> None:
        lines: list[dict[str, Any]] = []
        for category in CrawlLedger.of(self.crawler).progress.categories.values():
            query = category.query
            for page, reason in sorted(category.failed.items()):
                lines.append(
                    {
                        "cat_id": query.cat_id,
                        "language": query.language,
                        "page": page,
                        "query": query.model_dump(mode="json", exclude_defaults=True),
                        "reason": reason,
                    }
                )
        if not lines:
            return
        path = self.path(spider)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        logger.error(
            "%d pages failed for good; they are listed in %s", len(lines), path
        )
