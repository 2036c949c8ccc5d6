"""The catalog store, whatever its database: :class:`Store` (one connection,
every method one transaction) and what it reads back. Free of Scrapy.

Every write is a batch in one transaction: :meth:`Store.write` adds a
batch's observations (each once a run: a resumed run, a page another worker
also delivered, add nothing), updates the items and returns the changes they
make, all set-wise, a few statements a batch whatever its size (a row-by-row
write waits for the GIL a busy crawl holds once per row);
:meth:`Store.mark_gone` ends a category query's crawl. Each database fills in
the dialect's parts: :mod:`.sqlite`, :mod:`.postgresql`; :mod:`.db` opens
either from a ``TMAPI_STORE`` URI.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tmapi_crawler.store.changes import (
    KINDS,
    OBSERVED,
    VARIANT_KINDS,
    Change,
    QueryCrawl,
    cannot_judge,
    merged,
)
from tmapi_crawler.store.schema import (
    BATCH_TABLE,
    MIGRATIONS,
    SCHEMA_VERSION_TABLE,
    Dialect,
)
from tmapi_crawler.store.variants import (
    SKU_BATCH_TABLE,
    is_variant,
    iter_variant_changes,
    write_variants,
)

ALL_KINDS = (*KINDS, *VARIANT_KINDS)  # the listings' changes, the variants'


CHANGE_COLUMNS = (
    "change, item_id, language, cat_id, title, old_price, new_price, "
    "first_seen, last_seen"
)


SHARE_COLUMNS = (
    "query, cat_id, language, label, whole_category, bands, gaps, "
    "failed_pages, delivered"
)
# A process's share written again (a job's: the whole job so far) replaces it.
SHARE_UPDATED = ("whole_category", "bands", "gaps", "failed_pages", "delivered")
PAGE = 5000  # changes read back at a time


@dataclass(frozen=True)
class Judgement:
    """What the close of a process said of a category query: why gone could
    not be said (None: it was, *gone*), or how many processes of the run are
    still open (the last one judges)."""

    label: str
    why: str | None
    gone: list[Change]
    waiting: int


def share_row(share: QueryCrawl) -> tuple[Any, ...]:
    return (share.query, share.cat_id, share.language, share.label,
            share.whole_category, json.dumps(share.bands), json.dumps(share.gaps),
            share.failed_pages, share.delivered)  # fmt: skip


def share_of(row: Sequence[Any]) -> QueryCrawl:
    query, cat_id, language, label, whole, bands, gaps, failed, delivered = row
    return QueryCrawl(str(query), int(cat_id), language, label, bool(whole),
                      json.loads(bands), tuple(json.loads(gaps)), int(failed),
                      int(delivered))  # fmt: skip


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


def price(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def change_of(row: Sequence[Any]) -> Change:
    """A change read back (:data:`CHANGE_COLUMNS` order)."""
    kind, item_id, language, cat_id, title, old, new, first, last = row
    return Change(kind, int(item_id), language, cat_id, title, price(old),
                  price(new), text(first), text(last))  # fmt: skip


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


class Store:
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

    # --- runs --------------------------------------------------------------

    def open_run(self, job: str | None) -> str:
        """A new run, or the open run of *job* (a resumed job, a worker
        joining a shared crawl): the same run."""
        with self.begin() as cursor:
            if job is not None:
                cursor.execute(
                    self.sql(
                        "SELECT run_id FROM runs WHERE job = ? AND finished_at IS NULL"
                    ),
                    (job,),
                )
                if found := cursor.fetchone():
                    return str(found[0])
            run_id = new_run_id()
            cursor.execute(
                self.sql(
                    "INSERT INTO runs (run_id, job, started_at) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING"
                ),
                (run_id, job, now()),
            )
            if cursor.rowcount == 0:  # another worker opened it meanwhile
                cursor.execute(
                    self.sql(
                        "SELECT run_id FROM runs WHERE job = ? AND finished_at IS NULL"
                    ),
                    (job,),
                )
                run_id = str(cursor.fetchone()[0])
        return run_id

    def ensure_run(self, run_id: str, job: str | None) -> None:
        """The run *run_id*, made if the store never saw it (a crawl that
        could not reach the store at all); of *job* unless the job has
        another run open."""
        with self.begin() as cursor:
            cursor.execute(self.sql("SELECT 1 FROM runs WHERE run_id = ?"), (run_id,))
            if cursor.fetchone():
                return
            if job is not None:
                cursor.execute(
                    self.sql(
                        "SELECT 1 FROM runs WHERE job = ? AND finished_at IS NULL"
                    ),
                    (job,),
                )
                if cursor.fetchone():
                    job = None
            cursor.execute(
                self.sql("INSERT INTO runs (run_id, job, started_at) VALUES (?, ?, ?)"),
                (run_id, job, now()),
            )

    def finish_run(self, run_id: str, reason: str, finished: bool) -> None:
        """The run's finish reason; *finished*: the run is over (a job that
        stopped early stays open, for its resume). A run finished once keeps
        its first end (a load of its file again changes nothing)."""
        with self.begin() as cursor:
            cursor.execute(
                self.sql(
                    "UPDATE runs SET finish_reason = ?, finished_at = ? "
                    "WHERE run_id = ? AND finished_at IS NULL"
                ),
                (reason, now() if finished else None, run_id),
            )

    def join(self, run_id: str, worker: str) -> None:
        """A process takes part in the run: the run is judged once every
        process that joined it has closed (a process joining again is open
        again)."""
        with self.begin() as cursor:
            cursor.execute(
                self.sql(
                    "INSERT INTO run_workers VALUES (?, ?, ?, NULL) "
                    "ON CONFLICT (run_id, worker) DO UPDATE SET closed_at = NULL"
                ),
                (run_id, worker, now()),
            )

    def close_dead(self, run_id: str, worker: str) -> int:
        """Every other process of the run still open, closed: a job directory
        is run by one process at a time, so they were killed (their share is
        in the job's journal: the live process writes the whole job's)."""
        with self.begin() as cursor:
            cursor.execute(
                self.sql(
                    "UPDATE run_workers SET closed_at = ? WHERE run_id = ? "
                    "AND worker <> ? AND closed_at IS NULL"
                ),
                (now(), run_id, worker),
            )
            return int(cursor.rowcount)

    def settle(
        self,
        run_id: str,
        worker: str,
        shares: Sequence[QueryCrawl],
        reason: str,
        judge: bool = True,
    ) -> list[Judgement]:
        """This process's share of each category query, and its close; if it
        is the run's last process open (and *judge*: not a job to be resumed),
        every query of the run judged, once: gone marked where the crawl
        (every share merged) was complete."""
        with self.begin() as cursor:
            self.lock(cursor, run_id)
            cursor.executemany(
                self.sql(
                    "INSERT INTO run_shares VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, worker, query) DO UPDATE SET "
                    + ", ".join(f"{c} = excluded.{c}" for c in SHARE_UPDATED)
                ),
                [(run_id, worker, *share_row(share)) for share in shares],
            )
            cursor.execute(
                self.sql(
                    "UPDATE run_workers SET closed_at = ? WHERE run_id = ? "
                    "AND worker = ?"
                ),
                (now(), run_id, worker),
            )
            cursor.execute(
                self.sql(
                    "SELECT COUNT(*) FROM run_workers WHERE run_id = ? "
                    "AND closed_at IS NULL"
                ),
                (run_id,),
            )
            still_open = int(cursor.fetchone()[0])
            if not judge:
                return []
            if still_open:
                return [Judgement(s.label, None, [], still_open) for s in shares]
            cursor.execute(
                self.sql(
                    f"SELECT {SHARE_COLUMNS} FROM run_shares WHERE run_id = ? "
                    "AND query NOT IN (SELECT query FROM run_categories "
                    "WHERE run_id = ?)"
                ),
                (run_id, run_id),
            )
            by_query: dict[str, list[QueryCrawl]] = {}
            for row in cursor.fetchall():
                share = share_of(row)
                by_query.setdefault(share.query, []).append(share)
            judged = []
            for parts in by_query.values():
                crawl = merged(parts)
                why = cannot_judge(crawl, reason)
                cursor.execute(
                    self.sql("INSERT INTO run_categories VALUES (?, ?, ?, ?, ?, ?, ?)"),
                    (run_id, crawl.query, crawl.cat_id, crawl.language, crawl.label,
                     why is None, why),
                )  # fmt: skip
                gone = (
                    []
                    if why is not None
                    else self._gone(cursor, run_id, crawl.cat_id, crawl.language)
                )
                judged.append(Judgement(crawl.label, why, gone, 0))
        return judged

    # --- observations and changes --------------------------------------------

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

    # --- reading it back -------------------------------------------------------

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

    def close(self) -> None:
        self.connection.close()
