"""The store's record in a job directory: every observation handed to the
store, on disk before its item reaches any feed. Free of Scrapy.

With ``JOBDIR`` the catalog store is a sink of the job like each feed
(:mod:`tmapi_crawler.resume`): an observation is appended here, one JSON
line, before the feeds write its item, so whatever a feed holds, this file
holds too, even after a SIGKILL. What the store has committed is the offset
the job journal keeps (its ``stored`` lines, written after each batch's
commit); a resumed run writes the lines past it again. The store takes an
observation once a run (a second write of it adds nothing), so a line
written twice, once before a kill and once after, is observed once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from tmapi_crawler.resume.journal import drop_partial_last_line

LOG_NAME = "tmapi-store.jsonl"
# Once everything in it is committed, a log past this size starts again empty.
RESET_BYTES = 64 << 20


class ObservationLog:
    """Appends observations (rows in the store's ``OBSERVED`` order), each
    line written to the OS at once (unbuffered): a kill leaves every line
    whose item a feed could hold."""

    def __init__(self, jobdir: Path) -> None:
        self.path = jobdir / LOG_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        drop_partial_last_line(self.path)  # a line a kill cut: never committed
        self.file: IO[bytes] = self.path.open("ab", buffering=0)
        self.position = self.file.tell()

    def append(self, row: Sequence[Any]) -> None:
        line = json.dumps(row, default=str, separators=(",", ":")).encode() + b"\n"
        self.file.write(line)
        self.position += len(line)

    def sync(self) -> None:
        """To the disk, not only the OS (``TMAPI_JOB_FSYNC``)."""
        os.fsync(self.file.fileno())

    def read_from(self, offset: int) -> list[list[Any]]:
        """The observations past *offset*: those the store may not hold."""
        if offset >= self.position:
            return []
        with self.path.open("rb") as file:
            file.seek(offset)
            return [json.loads(line) for line in file if line.endswith(b"\n")]

    def reset(self) -> None:
        """Start again empty (every line committed, and the journal told so)."""
        self.file.truncate(0)
        self.file.seek(0)
        self.position = 0

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
