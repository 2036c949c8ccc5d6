"""Feed storages: S3 that spools its items on local disk and keeps them when
an upload fails; the spool a killed run left, uploaded.

Registered for ``s3://`` in ``FEED_STORAGES``; everything else about S3
feeds (``AWS_*`` settings, ``AWS_ENDPOINT_URL``, ACLs) is Scrapy's own.

**The spool.** Scrapy writes an S3 feed to a temporary file that is deleted
when the process ends and uploaded only when the feed closes (at the end, or
when a batch of ``FEED_EXPORT_BATCH_ITEM_COUNT`` is full): a killed run loses
every item in it. With a spool directory (``JOBDIR/spool``, or
``TMAPI_SPOOL_DIR`` for a worker of a Redis crawl) the file is a named file
there instead, beside a small JSON file naming the object it is for; the job
journal settles a page once its items are in that file, and the upload removes
both. Each process spools into a directory of its own that it holds locked
(``flock``) for as long as it lives: a directory nobody holds is a dead
process's, and :func:`recover_spool` (run at the start and at the end of every
run) uploads each file in it as ``<name>.recovered<suffix>`` beside the
object it was for, then removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, ClassVar, Self

from scrapy.extensions.feedexport import S3FeedStorage

from tmapi_crawler.backends import RunBackends

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

SPOOL_NAME = "spool"  # under JOBDIR
LOCK_NAME = ".lock"
RECOVERED = ".recovered"


class _KeptOpen:
    """A file whose ``close()`` does nothing, so it outlives a failed upload."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def spool_root(settings: Any) -> Path | None:
    """Where feeds that upload spool their items (the run's backends say:
    :meth:`~tmapi_crawler.backends.RunBackends.spool_root`)."""
    return RunBackends.from_settings(settings).spool_root()


class ProcessSpool:
    """This process's spool directory, locked while the process lives."""

    _mine: ClassVar[dict[Path, ProcessSpool]] = {}

    def __init__(self, root: Path) -> None:
        self.root = root
        name = uuid.uuid4().hex[:12]
        hidden = root / f".{name}"  # locked before another process can see it
        hidden.mkdir(parents=True)
        self._lock = (hidden / LOCK_NAME).open("wb")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.directory = hidden.rename(root / name)
        self.files = 0

    @classmethod
    def of(cls, root: Path) -> ProcessSpool:
        if root not in cls._mine:
            cls._mine[root] = cls(root)
        return cls._mine[root]

    def new_file(self, uri: str) -> SpooledFile:
        self.files += 1
        path = self.directory / f"{self.files:05d}.part"
        path.with_suffix(".json").write_text(json.dumps({"uri": uri}), "utf-8")
        return SpooledFile(path, uri)

    def release(self) -> None:
        """Once the feeds are closed: the directory removed unless an upload
        failed (then it is kept, locked until the process ends)."""
        if not any(self.directory.glob("*.part")):
            shutil.rmtree(self.directory, ignore_errors=True)
            self._lock.close()


@dataclass
class SpooledFile:
    path: Path
    uri: str

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".json").unlink(missing_ok=True)


def dead_spools(root: Path) -> list[Path]:
    """The spool directories under *root* no living process holds."""
    if not root.is_dir():
        return []
    dead = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        if directory.name.startswith("."):  # being made, or not a spool
            continue
        mine = ProcessSpool._mine.get(root)
        if mine is not None and mine.directory == directory:
            continue
        try:
            with (directory / LOCK_NAME).open("ab") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                dead.append(directory)  # unlocked when the file closes
        except BlockingIOError:
            continue  # a live process's
        except OSError:
            continue
    return dead


