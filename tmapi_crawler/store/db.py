"""One way to open the catalog store, over SQLite or PostgreSQL.

:func:`open_store` takes a ``TMAPI_STORE`` URI (``sqlite:///out/catalog.sqlite``,
``postgresql://user@host/db``): a :class:`~.sqlite.SqliteStore` or a
:class:`~.postgresql.PostgresStore` (psycopg, ~0.1 s to import, only for
PostgreSQL), both a :class:`~.base.Store`; :func:`store_errors` says what
either's failures raise. Free of Scrapy.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit

from tmapi_crawler.store.base import Judgement, Store, new_run_id
from tmapi_crawler.store.sqlite import SqliteStore

__all__ = [
    "Judgement",
    "Store",
    "is_sqlite",
    "new_run_id",
    "open_store",
    "sqlite_path",
    "store_errors",
    "store_problems",
]

SCHEMES = ("sqlite", "postgresql", "postgres")


def store_problems(uri: str) -> list[str]:
    """What is wrong with a ``TMAPI_STORE`` value (nothing: an empty list)."""
    scheme = urlsplit(uri).scheme
    if scheme not in SCHEMES:
        return [
            f"TMAPI_STORE={uri.split('@')[-1]!r}: expected sqlite:///PATH or "
            "postgresql://USER@HOST/DBNAME"
        ]
    if scheme == "sqlite" and not sqlite_path(uri):
        return [
            "TMAPI_STORE: sqlite:/// needs a file path, e.g. sqlite:///out/catalog.sqlite"
        ]
    return []


def is_sqlite(uri: str) -> bool:
    return urlsplit(uri).scheme == "sqlite"


def store_errors(uri: str) -> tuple[type[BaseException], ...]:
    """What a store's failures raise (psycopg, ~0.1 s to import, only for
    PostgreSQL)."""
    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
    if is_sqlite(uri):
        return errors
    try:
        import psycopg
    except ImportError:
        return errors
    return (*errors, psycopg.Error)


def sqlite_path(uri: str) -> str:
    """``sqlite:///out/c.sqlite``: ``out/c.sqlite``; ``sqlite:////abs``: ``/abs``."""
    return uri.removeprefix("sqlite://").removeprefix("/")


def open_store(uri: str) -> Store:
    """The store at *uri*, its schema migrated to the latest version."""
    if is_sqlite(uri):
        store: Store = SqliteStore(sqlite_path(uri))
    else:
        from tmapi_crawler.store.postgresql import PostgresStore

        store = PostgresStore(uri)
    store.migrate()
    store.prepare()
    return store
