"""Push N synthetic items through the project's item pipelines and JSON Lines
exporter, in a process of its own, so its peak RSS is theirs.

``python -m bench.pipeline_path N OUTPUT``: items are the documentation's
three sample items with the crawl context and a distinct 12-digit item_id
each (made on the fly: the generator holds nothing); the pipelines are built
from the project's ``ITEM_PIPELINES`` by Scrapy's ItemPipelineManager (as a
crawl builds them), every item that
comes out is written by the ``jsonlines`` feed exporter. No HTTP and no
engine: what grows here with N is what the item path keeps.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from scrapy.exceptions import DropItem
from scrapy.pipelines import ItemPipelineManager
from scrapy.utils.misc import load_object
from scrapy.utils.project import get_project_settings
from scrapy.utils.reactor import install_reactor
from scrapy.utils.test import get_crawler

from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE
from tmapi_crawler.spiders.category import CategorySpider


def synthetic_items(count: int) -> Any:
    samples = json.loads(SAMPLE_RESPONSE.read_text("utf-8"))["data"]["items"]
    for number in range(count):
        # distinct ids without holding them: n -> a*n mod m permutes 0..m-1
        item_id = 500_000_000_000 + (number * 2_654_435_761) % 500_000_000_000
        item = dict(samples[number % len(samples)])
        item["item_id"] = item_id
        item["product_url"] = f"https://detail.1688.com/offer/{item_id}.html"
        page, position = divmod(number, 20)
        yield {
            **item,
            "cat_id": 1031922 + number // 2000,
            "language": "en",
            "sort": "default",
            "filters": {},
            "page": page % 100 + 1,
            "crawled_at": "2026-11-27T03:00:00+00:00",
            "position": position + 1,
        }


async def push(count: int, output: str) -> int:
    settings = dict(get_project_settings())
    crawler = get_crawler(CategorySpider, settings)
    pipelines = ItemPipelineManager.from_crawler(crawler)
    exporter_cls = load_object(
        crawler.settings.getwithbase("FEED_EXPORTERS")["jsonlines"]
    )
    written = 0
    await pipelines.open_spider_async()
    with open(output, "wb") as out:
        exporter = exporter_cls(out, encoding="utf-8")
        exporter.start_exporting()
        for item in synthetic_items(count):
            try:
                kept = await pipelines.process_item_async(item)
            except DropItem:
                continue
            exporter.export_item(kept)
            written += 1
        exporter.finish_exporting()
    await pipelines.close_spider_async()
    return written


def main() -> None:
    count, output = int(sys.argv[1]), sys.argv[2]
    # Scrapy components expect the asyncio reactor it crawls with; it need not run.
    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    loop = asyncio.get_event_loop()
    written = loop.run_until_complete(push(count, output))
    print(json.dumps({"items": count, "written": written}))


if __name__ == "__main__":
    main()
