"""One item never costs a feed: what a writer refuses, and a full disk.

:class:`GuardedExport` is mixed into every feed exporter the project wires
(``FEED_EXPORTERS``: JSON Lines, CSV, Parquet, JSON, XML, marshal, pickle):

- **An item the writer refuses** (a value its format cannot hold: any error
  but an ``OSError``) costs that item, never the file: what it had written of
  it is cut back out, it is counted in ``tmapi/feeds/refused``, logged with
  the reason and, with ``TMAPI_QUARANTINE_FEED``, written to the quarantine
  feed with the reason (the other feeds still hold it). Parquet finds such a
  value when it writes a row group: the row group is then written without it
  (:mod:`tmapi_crawler.feeds.parquet`).
- **A write that fails** (``OSError``: a full disk, ``ENOSPC``, a file size
  limit, ``EFBIG``, a quota) stops the feed: the file is cut back to the end
  of its last whole item (a JSON Lines file never ends with a cut line), the
  log says so once, and every later item of the run is counted in
  ``tmapi/feeds/not_written``. The feed alert
  (:mod:`tmapi_crawler.extensions.feedalert`) ends the run with one error
  line naming the feed and the disk (exit code 5); with ``JOBDIR`` the pages
  whose items it missed stay pending, so the same command completes the file.

Scrapy's count of a feed's items (``Stored jsonl feed (645 items)``, its
batches) is kept to what the file holds. Cutting needs a file with nothing
buffered: :class:`FeedFileStorage`, Scrapy's local file storage, opens each
file as a :class:`WholeWriteFile` (unbuffered: the exporters flush every item
anyway). A file of another storage (S3's spool, stdout) is not cut.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from itemadapter import ItemAdapter
from scrapy.exporters import (
    JsonItemExporter,
    MarshalItemExporter,
    PickleItemExporter,
    XmlItemExporter,
)
from scrapy.extensions.feedexport import FileFeedStorage

from tmapi_crawler.contract.items import InvalidItem
from tmapi_crawler.contract.stats import (
    FEED_ITEMS_NOT_WRITTEN,
    FEED_ITEMS_REFUSED,
    ITEMS_QUARANTINED,
)
from tmapi_crawler.internals import feed_slots

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from typing_extensions import Buffer


logger = logging.getLogger(__name__)


class WholeWriteFile(io.FileIO):
    """A feed file without a buffer, whose ``write`` writes all it is given
    or raises (``FileIO`` may write part of it when the disk fills)."""

    def write(self, data: Buffer, /) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            written = super().write(view[done:])
            if written is None:  # only a non-blocking file; a feed's never is
                raise BlockingIOError("the feed file would block")
            done += written
        return done

    def cut(self, size: int) -> None:
        """Back to *size* bytes, the end of its last whole item."""
        self.truncate(size)
        self.seek(size)


class FeedFileStorage(FileFeedStorage):
    """Scrapy's local file storage, opening a :class:`WholeWriteFile`."""

    def open(self, spider: Spider) -> IO[Any]:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return WholeWriteFile(path, self.write_mode)


def disk_of(path: str | os.PathLike[Any]) -> str:
    """The mount point of the file system holding *path*."""
    here = Path(os.path.abspath(path)).parent
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return str(here)


