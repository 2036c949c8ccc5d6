"""The store's tables and their migrations, for SQLite and PostgreSQL.

Each migration is a version number and its statements, applied once, in
order, in one transaction; ``schema_version`` holds the versions applied (the
reference: ``docs/store.md``). The statements are written once, with three
placeholders a dialect fills: ``{price}`` (exact decimals), ``{time}`` (UTC
instants), ``{bool}``, ``{number}`` (what prices compare as) and
``{on_commit}`` (what becomes of a temporary table's rows at a commit).
"""

from __future__ import annotations

from dataclasses import dataclass

from tmapi_crawler.store import variants

SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at {time} NOT NULL
)"""

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE runs (
                run_id TEXT PRIMARY KEY,
                job TEXT,
                started_at {time} NOT NULL,
                finished_at {time},
                finish_reason TEXT
            )""",
            # A job (a JOBDIR, a shared Redis crawl) has one open run at a time.
            "CREATE UNIQUE INDEX runs_open_job ON runs (job) WHERE finished_at IS NULL",
            """CREATE TABLE run_categories (
                run_id TEXT NOT NULL REFERENCES runs (run_id),
                query TEXT NOT NULL,
                cat_id BIGINT NOT NULL,
                language TEXT NOT NULL,
                label TEXT NOT NULL,
                complete {bool},
                reason TEXT,
                PRIMARY KEY (run_id, query)
            )""",
            """CREATE TABLE items (
                item_id BIGINT NOT NULL,
                language TEXT NOT NULL,
                cat_id BIGINT,
                title TEXT,
                price {price},
                currency TEXT,
                company_name TEXT,
                is_super_factory {bool},
                shop_years INTEGER,
                sale_quantity_90days BIGINT,
                product_url TEXT,
                first_seen {time} NOT NULL,
                last_seen {time} NOT NULL,
                gone_at {time},
                last_run TEXT,
                PRIMARY KEY (item_id, language)
            )""",
            "CREATE INDEX items_category ON items (cat_id, language)",
            """CREATE TABLE observations (
                run_id TEXT NOT NULL,
                item_id BIGINT NOT NULL,
                language TEXT NOT NULL,
                cat_id BIGINT,
                price {price},
                sale_quantity_90days BIGINT,
                observed_at {time} NOT NULL,
                PRIMARY KEY (run_id, item_id, language)
            )""",
            "CREATE INDEX observations_item ON observations (item_id, language)",
            """CREATE TABLE changes (
                run_id TEXT NOT NULL,
                change TEXT NOT NULL,
                item_id BIGINT NOT NULL,
                language TEXT NOT NULL,
                cat_id BIGINT,
                title TEXT,
                old_price {price},
                new_price {price},
                first_seen {time} NOT NULL,
                last_seen {time} NOT NULL,
                PRIMARY KEY (run_id, item_id, language, change)
            )""",
        ),
    ),
    (
        2,
        (
            # The processes of a run (workers of a shared crawl, runs of a
            # job) and what each saw of each category query: the last to
            # close judges, from every share, what is gone.
            """CREATE TABLE run_workers (
                run_id TEXT NOT NULL REFERENCES runs (run_id),
                worker TEXT NOT NULL,
                started_at {time} NOT NULL,
                closed_at {time},
                PRIMARY KEY (run_id, worker)
            )""",
            """CREATE TABLE run_shares (
                run_id TEXT NOT NULL,
                worker TEXT NOT NULL,
                query TEXT NOT NULL,
                cat_id BIGINT NOT NULL,
                language TEXT NOT NULL,
                label TEXT NOT NULL,
                whole_category {bool} NOT NULL,
                bands TEXT NOT NULL,
                gaps TEXT NOT NULL,
                failed_pages INTEGER NOT NULL,
                delivered INTEGER NOT NULL,
                PRIMARY KEY (run_id, worker, query)
            )""",
        ),
    ),
    # The variants of the items detailed (-a details=...): their latest
    # state, their observations run by run, their changes.
    (3, variants.TABLES),
)
LATEST = MIGRATIONS[-1][0]

# A write's batch: loaded in one statement, then compared with the store and
# written set-wise, in SQL (a table of the connection's own, never migrated).
BATCH_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS batch (
    item_id BIGINT NOT NULL,
    language TEXT NOT NULL,
    cat_id BIGINT,
    title TEXT,
    price {price},
    currency TEXT,
    company_name TEXT,
    is_super_factory {bool},
    shop_years INTEGER,
    sale_quantity_90days BIGINT,
    product_url TEXT,
    observed_at {time} NOT NULL,
    PRIMARY KEY (item_id, language)
) {on_commit}"""


@dataclass(frozen=True)
class Dialect:
    name: str
    price: str
    time: str
    bool: str
    number: str
    on_commit: str
    placeholder: str

    def sql(self, statement: str) -> str:
        """A statement written with ``?`` placeholders and the type names."""
        text = statement.format(
            price=self.price,
            time=self.time,
            bool=self.bool,
            number=self.number,
            on_commit=self.on_commit,
        )
        return text.replace("?", self.placeholder)


# SQLite keeps prices as exact decimal text and compares them as numbers
# ("1.5" is "1.50"); it has no ON COMMIT (a write empties the batch itself).
SQLITE = Dialect(
    "sqlite",
    price="TEXT",
    time="TEXT",
    bool="INTEGER",
    number="REAL",
    on_commit="",
    placeholder="?",
)
POSTGRESQL = Dialect(
    "postgresql",
    price="NUMERIC",
    time="TIMESTAMPTZ",
    bool="BOOLEAN",
    number="NUMERIC",
    on_commit="ON COMMIT DELETE ROWS",
    placeholder="%s",
)
