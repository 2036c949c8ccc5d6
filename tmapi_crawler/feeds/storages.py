"""Feed storages: S3 that keeps the file when the upload fails.

Registered for ``s3://`` in ``FEED_STORAGES``; everything else about S3
feeds (``AWS_*`` settings, ``AWS_ENDPOINT_URL``, ACLs) is Scrapy's own.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from scrapy.extensions.feedexport import S3FeedStorage

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class _KeptOpen:
    """A file whose ``close()`` does nothing, so it outlives a failed upload."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class RescuingS3FeedStorage(S3FeedStorage):
    """Scrapy's S3 feed storage that keeps the file when the upload fails.

    The items were paid for: instead of deleting the temporary file, it is
    copied to ``TMAPI_FEED_RESCUE_DIR/<bucket>/<key>`` and the log says where;
    the failure still counts (``feedexport/failed_count/...``, exit code 5).
    """

    rescue_dir: Path  # TMAPI_FEED_RESCUE_DIR (empty: the working directory)

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
        return storage

    def _store_in_thread(self, file: IO[bytes]) -> None:
        try:
            super()._store_in_thread(_KeptOpen(file))  # type: ignore[arg-type]
        except Exception:
            self._rescue(file)
            raise
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
