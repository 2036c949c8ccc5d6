"""Feeds: the default and quarantine feeds, exporters and storages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.exporters import BaseItemExporter


def parquet_exporter(file: Any, **kwargs: Any) -> BaseItemExporter:
    """``FEED_EXPORTERS``' ``parquet`` entry. Scrapy loads every entry when a
    crawl starts; pyarrow is imported only when a Parquet feed opens."""
    from tmapi_crawler.feeds.parquet import ParquetItemExporter

    return ParquetItemExporter(file, **kwargs)


def _parquet_from_crawler(
    crawler: Crawler, file: Any, **kwargs: Any
) -> BaseItemExporter:
    """What Scrapy's feeds call: the exporter knows the crawler (its stats,
    the quarantine feed) for the items it cannot hold."""
    from tmapi_crawler.feeds.parquet import ParquetItemExporter

    return ParquetItemExporter.from_crawler(crawler, file, **kwargs)


parquet_exporter.from_crawler = _parquet_from_crawler  # type: ignore[attr-defined]
