"""The catalog store read back: runs, their category queries, changes,
an item's history, any query, as the feeds write values. Free of Scrapy."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from tmapi_crawler.store.changes import ALL_KINDS
from tmapi_crawler.store.connection import CHANGE_COLUMNS, StoreConnection, text
from tmapi_crawler.store.variants import iter_variant_changes

PAGE = 5000  # changes read back at a time


class StoreReads(StoreConnection):
    """What the store holds, read back (each read one transaction)."""

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[dict]:
        with self.begin() as cursor:
            cursor.execute(self.sql(statement), tuple(params))
            names = [column[0] for column in cursor.description]
            return [
                {name: text(value) for name, value in zip(names, row, strict=True)}
                for row in cursor.fetchall()
            ]

    def runs(self) -> list[dict]:
        return self.query(
            "SELECT r.run_id, r.job, r.started_at, r.finished_at, r.finish_reason, "
            "(SELECT COUNT(*) FROM observations o WHERE o.run_id = r.run_id) "
            "AS observations FROM runs r ORDER BY r.started_at"
        )

    def run_queries(self, run_id: str) -> list[dict]:
        return self.query(
            "SELECT query, cat_id, language, label, complete, reason "
            "FROM run_categories WHERE run_id = ? ORDER BY query",
            (run_id,),
        )

    def changes(self, run_id: str) -> list[dict]:
        return self.query(
            f"SELECT {CHANGE_COLUMNS} FROM changes WHERE run_id = ? "
            "ORDER BY change, item_id, language",
            (run_id,),
        )

    def iter_changes(self, run_id: str) -> Iterator[dict]:
        """The run's changes, :data:`PAGE` at a time (a run's may be many)."""
        after: tuple[Any, ...] = ("", -1, "")
        order = "change, item_id, language"
        while True:
            page = self.query(
                f"SELECT {CHANGE_COLUMNS} FROM changes WHERE run_id = ? "
                f"AND ({order}) > (?, ?, ?) ORDER BY {order} LIMIT {PAGE}",
                (run_id, *after),
            )
            yield from page
            if len(page) < PAGE:
                break
            last = page[-1]
            after = (last["change"], last["item_id"], last["language"])
        yield from iter_variant_changes(self, run_id)

    def change_counts(self, run_id: str) -> dict[str, int]:
        """How many changes of each kind the run made, every process of it
        (the variants' too)."""
        counts = dict.fromkeys(ALL_KINDS, 0)
        for table in ("changes", "sku_changes"):
            for row in self.query(
                f"SELECT change, COUNT(*) AS n FROM {table} WHERE run_id = ? "
                "GROUP BY change",
                (run_id,),
            ):
                counts[row["change"]] = int(row["n"])
        return counts

    def run(self, run_id: str) -> dict | None:
        found = self.query(
            "SELECT run_id, job, finished_at, finish_reason FROM runs WHERE run_id = ?",
            (run_id,),
        )
        return found[0] if found else None

    def history(self, item_id: int, language: str | None = None) -> list[dict]:
        return self.of_item(
            "SELECT o.run_id, o.item_id, o.language, o.cat_id, o.price, "
            "o.sale_quantity_90days, o.observed_at FROM observations o",
            item_id,
            language,
            "o.observed_at",
        )

    def of_item(
        self, select: str, item_id: int, language: str | None, order: str
    ) -> list[dict]:
        """*select* (over ``o``) of one item, in one language or all, by *order*."""
        return self.query(
            f"{select} WHERE o.item_id = ?"
            + (" AND o.language = ?" if language else "")
            + f" ORDER BY {order}",
            (item_id, language) if language else (item_id,),
        )
