"""Every exception the crawler's Scrapy components raise, in one place.

The requests the error contract turns away (:class:`PageFailed`,
:class:`PastLastPage`, :class:`CrawlStopped`) are Scrapy's
``IgnoreRequest``; the items the pipelines drop (:class:`DuplicateItem`,
:class:`InvalidItemDropped`, :class:`AlreadyDelivered`) are its ``DropItem``,
told apart by class, never by their text. The API contract's own errors
(``ApiError``, ``ArgumentError``, ``SettingError``) live beside it in
:mod:`tmapi_crawler.contract`, free of Scrapy.
"""

from __future__ import annotations

from scrapy.exceptions import DropItem, IgnoreRequest


class CrawlRefused(ValueError):
    """The crawl cannot start: bad arguments or settings. Nothing was sent."""


class PageFailed(IgnoreRequest):
    """A page that failed for good; its message says why, ``code`` the API's
    error code when an answer refused it (422: the parameters)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PastLastPage(IgnoreRequest):
    """A page past a page that said it was the last: not a failure."""


class CrawlStopped(IgnoreRequest):
    """Not sent: the crawl was stopped (bad token, no balance, budget)."""


class QuietDrop(DropItem):
    """A drop already logged (or not worth a line) by whoever raised it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, log_level="DEBUG")


class DuplicateItem(QuietDrop):
    """An item whose ``item_id`` was seen before (``TMAPI_DEDUPE_*``)."""


class InvalidItemDropped(QuietDrop):
    """An item that failed validation (logged with its category and page)."""


class AlreadyDelivered(DuplicateItem):
    """An item of a replayed page that the feed already holds."""
