"""One connection to the catalog store, whatever its database: what every
part of :class:`~.base.Store` stands on. Free of Scrapy.

Every method of the store is one transaction (:meth:`StoreConnection.begin`,
the dialect's); every statement is written once, with the placeholders a
dialect fills (:meth:`StoreConnection.sql`, :mod:`.schema`). Each database
fills in its parts (:mod:`.sqlite`, :mod:`.postgresql`);
:meth:`StoreConnection.migrate` brings the schema to its latest version and
:meth:`StoreConnection.prepare` makes the connection's own tables for the
batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tmapi_crawler.store.schema import (
    BATCH_TABLE,
    MIGRATIONS,
    SCHEMA_VERSION_TABLE,
    Dialect,
)
from tmapi_crawler.store.variants import SKU_BATCH_TABLE

CHANGE_COLUMNS = (
    "change, item_id, language, cat_id, title, old_price, new_price, "
    "first_seen, last_seen"
)


def now() -> str:
    return datetime.now(UTC).isoformat()


def text(value: Any) -> Any:
    """A value read back, as the feed writes it: instants in ISO 8601, prices
    as exact decimal strings."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class StoreConnection:
    """One connection to the store; every method is one transaction."""

    dialect: Dialect

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    # --- the dialects' parts -------------------------------------------------

    def begin(self) -> Any:
        raise NotImplementedError

    def _load(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        """The rows into the table batch, in one statement (an item twice:
        the first)."""
        raise NotImplementedError

    def _fresh(self, cursor: Any, run_id: str) -> None:
        """The batch's observations not yet in the run inserted; the others
        out of the batch."""
        raise NotImplementedError

    def lock(self, cursor: Any, key: str) -> None:
        """Serialise the transactions of several processes that take the same
        *key* (PostgreSQL; SQLite has one writer at a time anyway)."""

    # --- schema ------------------------------------------------------------

    def prepare(self) -> None:
        """The connection's own tables for the batches."""
        with self.begin() as cursor:
            cursor.execute(self.sql(BATCH_TABLE))
            cursor.execute(self.sql(SKU_BATCH_TABLE))

    def sql(self, statement: str) -> str:
        return self.dialect.sql(statement)

    def migrate(self) -> int:
        """Apply the migrations not applied yet; the schema's version."""
        with self.begin() as cursor:
            self.lock(cursor, "migrations")
            cursor.execute(self.sql(SCHEMA_VERSION_TABLE))
            cursor.execute("SELECT MAX(version) FROM schema_version")
            current = cursor.fetchone()[0] or 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    cursor.execute(self.sql(statement))
                cursor.execute(
                    self.sql("INSERT INTO schema_version VALUES (?, ?)"),
                    (version, now()),
                )
                current = version
        return current

    def close(self) -> None:
        self.connection.close()
