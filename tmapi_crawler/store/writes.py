"""The catalog store's writes: a batch of observations, the changes they
make, and what is gone. Free of Scrapy.

Every write is a batch in one transaction: :meth:`StoreWrites.write` adds a
batch's observations (each once a run: a resumed run, a page another worker
also delivered, add nothing), updates the items and returns the changes they
make, all set-wise, a few statements a batch whatever its size (a row-by-row
write waits for the GIL a busy crawl holds once per row);
:meth:`StoreWrites.mark_gone` ends a category query's crawl.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tmapi_crawler.store.changes import KINDS, OBSERVED, Change
from tmapi_crawler.store.connection import CHANGE_COLUMNS, StoreConnection, now, text
from tmapi_crawler.store.variants import is_variant, write_variants


def price(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def change_of(row: Sequence[Any]) -> Change:
    """A change read back (:data:`CHANGE_COLUMNS` order)."""
    kind, item_id, language, cat_id, title, old, new, first, last = row
    return Change(kind, int(item_id), language, cat_id, title, price(old),
                  price(new), text(first), text(last))  # fmt: skip


class StoreWrites(StoreConnection):
    """The observations written, batch by batch, and the changes they make."""

    def write(self, run_id: str, rows: Sequence[Sequence[Any]]) -> list[Change]:
        """One batch of observations (:data:`OBSERVED` order), in one
        transaction: the changes of those not yet observed in the run (of an
        item twice in the batch, the first). Listings only."""
        rows = [row for row in rows if not is_variant(row)]
        if not rows:
            return []
        with self.begin() as cursor:
            self._stage(cursor, run_id, rows)
            cursor.execute(
                self.sql(f"{self.CHANGES} RETURNING {CHANGE_COLUMNS}"), (run_id,)
            )
            made = cursor.fetchall()
            cursor.execute(self.sql(self.UPSERT), (run_id,))
        return [change_of(row) for row in made]

    def write_counted(
        self, run_id: str, rows: Sequence[Sequence[Any]]
    ) -> dict[str, int]:
        """:meth:`write`, saying only how many changes of each kind it made
        (they are in the store; reading each back costs the crawl ~13 us a
        row of CPU, for a changes feed only). The kinds are counted in SQL: a
        few rows come back, not one a change, each of which would take the GIL
        back from the crawl's thread (SQLite: one step a row)."""
        counts = dict.fromkeys(KINDS, 0)  # and the variants' kinds, with any
        listings = [row for row in rows if not is_variant(row)]
        skus = [row for row in rows if is_variant(row)]
        if not rows:
            return counts
        with self.begin() as cursor:
            if listings:
                self._stage(cursor, run_id, listings)
                for kind, made in self._changes_counted(cursor, run_id):
                    counts[kind] = int(made)
                cursor.execute(self.sql(self.UPSERT), (run_id,))
            if skus:  # the variants of the items detailed (store/variants.py)
                counts.update(write_variants(self, cursor, run_id, skus))
        return counts

    def _stage(self, cursor: Any, run_id: str, rows: Sequence[Sequence[Any]]) -> None:
        """The rows in the table batch, those already observed in the run out."""
        cursor.execute("DELETE FROM batch")
        self._load(cursor, rows)
        self._fresh(cursor, run_id)

    def _changes_counted(self, cursor: Any, run_id: str) -> list[tuple[str, int]]:
        """The batch's changes inserted; how many of each kind (PostgreSQL:
        counted from the insert's RETURNING, server-side)."""
        cursor.execute(
            self.sql(
                f"WITH made AS ({self.CHANGES} RETURNING change) "
                "SELECT change, COUNT(*) FROM made GROUP BY change"
            ),
            (run_id,),
        )
        return list(cursor.fetchall())

    # Each statement works on the whole batch (its rows in the table batch,
    # each new in the run): compared with the store, the changes; then the
    # items, inserted or updated.
    CHANGES = (
        f"INSERT INTO changes (run_id, {CHANGE_COLUMNS}) SELECT ?, "
        "CASE WHEN i.item_id IS NULL THEN 'new' "
        "WHEN i.gone_at IS NOT NULL THEN 'back' ELSE 'price' END, "
        "b.item_id, b.language, b.cat_id, b.title, i.price, b.price, "
        "COALESCE(i.first_seen, b.observed_at), b.observed_at "
        "FROM batch b LEFT JOIN items i "
        "ON i.item_id = b.item_id AND i.language = b.language "
        "WHERE i.item_id IS NULL OR i.gone_at IS NOT NULL "
        "OR CAST(i.price AS {number}) IS DISTINCT FROM CAST(b.price AS {number}) "
        "ON CONFLICT DO NOTHING"
    )
    ITEM_COLUMNS = ", ".join((*OBSERVED[:-1], "first_seen", "last_seen", "last_run"))
    UPSERT = (
        f"INSERT INTO items ({ITEM_COLUMNS}) "
        f"SELECT {', '.join(OBSERVED)}, observed_at, ? FROM batch WHERE true "
        "ON CONFLICT (item_id, language) DO UPDATE SET "
        + ", ".join(
            f"{name} = excluded.{name}"
            for name in (*OBSERVED[2:-1], "last_seen", "last_run")
        )
        + ", gone_at = NULL"
    )

    def mark_gone(self, run_id: str, cat_id: int, language: str) -> list[Change]:
        """Every listing of the category (in *language*) still listed that
        this run did not see: gone, now. Only for a complete crawl of it."""
        with self.begin() as cursor:
            return self._gone(cursor, run_id, cat_id, language)

    def _gone(
        self, cursor: Any, run_id: str, cat_id: int, language: str
    ) -> list[Change]:
        # the category's listings still listed that this run did not see
        unseen = (
            "cat_id = ? AND language = ? AND gone_at IS NULL "
            "AND (last_run IS NULL OR last_run <> ?)"
        )
        cursor.execute(
            self.sql(
                f"INSERT INTO changes (run_id, {CHANGE_COLUMNS}) SELECT ?, 'gone', "
                "item_id, language, cat_id, title, price, NULL, first_seen, "
                f"last_seen FROM items WHERE {unseen} ON CONFLICT DO NOTHING "
                f"RETURNING {CHANGE_COLUMNS}"
            ),
            (run_id, cat_id, language, run_id),
        )
        changes = [change_of(row) for row in cursor.fetchall()]
        cursor.execute(
            self.sql(f"UPDATE items SET gone_at = ? WHERE {unseen}"),
            (now(), cat_id, language, run_id),
        )
        return changes
