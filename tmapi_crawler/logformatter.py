"""Scrapy's log lines, minus the records no log handler would take.

Scrapy logs every page crawled and every item scraped or dropped at DEBUG.
With ``LOG_LEVEL=INFO`` no handler writes them, yet Python's logging still
builds a record for each (Scrapy's root logger lets DEBUG through and its
handler filters): about 5% of a zero-latency crawl's CPU (``BENCHMARKS.md``,
benchmark 3). :class:`QuietLogFormatter` (the ``LOG_FORMATTER``) returns None
for such a line, which Scrapy documents as "do not log"; a handler that would
take it (``LOG_LEVEL=DEBUG``, your own handler) gets every line as before.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.logformatter import LogFormatter

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response
    from scrapy.logformatter import LogFormatterResult
    from twisted.python.failure import Failure

# The loggers Scrapy writes these lines with.
ENGINE, SCRAPER = "scrapy.core.engine", "scrapy.core.scraper"


def would_emit(name: str, level: int) -> bool:
    """Whether some handler would take a record of *level* from logger *name*,
    as ``Logger.callHandlers`` decides. Unsure: True."""
    found = (
        logging.root if name == "root" else logging.Logger.manager.loggerDict.get(name)
    )
    if not isinstance(found, logging.Logger):
        return True
    if not found.isEnabledFor(level):
        return False
    logger: logging.Logger | None = found
    has_handlers = False
    while logger is not None:
        for handler in logger.handlers:
            has_handlers = True
            if level >= handler.level:
                return True
        logger = logger.parent if logger.propagate else None
    return not has_handlers  # no handler at all: logging's last resort prints it


def _unless_silent(name: str, line: LogFormatterResult) -> LogFormatterResult | None:
    return line if would_emit(name, line["level"]) else None


class QuietLogFormatter(LogFormatter):
    def crawled(
        self, request: Request, response: Response, spider: Spider
    ) -> LogFormatterResult:
        line = super().crawled(request, response, spider)
        return _unless_silent(ENGINE, line)  # type: ignore[return-value]

    def scraped(
        self, item: Any, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        line = super().scraped(item, response, spider)
        return _unless_silent(SCRAPER, line)  # type: ignore[return-value]

    def dropped(
        self,
        item: Any,
        exception: BaseException,
        response: Response | Failure | None,
        spider: Spider,
    ) -> LogFormatterResult:
        line = super().dropped(item, exception, response, spider)
        return _unless_silent(SCRAPER, line)  # type: ignore[return-value]