def spooled_files(directory: Path) -> list[SpooledFile]:
    found = []
    for part in sorted(directory.glob("*.part")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            meta = json.loads(part.with_suffix(".json").read_text("utf-8"))
            found.append(SpooledFile(part, str(meta["uri"])))
    return found


def recovered_uri(uri: str) -> str:
    """``s3://b/items.jsonl`` -> ``s3://b/items.recovered.jsonl``."""
    suffix = PurePosixPath(uri).suffix
    return uri[: len(uri) - len(suffix)] + RECOVERED + suffix


class RescuingS3FeedStorage(S3FeedStorage):
    """Scrapy's S3 feed storage, spooled (see the module doc), that keeps the
    file when the upload fails.

    The items were paid for: a spooled file that fails to upload stays in the
    spool for the next run; without a spool, instead of deleting the
    temporary file, it is copied to ``TMAPI_FEED_RESCUE_DIR/<bucket>/<key>``
    and the log says where; the failure still counts
    (``feedexport/failed_count/...``, exit code 5).
    """

    rescue_dir: Path  # TMAPI_FEED_RESCUE_DIR (empty: the working directory)
    spool: Path | None  # the spool root; None: Scrapy's temporary file
    spooled: SpooledFile | None = None

    @classmethod
    def from_crawler(
        cls,
        crawler: Crawler,
        uri: str,
        *,
        feed_options: dict[str, Any] | None = None,
    ) -> Self:
        storage = super().from_crawler(crawler, uri, feed_options=feed_options)
        storage.rescue_dir = Path(crawler.settings.get("TMAPI_FEED_RESCUE_DIR") or ".")
        storage.spool = spool_root(crawler.settings)
        return storage

    @property
    def uri(self) -> str:
        """The object's URI, without any credentials the feed URI held."""
        return f"s3://{self.bucketname}/{self.keyname}"

    def open(self, spider: Spider) -> IO[bytes]:
        if self.spool is None:
            return super().open(spider)
        self.spooled = ProcessSpool.of(self.spool).new_file(self.uri)
        return self.spooled.path.open("w+b")

    # Scrapy's upload in a thread, overridden (tmapi_crawler.internals:
    # S3_STORE_IN_THREAD, tested in tests/test_internals.py)
    def _store_in_thread(self, file: IO[bytes]) -> None:
        try:
            super()._store_in_thread(_KeptOpen(file))  # type: ignore[arg-type]
        except Exception:
            if self.spooled is not None:
                logger.error(
                    "Upload to %s failed; its items stay spooled in %s and the "
                    "next run of the job uploads them",
                    self.uri,
                    self.spooled.path,
                )
            else:
                self._rescue(file)
            raise
        else:
            if self.spooled is not None:
                self.spooled.remove()
        finally:
            file.close()

    def _rescue(self, file: IO[bytes]) -> None:
        path = self.rescue_dir / self.bucketname / self.keyname
        while path.exists():
            path = path.with_name(path.name + ".1")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            file.seek(0)
            with path.open("wb") as copy:
                shutil.copyfileobj(file, copy)
        except OSError as error:
            logger.error("Could not keep the unstored feed in %s: %s", path, error)
            return
        logger.error(
            "Upload to s3://%s/%s failed; the feed is kept in %s",
            self.bucketname,
            self.keyname,
            path,
        )

    def already_stored(self, size: int) -> bool:
        """The object exists with this size: the upload of a killed run ended
        and only the spool's removal was cut short."""
        try:
            head = self.s3_client.head_object(Bucket=self.bucketname, Key=self.keyname)
        except Exception:  # absent, or cannot tell: upload again
            return False
        return int(head.get("ContentLength", -1)) == size


@dataclass
class Recovered:
    files: int = 0
    items: int = 0
    failed: int = 0


def count_lines(path: Path) -> int:
    with path.open("rb") as file:
        chunks = iter(lambda: file.read(1 << 16), b"")
        return sum(chunk.count(b"\n") for chunk in chunks)


def recover_spool(crawler: Crawler, root: Path) -> Recovered:
    """Upload every file a dead process left spooled under *root* (blocking:
    run it in a thread), each as its own ``.recovered`` object."""
    done = Recovered()
    for directory in dead_spools(root):
        for spooled in spooled_files(directory):
            size = spooled.path.stat().st_size
            if size == 0:
                spooled.remove()
                continue
            items = count_lines(spooled.path)
            original = RescuingS3FeedStorage.from_crawler(crawler, spooled.uri)
            if original.already_stored(size):
                logger.info("%s was stored before its run was killed", original.uri)
            else:
                target = RescuingS3FeedStorage.from_crawler(
                    crawler, recovered_uri(spooled.uri)
                )
                try:
                    with spooled.path.open("rb") as file:
                        target.s3_client.upload_fileobj(
                            Bucket=target.bucketname, Key=target.keyname, Fileobj=file
                        )
                except Exception as error:  # kept for the next run
                    done.failed += 1
                    logger.error(
                        "Could not upload %s (spooled by a run that was killed) "
                        "to %s: %s; kept for the next run",
                        spooled.path,
                        target.uri,
                        error,
                    )
                    continue
                done.files += 1
                done.items += items
                logger.warning(
                    "Uploaded %d items a killed run left spooled in %s to %s",
                    items,
                    spooled.path,
                    target.uri,
                )
            spooled.remove()
        if not any(directory.glob("*.part")):
            shutil.rmtree(directory, ignore_errors=True)
    return done
