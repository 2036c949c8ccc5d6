"""The job journal's extension in-process (:class:`ResumeJournal`, wired by the
add-on with ``JOBDIR``): a page is settled once every item it gave is
handled, with its items in the feed by then; a new run over the job
directory repairs a feed line a kill cut, and tells the dedupe every item
the job delivered, those of a page in flight found in the feed included.
Its scheduler: tests/resume/test_scheduler.py; real crawls killed and
resumed: tests/crawls/test_resume.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scrapy import signals
from scrapy.http import TextResponse

from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.exceptions import AlreadyDelivered, DuplicateItem
from tmapi_crawler.feeds.feedfile import read_items
from tmapi_crawler.pipelines.dedupe import DedupePipeline
from tmapi_crawler.resume import journal
from tmapi_crawler.resume.extension import ResumeJournal
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE

pytestmark = pytest.mark.timeout(60)

SAMPLE = json.loads(SAMPLE_RESPONSE.read_text("utf-8"))["data"]["items"][0]


def item(item_id: int, page: int) -> ProductItem:
    """A product of category 5's page *page*, with the context the spider adds."""
    context = {"cat_id": 5, "language": "en", "sort": "default", "filters": {}}
    return ProductItem.model_validate(
        {**SAMPLE, **context, "item_id": item_id, "page": page}
    )


def entries(jobdir: Path, event: str) -> list[dict[str, Any]]:
    lines = (jobdir / journal.JOURNAL_NAME).read_text("utf-8").splitlines()
    return [entry for line in lines if (entry := json.loads(line))["e"] == event]


def fetched(opened: Any, page: int) -> TextResponse:
    """Page *page* of category 5, queued, handed to the downloader, answered."""
    request = opened.spider.page_request(CategoryQuery(cat_id=5), page, planned_last=2)
    assert opened.scheduler.enqueue_request(request)
    taken = opened.scheduler.next_request()
    return TextResponse(taken.url, request=taken, body=b"{}")


def dropped(opened: Any, product: ProductItem, response: Any, error: Any) -> None:
    opened.crawler.signals.send_catch_log(
        signals.item_dropped,
        item=product,
        response=response,
        exception=error,
        spider=opened.spider,
    )


def test_a_page_is_settled_once_its_items_are_in_the_feed(open_crawler, tmp_path):
    jobdir = tmp_path / "job"
    opened = open_crawler({"JOBDIR": str(jobdir)})
    journal_ = ResumeJournal.of(opened.crawler)
    response = fetched(opened, 1)
    fp = journal_.fingerprint(response.request)
    # the callback gave four items; the pipelines are still at them
    journal_.output_complete(response, 4)
    opened.scraped(item(1, 1), response)
    dropped(opened, item(1, 1), response, DuplicateItem("repeated in the page"))
    opened.scraped(item(2, 1), response)
    assert entries(jobdir, "settled") == []  # one item still in the pipelines
    # in the feed from an earlier run: delivered all the same
    dropped(opened, item(3, 1), response, AlreadyDelivered("in the feed"))
    [settled] = entries(jobdir, "settled")
    assert settled["fp"] == fp and settled["outcome"] == "done"
    assert settled["items"] == 3 and settled["ids"] == [1, 2, 3]
    # the feed holds them before the journal says so
    feed = [i["item_id"] for i in read_items(tmp_path / "items.jsonl")]
    assert feed == [1, 2]
    state = journal.load(jobdir / journal.JOURNAL_NAME)
    assert state.items_delivered == 3 and fp not in state.pending


def test_a_page_is_settled_once_the_scheduler_has_the_requests_it_gave(
    open_crawler, tmp_path
):
    jobdir = tmp_path / "job"
    opened = open_crawler({"JOBDIR": str(jobdir)})
    journal_ = ResumeJournal.of(opened.crawler)
    response = fetched(opened, 1)
    spider, query = opened.spider, CategoryQuery(cat_id=5)
    # the callback gave page 2 (new) and page 1 (already seen), after one item
    given = [spider.page_request(query, page, planned_last=2) for page in (2, 1)]
    for request in given:
        journal_.follow_up(response, request)
    journal_.output_complete(response, 1)
    opened.scraped(item(1, 1), response)
    # the item is in the feed, but a kill now would lose page 2: not settled
    assert entries(jobdir, "settled") == []
    assert opened.scheduler.enqueue_request(given[0])
    assert entries(jobdir, "settled") == []
    assert not opened.scheduler.enqueue_request(given[1])  # turned away
    [settled] = entries(jobdir, "settled")
    assert settled["fp"] == journal_.fingerprint(response.request)
    # page 2 is in the journal before its parent is settled
    events = [json.loads(line)["e"] for line in (jobdir / journal.JOURNAL_NAME).open()]
    assert events[-2:] == ["queued", "settled"]


def test_a_new_run_repairs_the_feed_and_tells_the_dedupe_what_the_job_delivered(
    open_crawler, tmp_path
):
    jobdir, feed = tmp_path / "job", tmp_path / "items.jsonl"
    first = open_crawler({"JOBDIR": str(jobdir)})
    page_1, page_2 = fetched(first, 1), fetched(first, 2)
    first_journal = ResumeJournal.of(first.crawler)
    first_journal.output_complete(page_1, 2)
    first.scraped(item(1, 1), page_1)
    first.scraped(item(2, 1), page_1)
    first.scraped(item(3, 2), page_2)  # page 2 in flight: its item in the feed
    first.close()
    assert [e["n"] for e in entries(jobdir, "run")] == [1]
    with feed.open("ab") as file:  # a kill in the middle of a line
        file.write(b'{"item_id": 4, "tit')

    second = open_crawler({"JOBDIR": str(jobdir)})
    assert [i["item_id"] for i in read_items(feed)] == [1, 2, 3]
    assert feed.read_bytes().endswith(b"}\n")  # the cut line removed
    stats = second.stats
    assert stats["tmapi/resume/pages_done_before"] == 1
    assert stats["tmapi/resume/pages_left_before"] == 1
    assert stats["tmapi/resume/pages_in_flight_before"] == 1
    assert stats["tmapi/resume/items_before"] == 3
    [partial] = entries(jobdir, "partial")  # known to any later run
    assert partial["ids"] == ["3"]
    assert partial["fp"] == first_journal.fingerprint(page_2.request)
    # the dedupe heard of every item the job delivered, item 3 included
    engine = second.crawler.engine
    [dedupe] = [
        p for p in engine.scraper.itemproc.middlewares if isinstance(p, DedupePipeline)
    ]
    for delivered in (1, 2, 3):
        with pytest.raises(DuplicateItem):
            dedupe.process_item(item(delivered, 1))
    assert dedupe.process_item(item(5, 2)).item_id == 5
