"""In-process crawlers for component tests, built as Scrapy's own tests build
them (``scrapy.utils.test.get_crawler``), but with the project's settings:
every default in ``tmapi_crawler.settings`` and the add-on that wires the
components."""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from tmapi_crawler import settings as project
from tmapi_crawler.spiders.category import CategorySpider


def project_settings(**overrides: Any) -> dict[str, Any]:
    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    return {**values, **overrides}


def project_crawler(
    spidercls: type = CategorySpider, settings: dict[str, Any] | None = None
) -> Crawler:
    """A crawler of *spidercls* with the project's settings and *settings*.
    Scrapy's test crawler chooses its download handlers (aiohttp, without a
    reactor); the project's token handler wraps the one it chose."""
    chosen = {"DOWNLOAD_HANDLERS": {}, **(settings or {})}
    return get_crawler(spidercls, project_settings(**chosen))
