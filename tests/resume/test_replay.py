"""What the job's files hold of the pages in flight at a kill (:class:`Replay`),
read from a real journal and real feed files: by kind of file, since a kill
can leave an item in one feed and not yet in another. The same in crawls
killed and resumed: tests/crawls/test_resume_feeds.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tests.crawlers import project_crawler
from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.meta import stored_request
from tmapi_crawler.resume import journal
from tmapi_crawler.resume.replay import Replay, kind_of

QUERY = CategoryQuery(cat_id=5, price_start=1, price_end=10)


@pytest.fixture
def spider() -> Any:
    crawler = project_crawler(settings={"TMAPI_TOKEN": "a-token-of-length"})
    return crawler._create_spider(cat_id="5")


def job_state(
    tmp_path: Path, spider: Any, pages: dict[int, str], query: Any = QUERY
) -> tuple[Any, dict]:
    """A journal whose pages of *query* (number: ``in flight``, ``settled``,
    ``queued``) a run left so; its state, and each page's fingerprint."""
    log = journal.Journal(tmp_path / journal.JOURNAL_NAME)
    log.start_run(1)
    fps = {}
    for number, fate in pages.items():
        request = spider.page_request(query, number, planned_last=len(pages))
        fps[number] = fp = f"fp{number}"
        log.write("queued", fp=fp, request=stored_request(request, spider))
        if fate in ("in flight", "settled"):
            log.write("leased", fp=fp)
        if fate == "settled":
            log.write("settled", fp=fp, items=1, ids=[f"{number}00"])
    log.write("partial", fp=fps[1], ids=["101"])  # found by an earlier resume
    log.close()
    return journal.load(tmp_path / journal.JOURNAL_NAME), fps


def feed_item(item_id: int, page: int, **changes: Any) -> dict[str, Any]:
    return {"item_id": item_id, "cat_id": 5, "language": "en", "sort": "default",
            "filters": QUERY.filters(), "page": page, **changes}  # fmt: skip


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), "utf-8")
    return path


def write_csv(
    path: Path,
    items: list[dict[str, Any]],
    names: tuple[str, ...] = ("item_id", "cat_id", "language", "page", "title"),
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, names, extrasaction="ignore")
        writer.writeheader()
        for one in items:
            writer.writerow({**one, "title": "t"})
    return path


def test_the_items_of_pages_in_flight_are_found_in_the_job_files(tmp_path, spider):
    before, fps = job_state(
        tmp_path, spider, {1: "in flight", 2: "in flight", 3: "settled", 4: "queued"}
    )
    jsonl = write_jsonl(
        tmp_path / "items.jsonl",
        [
            feed_item(101, 1),  # the journal's partial line knew it
            feed_item(102, 1),
            feed_item(103, 1),
            feed_item(201, 2),
            feed_item(300, 3),  # a settled page: not replayed
            feed_item(104, 1, filters={}),  # another query's page 1
        ],
    )
    csv_file = write_csv(tmp_path / "items.csv", [feed_item(102, 1)])
    replay = Replay()
    found = replay.find(before, [jsonl, csv_file])
    # what the journal did not know yet, by fingerprint (for its partial lines)
    assert found == {fps[1]: {"102", "103"}, fps[2]: {"201"}}
    assert sorted(map(sorted, replay.replayed.values())) == [
        ["101", "102", "103"], ["201"],
    ]  # fmt: skip

    kinds = {kind_of("jsonlines"), kind_of("csv")}
    assert kinds == {"jsonl", "csv"}
    # an item every feed holds is dropped; one the CSV lacks is written again
    assert replay.in_every_feed(feed_item(102, 1), kinds)
    assert not replay.in_every_feed(feed_item(103, 1), kinds)
    assert replay.in_every_feed(feed_item(103, 1), {"jsonl"})
    assert not replay.in_every_feed(feed_item(300, 3), {"jsonl"})  # settled
    assert not replay.in_every_feed(feed_item(999, 1), {"jsonl"})
    [key_1] = [k for k, ids in replay.replayed.items() if "101" in ids]
    assert replay.held_everywhere(key_1, kinds) == ["102"]
    assert sorted(replay.held_everywhere(key_1, {"jsonl"})) == ["101", "102", "103"]


