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
