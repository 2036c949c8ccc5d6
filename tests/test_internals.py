"""Every Scrapy internal the crawler relies on (:mod:`tmapi_crawler.internals`),
one test each, against the Scrapy installed: a Scrapy upgrade that changes
one fails here, by name, before any crawl misbehaves."""

from __future__ import annotations

import inspect

import pytest
import scrapy
from scrapy import Request, signals
from scrapy.dupefilters import RFPDupeFilter
from scrapy.extensions.feedexport import S3FeedStorage

from tests.conftest import python_output
from tmapi_crawler import internals
from tmapi_crawler.feeds.storages import RescuingS3FeedStorage

pytestmark = pytest.mark.timeout(60)


def test_the_scrapy_installed_is_the_one_checked():
    assert scrapy.__version__.startswith(internals.CHECKED_AGAINST + "."), (
        f"tmapi_crawler.internals was checked against Scrapy "
        f"{internals.CHECKED_AGAINST}; check each use against {scrapy.__version__}"
    )


def test_the_engine_keeps_its_requests_in_progress(open_crawler):
    crawler = open_crawler()
    assert internals.requests_in_progress(crawler.crawler) == set()
    (page_1,) = crawler.start_requests()
    slot = crawler.crawler.engine._slot
    slot.add_request(page_1)  # as the engine does with what it downloads
    assert internals.requests_in_progress(crawler.crawler) == {page_1}
    slot.remove_request(page_1)  # done: items exported
    assert internals.requests_in_progress(crawler.crawler) == set()


def test_a_download_slot_takes_its_concurrency_from_the_slot_settings(open_crawler):
    crawler = open_crawler()
    internals.open_download_slot(crawler.crawler, "tmapi", 7, 14)
    downloader = crawler.crawler.engine.downloader
    assert downloader.total_concurrency >= 14
    request = Request("http://127.0.0.1:9/x", meta={"download_slot": "tmapi"})
    _, slot = downloader._get_slot(request)  # how Scrapy builds the slot
    assert slot.concurrency == 7


def test_the_feed_exporter_slots_and_filters(open_crawler, tmp_path):
    crawler = open_crawler()
    [slot] = internals.feed_slots(crawler.crawler)
    for name in ("uri", "uri_template", "file", "itemcount", "exporter", "filter"):
        assert hasattr(slot, name), name
    assert callable(slot.start_exporting)
    [template] = internals.feed_filters(crawler.crawler)
    assert template == str(tmp_path / "items.jsonl")
    assert internals.feed_format(crawler.crawler, template) == "jsonlines"
    # a filter wrapped through the door is the one the slot asks
    internals.filter_feed(crawler.crawler, template, lambda accepts: lambda i: False)
    assert slot.filter.accepts({"item_id": 1}) is False
    internals.flush_feed_files([slot], fsync=True)  # an open file: no error


def test_the_receivers_of_a_signal_are_found(open_crawler):
    crawler = open_crawler()
    got: list[object] = []

    def receiver(item: object, response: object) -> None:
        got.append(item)

    crawler.crawler.signals.connect(receiver, signal=signals.item_scraped)
    assert receiver in internals.signal_receivers(crawler.crawler, signals.item_scraped)


def test_a_request_turned_back_leaves_the_downloader(open_crawler):
    crawler = open_crawler()
    left: list[Request] = []
    crawler.crawler.signals.connect(
        lambda request, spider: left.append(request),
        signal=signals.request_left_downloader,
        weak=False,
    )
    (page_1,) = crawler.start_requests()
    internals.left_downloader_unsent(crawler.crawler, page_1)
    assert left == [page_1]


def test_the_job_state_is_rewritten_in_scrapys_own_format(tmp_path):
    (tmp_path / "requests.queue").mkdir()
    (tmp_path / "requests.queue" / "p0").write_bytes(b"stale")
    seen = Request("http://127.0.0.1:9/seen")
    other = Request("http://127.0.0.1:9/other")
    dupefilter = RFPDupeFilter()
    fingerprint = dupefilter._fingerprint(seen)  # Scrapy's bytes
    internals.reset_job_state(tmp_path, [fingerprint.hex()])
    assert not (tmp_path / "requests.queue").exists()
    reread = RFPDupeFilter(path=str(tmp_path))
    assert reread.request_seen(seen) and not reread.request_seen(other)
    reread.close("finished")


def test_the_s3_storage_still_uploads_in_the_method_it_overrides():
    name = internals.S3_STORE_IN_THREAD
    scrapy_method = getattr(S3FeedStorage, name)
    assert list(inspect.signature(scrapy_method).parameters) == ["self", "file"]
    assert name in vars(RescuingS3FeedStorage)  # overridden there
    assert name in inspect.getsource(S3FeedStorage.store)  # store() calls it


@pytest.mark.parametrize(
    ("setting", "kind", "module"),
    [
        ("REMOTE_CONTROL_ENABLED", "EXTENSIONS", "scrapy.extensions.remote_control"),
        (
            "COOKIES_ENABLED",
            "DOWNLOADER_MIDDLEWARES",
            "scrapy.downloadermiddlewares.cookies",
        ),
    ],
)
def test_a_switched_off_component_is_never_imported(setting, kind, module):
    """Given ``None``, Scrapy imports a component all the same; taken out of
    ``<kind>_BASE`` it is not (a fresh interpreter: this one may have imported
    it already). Switched on by the user, it is kept."""
    script = (
        "import sys\n"
        "from scrapy.utils.misc import load_object\n"
        "from tests.crawlers import project_crawler\n"
        "for enabled in (False, True):\n"
        f"    crawler = project_crawler(settings={{{setting!r}: enabled}})\n"
        f"    names = dict(crawler.settings.getwithbase({kind!r}))\n"
        "    for path, order in names.items():\n"
        "        if order is not None:\n"
        "            load_object(path)  # as Scrapy builds them\n"
        f"    print(enabled, any({module!r} in path for path in names),\n"
        f"          {module!r} in sys.modules)\n"
    )
    found = python_output(script).split("\n")
    assert found[:2] == ["False False False", "True True True"]
