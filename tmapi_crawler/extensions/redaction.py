"""A last line of defence: the token and the other secrets masked in every log line.

:class:`SecretRedaction` masks the token in any log line or traceback that
still quotes it (a third-party message about the URL sent), and with it the
other secrets a user may pass as settings (AWS keys, a Redis password), which
Scrapy's own "Overridden settings" line would print
(:func:`~tmapi_crawler.contract.credentials.secrets_from`).
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from tmapi_crawler.contract.credentials import MASK, secrets_from
from tmapi_crawler.logformatter import would_emit

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


def may_be_emitted(record: logging.LogRecord) -> bool:
    """Whether some handler would take *record*. Scrapy logs every item at
    DEBUG; with ``LOG_LEVEL=INFO`` no handler takes those records, and
    formatting each item only to look for the token cost ~7% of a crawl's CPU
    (bench/, benchmark 3)."""
    return would_emit(record.name, record.levelno)


class SecretRedaction:
    """Extension that masks the token and the other secrets in settings
    (:func:`secrets_from`) in every log record of the process."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        previous = logging.getLogRecordFactory()
        if getattr(previous, "redacts", None) == secrets:
            return

        def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            self._redact(record)
            return record

        make_record.redacts = secrets  # type: ignore[attr-defined]
        logging.setLogRecordFactory(make_record)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SecretRedaction:
        secrets = secrets_from(crawler.settings)
        if not secrets:
            raise NotConfigured("no token or other secret long enough to redact")
        return cls(secrets)

    def _masked(self, text: str) -> str | None:
        """*text* with every secret masked, or None if it holds none."""
        if not any(secret in text for secret in self.secrets):
            return None
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def _redact(self, record: logging.LogRecord) -> None:
        if not may_be_emitted(record):
            return
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: logging reports it
            return
        if (masked := self._masked(message)) is not None:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if (masked := self._masked(text)) is not None:
                record.exc_text = masked
