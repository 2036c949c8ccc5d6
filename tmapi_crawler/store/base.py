"""The catalog store, whatever its database: :class:`Store` (one connection,
every method one transaction), and its runs. Free of Scrapy.

A :class:`Store` is its connection (:mod:`.connection`: transactions, the
schema), its writes (:mod:`.writes`: a batch of observations, the changes
they make, what is gone) and its reads (:mod:`.reads`); this module keeps the
runs: opened, joined by each process, closed, and judged once by the last
process of a run to close (:meth:`Store.settle`). Each database fills in the
dialect's parts: :mod:`.sqlite`, :mod:`.postgresql`; :mod:`.db` opens either
from a ``TMAPI_STORE`` URI.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tmapi_crawler.store.changes import Change, QueryCrawl, cannot_judge, merged
from tmapi_crawler.store.connection import now
from tmapi_crawler.store.reads import StoreReads
from tmapi_crawler.store.writes import StoreWrites

SHARE_COLUMNS = (
    "query, cat_id, language, label, whole_category, bands, gaps, "
    "failed_pages, delivered"
)
# A process's share written again (a job's: the whole job so far) replaces it.
SHARE_UPDATED = ("whole_category", "bands", "gaps", "failed_pages", "delivered")


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


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


class Store(StoreWrites, StoreReads):
    """The store: one connection (every method one transaction), its writes,
    its reads, and its runs."""

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
