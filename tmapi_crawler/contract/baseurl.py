"""Where the calls go: the rules of ``TMAPI_BASE_URL``, and where the token
rides on a call. Free of Scrapy.

The token travels in the query string (:data:`TOKEN_QUERY_FIELD`, the
documented default) or in a header (:data:`TOKEN_HEADER`); only the download
handler adds it. :func:`base_url_problems` refuses a base URL that is not
http(s), and plain http:// beyond loopback (:func:`is_loopback`), which would
carry the token across the network in clear. Part of the items endpoint's
contract (:mod:`tmapi_crawler.contract.api`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

TOKEN_QUERY_FIELD = "apiToken"
TOKEN_HEADER = "apikey"


def is_loopback(host: str) -> bool:
    """Whether *host* names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url_problems(base_url: str, *, allow_plain_http: bool) -> list[str]:
    """Why calls cannot go to *base_url* (``TMAPI_BASE_URL``): not an http(s)
    URL, or plain http:// to a host beyond loopback, which would carry the
    token (in the query string) across the network in clear."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"TMAPI_BASE_URL={base_url!r}: must be an http:// or https:// URL"]
    if parts.scheme == "https" or allow_plain_http or is_loopback(parts.hostname):
        return []
    return [
        f"TMAPI_BASE_URL={base_url!r}: plain http:// sends the token in "
        "clear (it is in the query string); use https://, or set "
        "TMAPI_ALLOW_PLAIN_HTTP=true to allow it (http:// to loopback, "
        "127.0.0.0/8, ::1 or localhost, is always allowed)"
    ]
