"""JSON Lines output that survives a kill, and the feed a resumed run continues.

* :class:`LineFlushingJsonLinesExporter` writes every item as one whole line
  and flushes it to the OS at once: a killed process (even SIGKILL) leaves
  every item it reported as exported in the file. A typed item
  (:class:`~tmapi_crawler.contract.items.ApiModel`) is encoded by pydantic's own JSON
  serializer, the same JSON as Scrapy's generic path at a hundredth of its
  cost (``BENCHMARKS.md``, benchmark 3).
* A kill can still cut the line being written; the next run of the same job
  removes such a partial last line before appending
  (:func:`tmapi_crawler.resume.journal.drop_partial_last_line`), so the file is
  always read line by line without an error once the job has run again.
* :class:`FeedMemory` keeps in the job directory the file each feed of the
  first run was written to (``%(time)s`` rendered), so a resumed run appends
  to the same file instead of starting another: a file of lines (JSON Lines,
  CSV) only. A file that cannot be appended to (Parquet, with its footer; a
  JSON array; XML) is left whole, and each later run writes its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic_core import PydanticSerializationError
from scrapy.exporters import JsonLinesItemExporter
from w3lib.url import file_uri_to_path

from tmapi_crawler.contract.items import ApiModel
from tmapi_crawler.feeds.guard import GuardedExport

FEEDS_NAME = "tmapi-feeds.json"


class LineFlushingJsonLinesExporter(GuardedExport, JsonLinesItemExporter):
    """Scrapy's JSON Lines exporter, flushing each line as it is written, and
    guarded (:mod:`tmapi_crawler.feeds.guard`): a line is whole or cut away.

    Scrapy's generic path asks itemadapter for every field's metadata and
    re-encodes each nested model through ``ItemAdapter.asdict`` (~400 us an
    item). A typed item goes through pydantic's serializer instead (~5 us):
    the same fields in the same order, prices as strings, extra fields kept,
    compact separators. Options only the generic path knows (``fields``,
    another encoding, encoder keywords) keep the generic path.
    """

    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        encoding = (self.encoding or "utf-8").lower().replace("_", "-")
        self._typed = (
            self.fields_to_export is None
            and encoding in ("utf-8", "utf8")
            and set(self._kwargs) <= {"ensure_ascii"}
        )
        self._ensure_ascii = bool(self._kwargs.get("ensure_ascii", not self.encoding))

    def write_item(self, item: Any) -> None:
        if self._typed and isinstance(item, ApiModel):
            try:
                line = item.__pydantic_serializer__.to_json(
                    item, ensure_ascii=self._ensure_ascii
                )
            except PydanticSerializationError:  # a value only Scrapy can encode
                super().write_item(item)
            else:
                self.file.write(line + b"\n")
        else:
            super().write_item(item)
        self.file.flush()


# the formats whose files a resumed run appends to: lines (a kill cuts at most
# the last, removed before appending)
LINE_FORMATS = frozenset({"jsonlines", "jsonl", "jl", "csv", "details_csv"})
LINE_SUFFIXES = frozenset({".jsonl", ".jl", ".ndjson", ".csv"})


def is_line_file(path: Path, feed_format: str | None = None) -> bool:
    """A file of lines: by its feed's format if known, else by its name."""
    if feed_format is not None:
        return feed_format in LINE_FORMATS
    return path.suffix.lower() in LINE_SUFFIXES


def local_path(uri: str) -> Path | None:
    """The file a feed URI writes to, or None when it is not a local file."""
    if uri.startswith("file:"):
        return Path(file_uri_to_path(uri))
    if "://" in uri or uri.startswith("stdout:") or "%(" in uri:
        return None
    return Path(uri)


def read_items(path: Path) -> Iterator[dict[str, Any]]:
    """Every whole JSON object line of a JSON Lines file."""
    if not path.exists():
        return
    with path.open("rb") as lines:
        for line in lines:
            if not line.endswith(b"\n"):
                return  # cut by a kill: removed before the next run appends
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                yield item


class FeedMemory:
    """``{feed as configured: URI it was written to}`` in the job directory."""

    def __init__(self, jobdir: Path) -> None:
        self.path = jobdir / FEEDS_NAME

    def load(self) -> dict[str, str]:
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return (
            {str(k): str(v) for k, v in stored.items()}
            if isinstance(stored, dict)
            else {}
        )

    def save(self, feeds: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(feeds, indent=1), encoding="utf-8")
        temporary.replace(self.path)

    def resumed_feeds(
        self, feeds: dict[str, Any], run: int, batch: int = 0
    ) -> dict[str, Any]:
        """*feeds* (the ``FEEDS`` setting) for run *run* of the job: a local
        file of lines without batches points at the file of the first run,
        appended to, never overwritten; any other feed (S3, batches, a
        Parquet, JSON or XML file) cannot be appended to, so each run writes
        its own: a name with no ``%(time)s`` or ``%(batch_time)s`` gets
        ``-run<N>`` before its extension, so it does not replace what an
        earlier run stored."""
        stored = self.load()
        resumed = {}
        for uri, options in feeds.items():
            name = str(uri)
            local = name.startswith("file:") or not ("://" in name or ":" in name[:7])
            lines = local and is_line_file(Path(name), options.get("format"))
            if lines and not options.get("batch_item_count", batch):
                resumed[stored.get(name, name)] = {**dict(options), "overwrite": False}
            else:
                resumed[run_uri(name, run)] = dict(options)
        return resumed


_PER_RUN = ("%(time)s", "%(batch_time)s")


def run_uri(uri: str, run: int) -> str:
    """*uri* with ``-run<N>`` before its extension, unless it names the time."""
    if run < 2 or any(part in uri for part in _PER_RUN):
        return uri
    suffix = PurePosixPath(uri).suffix
    return f"{uri[: len(uri) - len(suffix)]}-run{run}{suffix}"
