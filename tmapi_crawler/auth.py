"""The TMAPI token: found, added at the last moment, kept out of everything else.

The token comes from the ``TMAPI_TOKEN`` setting or environment variable.
:class:`TokenDownloadHandler` adds it to a private copy of each TMAPI request
as it is sent, as ``apiToken=`` in the query string (the documented default)
or as an ``apikey`` header (``TMAPI_TOKEN_PLACEMENT = "header"``, newer docs).
Everything else (the scheduler, fingerprints, retries, disk and Redis queues,
stats, feeds, the spider) only ever sees the request without it. Being the
point where a call really goes out, the handler also counts calls
(``tmapi/calls``) and stamps when each left and how many were in flight
(``meta["tmapi_sent"]``, what the concurrency window learns from). As a last
line of defence, :class:`SecretRedaction` masks it in any log line or
traceback that still quotes it (a third-party message about the URL sent),
and with it the other secrets a user may pass as settings (AWS keys, a Redis
password), which Scrapy's own "Overridden settings" line would print.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import build_from_crawler, load_object

from tmapi_crawler.api import TOKEN_HEADER, TOKEN_QUERY_FIELD
from tmapi_crawler.logformatter import would_emit

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

MASK = "***"
MIN_REDACTED_LENGTH = 8  # a shorter "token" (a test's "x") would mask ordinary words
PLACEMENTS = ("query", "header")
SECRET_SETTINGS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
MISSING_TOKEN = (
    "No TMAPI token: set it with `export TMAPI_TOKEN=<your token>` (or "
    "`-s TMAPI_TOKEN=...`, which shows it in the process list). Nothing was sent."
)


def token_from(settings: BaseSettings) -> str | None:
    """The token, from the TMAPI_TOKEN setting or else the environment."""
    token = settings.get("TMAPI_TOKEN") or os.environ.get("TMAPI_TOKEN") or ""
    return token.strip() or None


def token_problems(settings: BaseSettings) -> list[str]:
    """Why the token settings cannot work, if they cannot; checked before any call."""
    problems = [] if token_from(settings) else [MISSING_TOKEN]
    placement = settings.get("TMAPI_TOKEN_PLACEMENT", "query")
    if placement not in PLACEMENTS:
        problems.append(
            f"TMAPI_TOKEN_PLACEMENT={placement!r}: must be "
            f"one of {', '.join(PLACEMENTS)}"
        )
    return problems


def secrets_from(settings: BaseSettings) -> tuple[str, ...]:
    """Every secret no log line may show, longest first: the token, the AWS
    secrets of :data:`SECRET_SETTINGS`, the password in ``REDIS_URL``. One
    shorter than :data:`MIN_REDACTED_LENGTH` is left out: masking it would
    mask ordinary words."""
    found = [token_from(settings), *(settings.get(name) for name in SECRET_SETTINGS)]
    if redis_url := settings.get("REDIS_URL"):
        found.append(urlsplit(str(redis_url)).password)
    kept = {s for s in found if isinstance(s, str) and len(s) >= MIN_REDACTED_LENGTH}
    return tuple(sorted(kept, key=len, reverse=True))


def redact(value: Any, token: str | None) -> Any:
    """*value* with the token masked, if it is text holding a real token."""
    if token and len(token) >= MIN_REDACTED_LENGTH and isinstance(value, str):
        return value.replace(token, MASK)
    return value


def is_tmapi_request(request: Request) -> bool:
    return "tmapi" in request.meta


class TokenDownloadHandler(BaseDownloadHandler):
    """Sends TMAPI requests with the token, through the scheme's usual handler."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.token = token_from(crawler.settings)
        self.placement = crawler.settings.get("TMAPI_TOKEN_PLACEMENT", "query")
        self._handlers: dict[str, Any] = {}
        self.in_flight = 0

    def _handler(self, scheme: str) -> Any:
        if scheme not in self._handlers:
            path = self.crawler.settings.getdict("DOWNLOAD_HANDLERS_BASE")[scheme]
            self._handlers[scheme] = build_from_crawler(load_object(path), self.crawler)
        return self._handlers[scheme]

    def sign(self, request: Request) -> Request:
        """A private copy of *request* carrying the token."""
        if not self.token:
            raise NotConfigured(MISSING_TOKEN)
        if self.placement == "header":
            headers = request.headers.copy()
            headers[TOKEN_HEADER] = self.token
            return request.replace(headers=headers)
        separator = "&" if "?" in request.url else "?"
        query = urlencode({TOKEN_QUERY_FIELD: self.token})
        return request.replace(url=f"{request.url}{separator}{query}")

    async def download_request(self, request: Request) -> Response:
        handler = self._handler(request.url.partition(":")[0])
        if not is_tmapi_request(request):
            return await handler.download_request(request)
        signed = self.sign(request)
        if self.crawler.stats:
            self.crawler.stats.inc_value("tmapi/calls")
        self.in_flight += 1
        # When it went out and how many calls were in flight: the
        # concurrency window learns the account's limit from this.
        request.meta["tmapi_sent"] = (time.monotonic(), self.in_flight)
        try:
            response = await handler.download_request(signed)
        except Exception as exc:
            exc.args = tuple(redact(arg, self.token) for arg in exc.args)
            raise
        finally:
            self.in_flight -= 1
        return response.replace(url=request.url)

    async def close(self) -> None:
        for handler in self._handlers.values():
            await handler.close()


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