class GuardedExport:
    """Mixed into a feed exporter, before it (see the module doc). An exporter
    of the project writes in ``write_item`` and ``finish_writing``, the
    guarded ``export_item`` and ``finish_exporting`` call them."""

    crawler: Crawler | None = None
    written = 0  # items the file holds
    refused = 0  # items the writer refused (quarantined, with the reason)
    not_written = 0  # items a failed write kept out (a full disk)
    stopped: OSError | None = None  # the failed write that stopped the feed
    feed_file: Any = None  # the file it writes to
    _slot: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            self.feed_file = args[0]
        super().__init__(*args, **kwargs)

    @classmethod
    def from_crawler(
        cls, crawler: Crawler, file: Any, *args: Any, **kwargs: Any
    ) -> Self:
        exporter = cls(file, *args, **kwargs)
        exporter.crawler = crawler
        return exporter

    @property
    def feed_name(self) -> str:
        slot = self.slot()
        if slot is not None:
            return str(slot.uri)
        return str(getattr(self.feed_file, "name", "a feed"))

    def export_item(self, item: Any) -> None:
        if self.stopped is not None:
            self._not_written()
            return
        mark = _tell(self.feed_file)
        self.slot()  # found while Scrapy's feed exporter still lists it
        try:
            self.write_item(item)
        except OSError as error:
            self._cut(mark)
            self._stop(error)
            self._not_written()
        except Exception as error:  # a value this format cannot hold
            self._cut(mark)
            self.refuse(item, error)
        else:
            self.written += 1

    def finish_exporting(self) -> None:
        if self.stopped is not None:  # nothing more goes to this file
            return
        mark = _tell(self.feed_file)
        try:
            self.finish_writing()
        except OSError as error:
            self._cut(mark)
            self._stop(error)

    # what the exporter itself does; an exporter of the project overrides these
    def write_item(self, item: Any) -> None:
        super().export_item(item)  # type: ignore[misc]

    def finish_writing(self) -> None:
        super().finish_exporting()  # type: ignore[misc]

    def lost_on_stop(self) -> int:
        """Items counted as written that a failed write loses: none when each
        is whole in the file as it comes (JSON Lines, CSV)."""
        return 0

    def refuse(self, item: Any, error: Exception, *, late: bool = False) -> None:
        """*item* cannot be written to this feed: it costs this item alone.
        *late*: found after ``export_item`` returned (a Parquet row group), so
        it was counted as written."""
        self.refused += 1
        if late:
            self.written -= 1
        self._uncount()
        fields = _context(item)
        reason = (
            f"the feed {self.feed_name} cannot hold it: {type(error).__name__}: {error}"
        )
        logger.warning(
            "Item %.40r of category %s page %s not written to %s: %s",
            fields.get("item_id"),
            fields.get("cat_id"),
            fields.get("page"),
            self.feed_name,
            f"{type(error).__name__}: {error}"[:300],
        )
        stats = self.crawler.stats if self.crawler else None
        if stats is not None:
            stats.inc_value(FEED_ITEMS_REFUSED)
        if self._quarantine(fields, reason) and stats is not None:
            stats.inc_value(ITEMS_QUARANTINED)

    def _stop(self, error: OSError) -> None:
        if self.stopped is not None:
            return
        self.stopped = error
        if lost := self.lost_on_stop():
            self.written -= lost
            self.not_written += lost
            if (slot := self.slot()) is not None:
                slot.itemcount -= lost
            if self.crawler is not None and self.crawler.stats is not None:
                self.crawler.stats.inc_value(FEED_ITEMS_NOT_WRITTEN, lost)
        disk = f" on the disk {self.disk}" if self.disk else ""
        logger.warning(
            "Feed %s stopped%s: %s; %d items written, the rest of the run's "
            "items are not",
            self.feed_name,
            disk,
            error.strerror or error,
            self.written,
        )

    @property
    def disk(self) -> str | None:
        name = getattr(self.feed_file, "name", None)
        return disk_of(name) if isinstance(name, str | os.PathLike) else None

    def _not_written(self) -> None:
        self.not_written += 1
        self._uncount()
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(FEED_ITEMS_NOT_WRITTEN)

    def _cut(self, mark: int | None) -> None:
        file = self.feed_file
        if mark is not None and isinstance(file, WholeWriteFile) and not file.closed:
            with contextlib.suppress(OSError, ValueError):
                file.cut(mark)

    def slot(self) -> Any:
        """Scrapy's feed slot of this exporter, if Scrapy's feed exporter made it."""
        if self._slot is None and self.crawler is not None:
            found = [s for s in feed_slots(self.crawler) if s.exporter is self]
            self._slot = found[0] if found else None
        return self._slot

    def _uncount(self) -> None:
        """Scrapy counts every item handed to the exporter (the slot's
        ``itemcount``, one added after ``export_item`` returns); it is kept to
        what the file holds."""
        if (slot := self.slot()) is not None:
            slot.itemcount -= 1

    def _quarantine(self, fields: dict[str, Any], reason: str) -> bool:
        """Into the quarantine feed (``TMAPI_QUARANTINE_FEED``), if there is one."""
        slots = feed_slots(self.crawler) if self.crawler else []
        record = InvalidItem(
            item_id=fields.get("item_id"),
            cat_id=fields.get("cat_id"),
            language=fields.get("language"),
            page=fields.get("page"),
            position=fields.get("position"),
            errors=[{"field": "other", "kind": "feed", "message": reason}],
            item=fields,
        )
        for slot in slots:
            if slot.exporter is self or getattr(slot.file, "closed", False):
                continue  # a quarantine feed already stored cannot take it
            if slot.filter.accepts(record):
                slot.start_exporting()
                slot.exporter.export_item(record)
                slot.itemcount += 1
                return True
        return False


def _tell(file: Any) -> int | None:
    if not isinstance(file, WholeWriteFile):
        return None
    try:
        return file.tell()
    except (OSError, ValueError):
        return None


def _context(item: Any) -> dict[str, Any]:
    if item is None:
        return {}
    try:
        return dict(ItemAdapter(item).asdict())
    except Exception:  # not an item: a row of a row group is a dict
        return dict(item) if isinstance(item, dict) else {"item": repr(item)[:1000]}


# Scrapy's own exporters, guarded (the project's own are guarded where defined).
class GuardedJsonItemExporter(GuardedExport, JsonItemExporter):
    pass


class GuardedXmlItemExporter(GuardedExport, XmlItemExporter):
    pass


class GuardedMarshalItemExporter(GuardedExport, MarshalItemExporter):
    pass


class GuardedPickleItemExporter(GuardedExport, PickleItemExporter):
    pass
