"""The store itself on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from tmapi_crawler.store.changes import QueryCrawl, count, summary_line
from tmapi_crawler.store.db import open_store, store_problems
from tmapi_crawler.store.schema import LATEST

DAY0 = "2026-12-01T10:00:00+00:00"
DAY1 = "2026-12-02T10:00:00+00:00"


def row(item_id: int, price: str, at: str, cat_id: int = 5) -> tuple:
    return (item_id, "en", cat_id, f"t{item_id}", Decimal(price), "CNY", "co",
            True, 3, 100, "https://x", at)  # fmt: skip


def test_two_runs_give_new_price_gone_and_back(store_uri):
    store = open_store(store_uri)
    first = store.open_run(None)
    assert [c.change for c in store.write(first, [row(1, "1.50", DAY0)])] == ["new"]
    store.write(first, [row(2, "2.00", DAY0), row(3, "3.00", DAY0)])
    assert store.write(first, [row(1, "9.99", DAY0)]) == []  # once a run
    second = store.open_run(None)
    changes = store.write(second, [row(1, "1.60", DAY1), row(3, "3.00", DAY1)])
    assert [(c.change, c.old_price, c.new_price) for c in changes] == [
        ("price", Decimal("1.50"), Decimal("1.60"))
    ]
    assert store.mark_gone(second, 7, "en") == []  # another category
    gone = store.mark_gone(second, 5, "en")
    assert [(c.change, c.item_id) for c in gone] == [("gone", 2)]
    third = store.open_run(None)
    assert [c.change for c in store.write(third, [row(2, "2.00", DAY1)])] == ["back"]
    assert [c["change"] for c in store.changes(second)] == ["gone", "price"]
    history = store.history(1)
    assert [(h["price"], h["observed_at"]) for h in history] == [
        ("1.50", DAY0),
        ("1.60", DAY1),
    ]
    store.close()


def test_new_price_back_and_unchanged_items(store_uri):
    store = open_store(store_uri)
    first = store.open_run(None)
    store.write(first, [row(n, price, DAY0) for n, price in
                        ((2, "1.50"), (3, "2.00"), (4, "9.90"))])  # fmt: skip
    store.mark_gone(store.open_run(None), 5, "en")  # a run that saw none: gone
    store.write(store.open_run(None), [row(2, "1.50", DAY0), row(3, "2.00", DAY0)])
    run = store.open_run(None)
    changes = store.write(
        run,
        [row(1, "5.00", DAY1), row(2, "1.5", DAY1), row(3, "2.10", DAY1),
         row(4, "9.90", DAY1), row(1, "6.00", DAY1)],  # 1 twice: the first
    )  # fmt: skip
    found = sorted((c.change, c.item_id, c.old_price, c.new_price) for c in changes)
    assert found == [
        ("back", 4, Decimal("9.90"), Decimal("9.90")),
        ("new", 1, None, Decimal("5.00")),  # new only, whatever its price
        ("price", 3, Decimal("2.00"), Decimal("2.10")),
    ]  # 1.5 is 1.50: no change
    price = next(c for c in changes if c.change == "price").as_dict()
    assert (price["old_price"], price["new_price"]) == ("2.00", "2.10")
    assert price["last_seen"] == DAY1 and price["first_seen"] != DAY1
    stored = store.changes(run)
    assert [(c["change"], c["item_id"]) for c in stored] == [
        ("back", 4), ("new", 1), ("price", 3)
    ]  # fmt: skip
    assert summary_line(count(stored)) == "1 new, 1 price changes, 0 gone, 1 back"
    assert [h["price"] for h in store.history(1)] == ["5.00"]
    store.close()


def test_a_write_without_a_changes_feed_counts_the_same_changes_it_stores(store_uri):
    store = open_store(store_uri)
    store.write(store.open_run(None), [row(n, "2.00", DAY0) for n in (1, 2, 3)])
    store.mark_gone(store.open_run(None), 5, "en")  # 1, 2, 3 gone
    store.write(store.open_run(None), [row(2, "2.00", DAY0)])  # 2 back
    run = store.open_run(None)
    counts = store.write_counted(
        run, [row(1, "2.50", DAY1), row(3, "2.00", DAY1), row(4, "1.00", DAY1),
              row(5, "1.00", DAY1), row(4, "7.00", DAY1)],  # 4 twice: the first
    )  # fmt: skip
    assert counts == {"new": 2, "price": 0, "gone": 0, "back": 2}
    assert counts == count(store.changes(run))
    dearer = store.write_counted(run, [row(2, "2.25", DAY1)])  # a later batch
    assert dearer == {"new": 0, "price": 1, "gone": 0, "back": 0}
    assert count(store.changes(run)) == {"new": 2, "price": 1, "gone": 0, "back": 2}
    assert store.write_counted(run, [row(5, "3.00", DAY1)]) == count([])  # once a run
    assert [h["price"] for h in store.history(4)] == ["1.00"]
    store.close()


def test_the_same_item_in_another_language_is_another_listing(store_uri):
    store = open_store(store_uri)
    store.write(store.open_run(None), [row(1, "5.00", DAY0)])
    other = (1, "zh", *row(1, "6.00", DAY1)[2:])
    assert [c.change for c in store.write(store.open_run(None), [other])] == ["new"]
    store.close()


def test_a_job_is_one_run_until_it_finishes(store_uri):
    store = open_store(store_uri)
    run = store.open_run("jobdir:/x")
    store.finish_run(run, "shutdown", finished=False)
    assert store.open_run("jobdir:/x") == run  # resumed: the same run
    store.finish_run(run, "finished", finished=True)
    assert store.open_run("jobdir:/x") != run
    store.close()


def test_migrations_are_applied_once(store_uri):
    open_store(store_uri).close()
    store = open_store(store_uri)  # again: nothing to apply
    versions = store.query("SELECT version FROM schema_version ORDER BY version")
    assert [row["version"] for row in versions] == list(range(1, LATEST + 1))
    store.close()


def test_bad_store_uris_are_named():
    assert store_problems("sqlite:///out/c.sqlite") == []
    assert store_problems("postgresql://u@h/db") == []
    [problem] = store_problems("mysql://u:secret@h/db")
    assert "TMAPI_STORE" in problem and "secret" not in problem
    assert store_problems("sqlite:///")


def test_sqlite_prices_are_exact_text(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/c.sqlite")
    store.write(store.open_run(None), [row(1, "0.60", DAY0)])
    store.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as connection:
        assert connection.execute("SELECT price FROM items").fetchall() == [("0.60",)]


def share(delivered: int, band: str = "whole") -> QueryCrawl:
    return QueryCrawl("cat_id=5", 5, "en", "category 5 (en)", True, {band: 60},
                      (), 0, delivered)  # fmt: skip


def test_the_last_process_of_a_run_judges_each_query_once(store_uri):
    store = open_store(store_uri)
    first = store.open_run(None)
    store.write(first, [row(1, "1.00", DAY0), row(2, "2.00", DAY0)])
    run = store.open_run("redis:crawl")
    store.join(run, "w1")
    store.join(run, "w2")
    store.write(run, [row(1, "1.00", DAY1)])
    [waiting] = store.settle(run, "w1", [share(30)], "finished")
    assert waiting.waiting == 1 and waiting.gone == []
    [judged] = store.settle(run, "w2", [share(30)], "finished")  # 30 + 30 of 60
    assert judged.why is None and [c.item_id for c in judged.gone] == [2]
    assert store.settle(run, "w2", [share(30)], "finished") == []  # once
    assert store.run_queries(run)[0]["complete"] in (True, 1)
    store.close()


def test_a_run_short_of_items_is_not_judged(store_uri):
    store = open_store(store_uri)
    run = store.open_run(None)
    store.join(run, "w")
    [judged] = store.settle(run, "w", [share(59)], "finished")
    assert judged.why == "only 59 of the 60 items reported came"
    assert store.run_queries(run)[0]["reason"] == judged.why
    store.close()
