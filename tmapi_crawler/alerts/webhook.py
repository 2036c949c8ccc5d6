"""A webhook: one JSON POST, retried with backoff. Free of Scrapy.

A webhook URL is a secret (Slack's carries its key in the path): only its
scheme and host are ever shown (:func:`shown`). The body is what
:func:`~tmapi_crawler.alerts.rules.message` made of the store's rows; the
API token is in no row of the store, and :func:`post` refuses a body that
holds it all the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 10.0  # seconds a POST may take


def shown(url: str) -> str:
    """``https://hooks.slack.com/...``: never the path, which may be a key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' if parts.port else ''}" + (
        str(parts.port) if parts.port else ""
    )


def post(
    url: str,
    body: dict[str, Any],
    *,
    attempts: int = 3,
    backoff: float = 1.0,
    secret: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """*body* POSTed as JSON to *url*, tried *attempts* times, waiting
    *backoff* seconds, then twice as long, between tries. None: delivered
    (a 2xx answer); else why not, the URL shown without its path."""
    import urllib.error  # ~20 ms: only when a message goes
    import urllib.request

    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    if secret and secret.encode("utf-8") in data:
        return "refused: the message holds the API token"
    why = ""
    for attempt in range(attempts):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                answer.read()
                return None
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            why = f"{type(reason).__name__}: {reason}"
    return f"{shown(url)}: {why} after {attempts} attempt(s)"
