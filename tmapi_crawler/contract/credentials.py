"""The TMAPI token and the other secrets a user passes as settings. Free of Scrapy.

The token comes from the ``TMAPI_TOKEN`` setting or environment variable; only
the download handler (:mod:`tmapi_crawler.downloadhandlers`) ever adds it to a
request, as ``apiToken=`` in the query string (the documented default) or as
an ``apikey`` header (``TMAPI_TOKEN_PLACEMENT = "header"``, newer docs).
:func:`secrets_from` lists every secret no log line may show (the token, the
AWS keys, the password in ``REDIS_URL``), for the redaction extension
(:mod:`tmapi_crawler.extensions.redaction`). *settings* is anything with
``get`` (Scrapy's settings, a dict).
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
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
    placement = settings.get("TMAPI_TOKEN_PLACEMENT")
    if placement not in PLACEMENTS:
        problems.append(
            f"TMAPI_TOKEN_PLACEMENT={placement!r}: must be "
            f"one of {', '.join(PLACEMENTS)}"
        )
    return problems


def store_uri(settings: BaseSettings) -> str:
    """The catalog store's URI, from the TMAPI_STORE setting or else the
    environment ("" when there is none); it may hold a password."""
    return settings.get("TMAPI_STORE") or os.environ.get("TMAPI_STORE") or ""


def redis_url(settings: BaseSettings) -> str | None:
    """``REDIS_URL`` from the settings, else the environment (None: no Redis);
    it may hold a password."""
    return settings.get("REDIS_URL") or os.environ.get("REDIS_URL") or None


def secrets_from(settings: BaseSettings) -> tuple[str, ...]:
    """Every secret no log line may show, longest first: the token, the AWS
    secrets of :data:`SECRET_SETTINGS`, the password in ``REDIS_URL`` and in
    ``TMAPI_STORE`` (the setting or the environment variable). One
    shorter than :data:`MIN_REDACTED_LENGTH` is left out: masking it would
    mask ordinary words."""
    found = [token_from(settings), *(settings.get(name) for name in SECRET_SETTINGS)]
    for url in (redis_url(settings), store_uri(settings)):
        if url:
            found.append(urlsplit(str(url)).password)
    kept = {s for s in found if isinstance(s, str) and len(s) >= MIN_REDACTED_LENGTH}
    return tuple(sorted(kept, key=len, reverse=True))


def redact(value: Any, token: str | None) -> Any:
    """*value* with the token masked, if it is text holding a real token."""
    if token and len(token) >= MIN_REDACTED_LENGTH and isinstance(value, str):
        return value.replace(token, MASK)
    return value


def token_key(token: str) -> str:
    """A stable name for the account behind *token*, safe to store anywhere
    (a state file, Redis): a SHA-256 digest of it, never the token."""
    digest = hashlib.sha256(b"tmapi-crawler account:" + token.encode()).hexdigest()
    return digest[:32]
