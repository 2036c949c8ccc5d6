"""The job journal: what happened to every request of a crawl, kept on disk.

Scrapy's ``JOBDIR`` persists its request queue only when the crawl closes
cleanly; after a SIGKILL the queue is lost and the fingerprints of requests
never fetched may still be in ``requests.seen``. The journal is an append-only
JSON Lines file in the job directory, flushed on every line, that a killed run
leaves consistent (a line cut by the kill is ignored):

* ``{"e": "queued", "fp": ..., "request": {...}}``: the scheduler accepted a
  request (the request as JSON, never the token: requests never hold it);
* ``{"e": "leased", "fp": ...}``: the scheduler handed it to the downloader;
* ``{"e": "settled", "fp": ..., "items": N, "ids": [...], "end": bool,
  "outcome": ...}``: its answer was handled and every item it produced written
  to the feeds (or, for a feed that uploads, to its spool), or the page failed
  for good, or lay past the last page; ``ids`` are the item ids it delivered:
  the job's record of what was delivered, whatever the feeds; ``cov`` what
  it added to its query's coverage (a resumed job judges ``gone`` from every
  run's pages);
* ``{"e": "partial", "fp": ..., "ids": [...]}``: items of a page in flight at
  a kill that the job's files (or its spool) already held, found by the next
  run (so a later run knows them even once the spool is uploaded);
* ``{"e": "stored", "sink": "store", "upto": N, "run": ...}``: the catalog
  store has committed every observation of its log
  (:mod:`tmapi_crawler.store.wal`) up to byte *N* to the run of the job: a
  resumed run writes the rest again, to the same run (even one it finished);
* ``{"e": "run", "n": ..., "at": ...}``: a run started;
* ``{"e": "ledger", "progress": [...]}``: where each category stood when a run
  closed (the ledger's figures: pages planned, done and failed, calls, items),
  so the next run's summary counts every run of the job; the last one counts.

Free of Scrapy: the journal stores requests as dicts it does not interpret.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

JOURNAL_NAME = "tmapi-journal.jsonl"


@dataclass
class Settled:
    items: int
    end: bool
    outcome: str
    ids: list[Any] = field(default_factory=list)
    cover: dict[str, Any] | None = None  # what the page added to the coverage


@dataclass
class JobState:
    """What a journal says: every request queued, leased and settled."""

    queued: dict[str, dict[str, Any]] = field(default_factory=dict)
    leased: set[str] = field(default_factory=set)
    settled: dict[str, Settled] = field(default_factory=dict)
    partial: dict[str, set[str]] = field(default_factory=dict)
    runs: int = 0
    ledger: list[dict[str, Any]] | None = None  # the last run's figures
    stored: dict[str, int] = field(default_factory=dict)  # sink: offset committed
    runs_of: dict[str, str] = field(default_factory=dict)  # sink: the job's run
    damaged_lines: int = 0  # lines that are not an event (a kill, or an edit)

    @property
    def pending(self) -> dict[str, dict[str, Any]]:
        """Requests queued and not settled: the rest of the crawl."""
        return {fp: r for fp, r in self.queued.items() if fp not in self.settled}

    @property
    def in_flight(self) -> set[str]:
        """Requests handed to the downloader and not settled when the last run
        ended: the only ones whose call may have been paid already."""
        return {fp for fp in self.leased if fp not in self.settled}

    @property
    def items_delivered(self) -> int:
        return sum(settled.items for settled in self.settled.values())

    def apply(self, entry: dict[str, Any]) -> None:
        fp, event = entry.get("fp"), entry.get("e")
        if event == "run":
            self.runs = max(self.runs, int(entry.get("n", 0)))
        elif event == "ledger" and isinstance(entry.get("progress"), list):
            self.ledger = entry["progress"]
        elif event == "stored" and isinstance(entry.get("upto"), int):
            self.stored[str(entry.get("sink"))] = entry["upto"]
            if isinstance(entry.get("run"), str):
                self.runs_of[str(entry.get("sink"))] = entry["run"]
        elif not isinstance(fp, str):
            self.damaged_lines += 1
        elif event == "queued" and isinstance(entry.get("request"), dict):
            self.queued[fp] = entry["request"]
        elif event == "leased":
            self.leased.add(fp)
        elif event == "settled":
            self.settled[fp] = Settled(
                int(entry.get("items", 0)),
                bool(entry.get("end")),
                str(entry.get("outcome", "done")),
                list(entry.get("ids") or ()),
                entry.get("cov") if isinstance(entry.get("cov"), dict) else None,
            )
            self.partial.pop(fp, None)
        elif event == "partial":
            self.partial.setdefault(fp, set()).update(map(str, entry.get("ids", ())))
        else:
            self.damaged_lines += 1


def load(path: Path) -> JobState:
    """The state a journal records; lines a kill cut short are skipped."""
    state = JobState()
    if not path.exists():
        return state
    with path.open("rb") as lines:
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                state.damaged_lines += 1
                continue
            if isinstance(entry, dict):
                state.apply(entry)
            else:
                state.damaged_lines += 1
    return state


class Journal:
    """Appends one JSON line per event, each flushed to the OS at once, so a
    killed process leaves every finished line behind."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        drop_partial_last_line(path)
        self.path = path
        self.file: IO[bytes] = path.open("ab")

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"e": event, **fields}, separators=(",", ":"))
        self.file.write(line.encode("utf-8") + b"\n")
        self.file.flush()

    def sync(self) -> None:
        """To the disk, not only the OS: survives a power loss."""
        os.fsync(self.file.fileno())

    def start_run(self, number: int) -> None:
        self.write("run", n=number, at=datetime.now(UTC).isoformat(timespec="seconds"))

    def close(self) -> None:
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()


def drop_partial_last_line(path: Path) -> int:
    """Cut a last line that does not end with a newline (a write a kill
    interrupted); returns the bytes removed."""
    if not path.exists():
        return 0
    with path.open("rb+") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        chunk = 1 << 16
        position = size
        while position > 0:
            start = max(0, position - chunk)
            file.seek(start)
            block = file.read(position - start)
            if start + len(block) == size and block.endswith(b"\n"):
                return 0
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                file.truncate(keep)
                return size - keep
            position = start
        file.truncate(0)
        return size
