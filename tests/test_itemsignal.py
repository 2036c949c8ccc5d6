"""One item_scraped receiver for Scrapy's core stats, its feed exporter, the
ledger and the feed alert; every other receiver as it was, after them."""

from __future__ import annotations

import logging

from pydispatch.dispatcher import getAllReceivers, liveReceivers
from scrapy import signals
from scrapy.http import TextResponse

from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.feeds.feedfile import read_items
from tmapi_crawler.itemsignal import ItemScrapedFanout


def receivers(crawler):
    manager = crawler.signals
    return list(liveReceivers(getAllReceivers(manager.sender, signals.item_scraped)))


def scrape(opened, item, response):
    opened.scraped(item, response)


def test_one_receiver_counts_exports_and_keeps_the_ledger(open_crawler, tmp_path):
    opened = open_crawler()
    seen = []

    def yours(item, response):
        seen.append((item, len(list(read_items(tmp_path / "items.jsonl")))))

    opened.crawler.signals.connect(yours, signal=signals.item_scraped)
    connected = receivers(opened.crawler)
    assert isinstance(connected[0].__self__, ItemScrapedFanout)
    assert connected[1:] == [yours]
    request = opened.spider.page_request(CategoryQuery(cat_id=5), 1, planned_last=1)
    response = TextResponse(request.url, request=request, body=b"{}")
    for n in (1, 2):
        scrape(opened, {"item_id": n}, response)
    assert opened.stats["item_scraped_count"] == 2
    category = CrawlLedger.of(opened.crawler).category_of(request)
    assert category is not None and category.delivered == 2
    # your receiver runs after the feed has written the item
    assert seen == [({"item_id": 1}, 1), ({"item_id": 2}, 2)]


def test_a_receiver_that_raises_is_logged_and_the_others_still_run(
    open_crawler, caplog
):
    opened = open_crawler()
    fanout = receivers(opened.crawler)[0].__self__

    def broken(item, response):
        raise ValueError("broken receiver")

    fanout.receivers.insert(0, broken)
    with caplog.at_level(logging.ERROR):
        scrape(opened, {"item_id": 1}, None)
    assert "Error caught on signal handler" in caplog.text
    assert "broken receiver" in caplog.text
    assert opened.stats["item_scraped_count"] == 1