def test_each_feed_turns_away_what_its_own_kind_of_file_holds(tmp_path, spider):
    before, _ = job_state(tmp_path, spider, {1: "in flight", 2: "queued"})
    jsonl = write_jsonl(tmp_path / "items.jsonl", [feed_item(102, 1)])
    replay = Replay()
    replay.find(before, [jsonl])
    assert replay.any_held()
    for_jsonl = replay.turning_away(lambda item: True, "jsonl")
    for_csv = replay.turning_away(lambda item: True, "csv")
    assert not for_jsonl(feed_item(102, 1)) and for_jsonl(feed_item(103, 1))
    assert for_csv(feed_item(102, 1))  # the CSV feed never got it
    assert for_jsonl(object())  # not a product (an invalid item): as before
    refusing = replay.turning_away(lambda item: False, "jsonl")
    assert not refusing(feed_item(103, 1))  # the feed's own filter still rules


def test_nothing_in_flight_means_nothing_to_read(tmp_path, spider):
    before, _ = job_state(tmp_path, spider, {1: "settled", 2: "queued"})
    missing = tmp_path / "never-read.jsonl"  # not even opened
    replay = Replay()
    assert replay.find(before, [missing]) == {}
    assert not replay.any_held() and replay.replayed == {}


def test_an_item_held_in_another_language_is_written_again(tmp_path, spider):
    # the same listing in English (its page done) and Chinese (in flight at
    # the kill): the files hold the English row, never the Chinese one
    zh = CategoryQuery(cat_id=5, price_start=1, price_end=10, language="zh")
    before, _ = job_state(tmp_path, spider, {1: "in flight"}, query=zh)
    english = feed_item(102, 1)
    replay = Replay()
    replay.find(
        before,
        [
            write_jsonl(tmp_path / "items.jsonl", [english]),
            write_csv(tmp_path / "items.csv", [english]),
        ],
    )
    chinese = feed_item(102, 1, language="zh")
    assert not replay.in_every_feed(chinese, {"jsonl", "csv"})
    for kind in ("jsonl", "csv"):
        assert replay.turning_away(lambda item: True, kind)(chinese)


def test_a_csv_without_the_language_column_holds_the_one_language_in_flight(
    tmp_path, spider
):
    """FEED_EXPORT_FIELDS without ``language``: a row is the page's if one
    language alone had that page in flight; with two it could be either, so
    both are written again (a row twice rather than one lost)."""
    names = ("item_id", "cat_id", "page", "title")
    before, _ = job_state(tmp_path, spider, {1: "in flight"})
    replay = Replay()
    replay.find(before, [write_csv(tmp_path / "a.csv", [feed_item(102, 1)], names)])
    assert not replay.turning_away(lambda item: True, "csv")(feed_item(102, 1))
    assert replay.turning_away(lambda item: True, "csv")(feed_item(103, 1))

    zh = CategoryQuery(cat_id=5, price_start=1, price_end=10, language="zh")
    log = journal.Journal(tmp_path / journal.JOURNAL_NAME)
    request = spider.page_request(zh, 1, planned_last=1)
    log.write("queued", fp="fp-zh", request=stored_request(request, spider))
    log.write("leased", fp="fp-zh")
    log.close()
    both = journal.load(tmp_path / journal.JOURNAL_NAME)
    replay = Replay()
    replay.find(both, [write_csv(tmp_path / "b.csv", [feed_item(102, 1)], names)])
    for language in ("en", "zh"):
        item = feed_item(102, 1, language=language)
        assert replay.turning_away(lambda item: True, "csv")(item)
