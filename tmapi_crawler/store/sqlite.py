"""The store on SQLite (``sqlite3``): one machine, one file, one writer at a
time (``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tmapi_crawler.store.base import Store
from tmapi_crawler.store.changes import OBSERVED
from tmapi_crawler.store.schema import SQLITE


class SqliteStore(Store):
    dialect = SQLITE

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA temp_store=MEMORY")
        super().__init__(connection)

    def begin(self) -> Any:
        return _SqliteTransaction(self.connection)

    def _load(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        # the whole batch as one JSON parameter (prices as exact decimal text)
        cursor.execute(
            "INSERT INTO batch SELECT "
            + ", ".join(f"value ->> {n}" for n in range(len(OBSERVED)))
            + " FROM json_each(?) WHERE true ON CONFLICT DO NOTHING",
            (json.dumps(rows, default=str),),
        )

    def _fresh(self, cursor: Any, run_id: str) -> None:
        # one writer at a time (BEGIN IMMEDIATE): what the run holds is settled
        cursor.execute(
            "DELETE FROM batch WHERE EXISTS (SELECT 1 FROM observations o "
            "WHERE o.run_id = ? AND o.item_id = batch.item_id "
            "AND o.language = batch.language)",
            (run_id,),
        )
        cursor.execute(
            "INSERT INTO observations SELECT ?, item_id, language, cat_id, price, "
            "sale_quantity_90days, observed_at FROM batch",
            (run_id,),
        )

    def _changes_counted(self, cursor: Any, run_id: str) -> list[tuple[str, int]]:
        # SQLite has no RETURNING in a WITH; one writer at a time (BEGIN
        # IMMEDIATE), so the rows above the last rowid are this insert's
        cursor.execute("SELECT COALESCE(MAX(rowid), 0) FROM changes")
        last = cursor.fetchone()[0]
        cursor.execute(self.sql(self.CHANGES), (run_id,))
        cursor.execute(
            "SELECT change, COUNT(*) FROM changes WHERE rowid > ? GROUP BY change",
            (last,),
        )
        return list(cursor.fetchall())


class _SqliteTransaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK``): one writer at a time."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Cursor:
        self.cursor = self.connection.cursor()
        self.cursor.execute("BEGIN IMMEDIATE")
        return self.cursor

    def __exit__(self, kind: object, *rest: object) -> None:
        self.cursor.execute("ROLLBACK" if kind else "COMMIT")
        self.cursor.close()
