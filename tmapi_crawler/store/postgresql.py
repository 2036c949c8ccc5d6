"""The store on PostgreSQL (psycopg 3): workers of one crawl share it.

A batch goes in with one ``INSERT ... SELECT FROM jsonb_array_elements(...)``, its
observations with one ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: of two
workers delivering the same item in a run, one inserts it and makes its
change, the other gets nothing back, so each change is made once whatever
the number of workers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from tmapi_crawler.store.base import Store
from tmapi_crawler.store.schema import POSTGRESQL

# The columns of a batch (OBSERVED), each read from a row's JSON array.
LOAD_COLUMNS = ", ".join(
    f"(v ->> {n})::{kind}"
    for n, kind in enumerate(
        ("bigint", "text", "bigint", "text", "numeric", "text", "text",
         "boolean", "integer", "bigint", "text", "timestamptz")
    )
)  # fmt: skip
CONNECT_TIMEOUT = 5  # seconds: an unreachable store must not hold the crawl long


class PostgresStore(Store):
    dialect = POSTGRESQL

    def __init__(self, uri: str) -> None:
        super().__init__(
            psycopg.connect(uri, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        )

    def begin(self) -> Any:
        return _Transaction(self.connection)

    def lock(self, cursor: Any, key: str) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))

    def _load(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        # the whole batch as one JSON parameter: psycopg adapts a text in C,
        # twelve arrays element by element; jsonb, parsed once, where json's
        # ->> parses a row again for each column (a third of the server's time)
        cursor.execute(
            f"INSERT INTO batch SELECT {LOAD_COLUMNS} "
            "FROM jsonb_array_elements(%s::jsonb) v ON CONFLICT DO NOTHING",
            (json.dumps(rows, default=str),),
        )

    def _fresh(self, cursor: Any, run_id: str) -> None:
        # of two workers inserting an observation, one gets it back, the other
        # drops it from its batch: its change is made once
        cursor.execute(
            "WITH fresh AS (INSERT INTO observations SELECT %s, item_id, language, "
            "cat_id, price, sale_quantity_90days, observed_at FROM batch "
            "ON CONFLICT DO NOTHING RETURNING item_id, language) "
            "DELETE FROM batch b WHERE NOT EXISTS (SELECT 1 FROM fresh f "
            "WHERE f.item_id = b.item_id AND f.language = b.language)",
            (run_id,),
        )


class _Transaction:
    def __init__(self, connection: psycopg.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> psycopg.Cursor:
        self.transaction = self.connection.transaction()
        self.transaction.__enter__()
        self.cursor = self.connection.cursor()
        return self.cursor

    def __exit__(self, *exc_info: Any) -> None:
        self.cursor.close()
        self.transaction.__exit__(*exc_info)
