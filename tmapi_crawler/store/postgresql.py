"""The store on PostgreSQL (psycopg 3): workers of one crawl share it.

Observations go in with one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT
DO NOTHING RETURNING``: of two workers delivering the same item in a run,
one inserts it and makes its change, the other gets nothing back, so each
change is made once whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from tmapi_crawler.store.changes import Known
from tmapi_crawler.store.db import Store, price, text
from tmapi_crawler.store.schema import POSTGRESQL

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

    def _fresh(self, cursor: Any, run_id: str, rows: Sequence[tuple]) -> set:
        cursor.execute(
            "INSERT INTO observations SELECT %s, * FROM unnest("
            "%s::bigint[], %s::text[], %s::bigint[], %s::numeric[], %s::bigint[], "
            "%s::timestamptz[]) ON CONFLICT DO NOTHING RETURNING item_id, language",
            (
                run_id,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [r[4] for r in rows],
                [r[9] for r in rows],
                [r[-1] for r in rows],
            ),
        )
        return {(int(item_id), language) for item_id, language in cursor.fetchall()}

    def _known(self, cursor: Any, keys: Sequence[tuple[int, str]]) -> dict:
        cursor.execute(
            "SELECT item_id, language, price, first_seen, gone_at FROM items "
            "WHERE (item_id, language) IN "
            "(SELECT * FROM unnest(%s::bigint[], %s::text[]))",
            ([k[0] for k in keys], [k[1] for k in keys]),
        )
        return {
            (int(item_id), language): Known(price(old), text(first), text(gone))
            for item_id, language, old, first, gone in cursor.fetchall()
        }


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
