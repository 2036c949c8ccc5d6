"""The catalog store's extension in-process (:class:`CatalogStore`, wired by
the add-on with ``TMAPI_STORE``): items handed in batches become observations
in a real SQLite file; with a job directory its log holds them before the
store commits them, and a new run replays what lies past the journal's
``stored`` offset; a store away at the close leaves a file that ``tmapi-store
load`` writes, once. The same in real crawls: tests/crawls/test_store.py and
tests/crawls/test_store_safety.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.resume import journal
from tmapi_crawler.store import __main__ as tmapi_store
from tmapi_crawler.store import closing as store_close
from tmapi_crawler.store import extension
from tmapi_crawler.store.db import open_store
from tmapi_crawler.store.extension import CatalogStore
from tmapi_crawler.store.wal import LOG_NAME

pytestmark = pytest.mark.timeout(60)


def product(item_id: int, price: str = "1.50") -> ProductItem:
    return ProductItem.model_validate(
        {
            "item_id": item_id,
            "product_url": f"https://detail.1688.com/offer/{item_id}.html",
            "title": f"item {item_id}",
            "price": price,
            "cat_id": 5,
            "language": "en",
            "crawled_at": "2026-01-01T00:00:00+00:00",
        }
    )


def scrape(opened: Any, *ids: int) -> None:
    """Each item as Scrapy delivers it, past every item pipeline."""
    for item_id in ids:
        opened.scraped(product(item_id))


def wait_for(opened: Any, condition: Callable[[], bool]) -> None:
    """The loop run (the store's thread reports through it) until *condition*."""

    async def until() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    opened.run(until)


def committed(store: CatalogStore) -> Callable[[], bool]:
    return lambda: store.writing is None


def read(path: Path, statement: str) -> list[tuple[Any, ...]]:
    """Rows of the SQLite file, as a user reads it (the connection closed)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return list(db.execute(statement))


def observed(path: Path) -> list[tuple[Any, ...]]:
    return read(path, "SELECT run_id, item_id FROM observations ORDER BY 2")


def runs(path: Path) -> list[tuple[Any, ...]]:
    return read(path, "SELECT run_id, finish_reason, finished_at FROM runs")


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite"


@pytest.fixture
def store_crawler(open_crawler, tmp_path) -> Callable[..., Any]:
    """``store_crawler(uri, **settings)``: a crawler opened with the store at
    *uri*; what it cannot store goes under ``tmp_path/rescue``; no run report
    (its own tests: tests/crawls/test_report.py)."""

    def start(uri: str, **settings: Any) -> Any:
        chosen = {
            "TMAPI_STORE": uri,
            "TMAPI_FEED_RESCUE_DIR": str(tmp_path / "rescue"),
            "TMAPI_REPORT": False,
            **settings,
        }
        return open_crawler(chosen)

    return start


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request, catalog) -> str:
    """A store of each database, empty (PostgreSQL: skipped without it)."""
    if request.param == "sqlite":
        return f"sqlite:///{catalog}"
    return request.getfixturevalue("postgres")


def test_items_go_in_batches_and_the_close_writes_the_rest(store_crawler, store_uri):
    opened = store_crawler(store_uri, TMAPI_STORE_BATCH=3)
    store = CatalogStore.of(opened.crawler)
    assert store is not None and store.run_id is not None
    reader = open_store(store_uri)  # as a user reads it, while the crawl runs

    def observed() -> list[tuple[str, int]]:
        rows = reader.query("SELECT run_id, item_id FROM observations ORDER BY 2")
        return [(row["run_id"], row["item_id"]) for row in rows]

    scrape(opened, 1, 2)
    assert observed() == []  # a batch is 3
    scrape(opened, 3, 4)
    wait_for(opened, committed(store))
    assert observed() == [(store.run_id, i) for i in (1, 2, 3)]
    scrape(opened, 2)  # delivered twice in the run (a redelivered page): once
    opened.close()
    assert observed() == [(store.run_id, i) for i in (1, 2, 3, 4)]
    [run] = reader.runs()
    reader.close()
    assert run["run_id"] == store.run_id and run["observations"] == 4
    assert run["finish_reason"] == "finished" and run["finished_at"]
    assert opened.stats["tmapi/store/observations"] == 5
    assert opened.stats["tmapi/store/changes/new"] == 4
    assert "tmapi/store/unstored" not in opened.stats


def stored_offsets(jobdir: Path) -> list[dict[str, Any]]:
    lines = (jobdir / journal.JOURNAL_NAME).read_text("utf-8").splitlines()
    return [entry for line in lines if (entry := json.loads(line))["e"] == "stored"]


def test_a_job_logs_each_observation_first_and_a_new_run_replays_the_rest(
    store_crawler, catalog, tmp_path
):
    jobdir, uri = tmp_path / "job", f"sqlite:///{catalog}"
    first = store_crawler(uri, TMAPI_STORE_BATCH=2, JOBDIR=str(jobdir))
    store = CatalogStore.of(first.crawler)
    scrape(first, 1)
    log = [json.loads(line) for line in (jobdir / LOG_NAME).read_text().splitlines()]
    assert [row[0] for row in log] == [1] and observed(catalog) == []
    scrape(first, 2, 3)
    wait_for(first, committed(store))
    assert [item_id for _, item_id in observed(catalog)] == [1, 2]
    lines = (jobdir / LOG_NAME).read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    assert stored_offsets(jobdir)[-1] == {
        "e": "stored", "sink": "store", "upto": len(lines[0] + lines[1]),
        "run": store.run_id,
    }  # fmt: skip

    # what a kill now leaves on disk: the job directory, copied; the first
    # run stays open (never closed before the end of the test: a killed run
    # writes nothing more)
    killed = tmp_path / "killed-job"
    shutil.copytree(jobdir, killed)
    second = store_crawler(uri, TMAPI_STORE_BATCH=2, JOBDIR=str(killed))
    assert CatalogStore.of(second.crawler).run_id == store.run_id  # the job's run
    assert second.stats["tmapi/store/replayed"] == 1  # item 3 only
    scrape(second, 3, 4)  # item 3 again: the page in flight, fetched again
    second.close()
    assert observed(catalog) == [(store.run_id, i) for i in (1, 2, 3, 4)]
    assert stored_offsets(killed)[-1]["upto"] == (killed / LOG_NAME).stat().st_size


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(extension, "RETRY_SECONDS", 0.01)


def away(store_crawler: Any, tmp_path: Path, **settings: Any) -> tuple[Path, Any]:
    """A crawler of a SQLite store that cannot be opened (its directory is a
    file) until the file is removed, handed items 1, 2 and 3 in batches of 2."""
    blocker = tmp_path / "store"
    blocker.write_text("not a directory")
    uri = f"sqlite:///{blocker}/catalog.sqlite"
    opened = store_crawler(uri, TMAPI_STORE_BATCH=2, **settings)
    scrape(opened, 1, 2, 3)
    return blocker, opened


def test_a_store_back_during_the_close_takes_everything(
    store_crawler, tmp_path, fast_retries, caplog
):
    blocker, opened = away(store_crawler, tmp_path, TMAPI_STORE_CLOSE_TIMEOUT=30)
    store = CatalogStore.of(opened.crawler)
    wait_for(opened, committed(store))
    # the crawl went on; the observations wait in memory
    assert opened.stats["tmapi/store/errors"] >= 1
    assert store.run_id is None and len(store.rows) == 3

    async def close_while_the_store_comes_back() -> None:
        engine = opened.crawler.engine
        closing = asyncio.ensure_future(engine.close_spider_async(reason="finished"))
        while "unreachable at the close" not in caplog.text:
            await asyncio.sleep(0.005)
        blocker.unlink()  # the store answers again: the close tries once more
        await closing

    with caplog.at_level(logging.ERROR, logger=store_close.__name__):
        opened.run(close_while_the_store_comes_back)
    catalog = blocker / "catalog.sqlite"
    assert [item_id for _, item_id in observed(catalog)] == [1, 2, 3]
    [(_, reason, finished_at)] = runs(catalog)
    assert reason == "finished" and finished_at
    assert "tmapi/store/unstored_file" not in opened.stats
    assert not (tmp_path / "rescue").exists()


def test_a_store_away_at_the_close_leaves_a_file_that_loads_once(
    store_crawler, tmp_path, fast_retries, capsys
):
    # tried again every 0.01 s for 0.1 s
    blocker, opened = away(store_crawler, tmp_path, TMAPI_STORE_CLOSE_TIMEOUT=0.1)
    store = CatalogStore.of(opened.crawler)
    opened.close()
    [kept] = (tmp_path / "rescue").glob("store-*.jsonl")
    assert opened.stats["tmapi/store/unstored_file"] == str(kept)
    assert opened.stats["tmapi/store/unstored"] == 3
    assert opened.stats["tmapi/store/not_closed"] == 1
    records = [json.loads(line) for line in kept.read_text().splitlines()]
    assert [r["item_id"] for r in records[:3]] == [1, 2, 3]
    assert {r["run_id"] for r in records[:3]} == {records[3]["close"]["run_id"]}
    close = records[3]["close"]
    assert close["reason"] == "finished" and close["final"] is True
    assert close["worker"] == store.worker

    blocker.unlink()  # the store answers again
    blocker.mkdir()
    store_uri = f"sqlite:///{blocker}/catalog.sqlite"
    assert tmapi_store.main(["--store", store_uri, "load", str(kept)]) == 0
    first = capsys.readouterr().out
    catalog = blocker / "catalog.sqlite"
    after_first = (observed(catalog), runs(catalog))
    assert [item_id for _, item_id in after_first[0]] == [1, 2, 3]
    [(run_id, reason, finished_at)] = after_first[1]
    assert run_id == close["run_id"] and reason == "finished" and finished_at
    assert "3 new" in first
    assert tmapi_store.main(["--store", store_uri, "load", str(kept)]) == 0
    assert "0 new, 0 price changes, 0 gone, 0 back made now" in capsys.readouterr().out
    assert (observed(catalog), runs(catalog)) == after_first
