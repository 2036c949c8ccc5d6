"""The token, added at the last moment: the download handler of every TMAPI call.

:class:`TokenDownloadHandler` adds the token (:mod:`tmapi_crawler.contract.credentials`)
to a private copy of each TMAPI request as it is sent, through the handler
the crawl would otherwise use for the scheme: the one you gave in
``DOWNLOAD_HANDLERS`` (the add-on puts this handler in its place and keeps
yours in ``TMAPI_DOWNLOAD_HANDLERS``, :func:`wrap_handlers`), else Scrapy's
(``DOWNLOAD_HANDLERS_BASE``). Everything else (the scheduler, fingerprints,
retries, disk and Redis queues, stats, feeds, the spider) only ever sees the
request without it.
Being the point where a call really goes out, the handler also counts calls
(``tmapi/calls``) and stamps when each left and how many were in flight
(``meta["tmapi_sent"]``, what the concurrency window learns from).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.exceptions import NotConfigured
from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings
from scrapy.utils.misc import build_from_crawler, load_object

from tmapi_crawler.contract.api import TOKEN_HEADER, TOKEN_QUERY_FIELD
from tmapi_crawler.contract.credentials import (
    MISSING_TOKEN,
    redact,
    token_from,
    token_problems,
)
from tmapi_crawler.contract.endpoints import endpoint_of
from tmapi_crawler.contract.stats import CALLS, CALLS_TO
from tmapi_crawler.meta import SENT, is_tmapi_request

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

TOKEN_HANDLER = f"{__name__}.TokenDownloadHandler"
ADDON = SETTINGS_PRIORITIES["addon"]


def _load(path: Any) -> Any:
    return load_object(path) if isinstance(path, str) else path


def _is_token_handler(path: Any) -> bool:
    try:
        cls = _load(path)
    except (ImportError, NameError, AttributeError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, TokenDownloadHandler)


def wrap_handlers(settings: BaseSettings, schemes: tuple[str, ...]) -> None:
    """This handler for each of *schemes*, wrapping the one ``DOWNLOAD_HANDLERS``
    gave (kept in ``TMAPI_DOWNLOAD_HANDLERS``, which wins if it names one):
    whichever handler sends a call, the token handler signs it first. A
    scheme switched off (None) stays off; a subclass of this handler stays."""
    if isinstance(settings["DOWNLOAD_HANDLERS"], str):  # -s NAME='{"http": ...}'
        given = settings.getdict("DOWNLOAD_HANDLERS")
        priority = settings.getpriority("DOWNLOAD_HANDLERS") or ADDON
        settings.set("DOWNLOAD_HANDLERS", BaseSettings(given, priority), priority)
    handlers = settings["DOWNLOAD_HANDLERS"]
    inner = settings.getdict("TMAPI_DOWNLOAD_HANDLERS")
    for scheme in schemes:
        if scheme in handlers and handlers[scheme] is None:
            continue
        chosen = handlers.get(scheme)
        if chosen is not None:
            if _is_token_handler(chosen):
                continue
            inner.setdefault(scheme, chosen)  # one that cannot load: preflight says
        # above the priority of the handler it replaces (-s DOWNLOAD_HANDLERS=...)
        priority = max(handlers.getpriority(scheme) or 0, ADDON)
        handlers.set(scheme, TOKEN_HANDLER, priority=priority)
    priority = max(settings.getpriority("TMAPI_DOWNLOAD_HANDLERS") or 0, ADDON)
    settings.set("TMAPI_DOWNLOAD_HANDLERS", inner, priority=priority)


def handler_problems(settings: BaseSettings) -> list[str]:
    """The token, and each handler it wraps: one that cannot be loaded would
    fail every call of its scheme."""
    found = token_problems(settings)
    for scheme, path in settings.getdict("TMAPI_DOWNLOAD_HANDLERS").items():
        try:
            _load(path)
        except (ImportError, NameError, AttributeError, ValueError) as error:
            found.append(
                f"TMAPI_DOWNLOAD_HANDLERS[{scheme!r}]={path!r}: cannot be loaded "
                f"({error}); give the import path of a download handler class"
            )
    return found


class TokenDownloadHandler(BaseDownloadHandler):
    """Sends TMAPI requests with the token, through the handler in use."""

    preflight = staticmethod(handler_problems)

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.token = token_from(crawler.settings)
        self.placement = crawler.settings.get("TMAPI_TOKEN_PLACEMENT")
        self._handlers: dict[str, Any] = {}
        self.in_flight = 0

    def _handler(self, scheme: str) -> Any:
        if scheme not in self._handlers:
            settings = self.crawler.settings
            path = settings.getdict("TMAPI_DOWNLOAD_HANDLERS").get(scheme)
            path = path or settings.getdict("DOWNLOAD_HANDLERS_BASE")[scheme]
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
            self.crawler.stats.inc_value(CALLS)
            with contextlib.suppress(ValueError):  # a path no endpoint has
                name = endpoint_of(request.url).name
                self.crawler.stats.inc_value(CALLS_TO + name)
        self.in_flight += 1
        # When it went out and how many calls were in flight: the
        # concurrency window learns the account's limit from this.
        request.meta[SENT] = (time.monotonic(), self.in_flight)
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
