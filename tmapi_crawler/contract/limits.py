"""The learned limit of calls in flight, kept between runs. Free of Scrapy.

A run ends knowing how many calls in flight the account held
(:class:`tmapi_crawler.contract.concurrency.ConcurrencyWindow`'s proven
level); the next run with the same token starts there. Limits are kept per
account under :func:`tmapi_crawler.contract.credentials.token_key` (a digest
of the token, never the token) in a small JSON file::

    {"version": 1, "limits": {"<key>": {"limit": 4, "page_size": 50,
                                        "updated": "2026-...Z"}}}

by default ``$XDG_CACHE_HOME/tmapi-crawler/limits.json`` (``~/.cache`` when
unset), ``<JOBDIR>/tmapi-limits.json`` in a job directory, or the path given.
A file that cannot be read is treated as empty (and rewritten). Beside the
limit, the page size the API was seen to serve
(:mod:`tmapi_crawler.contract.pagesize`) is kept the same way (Redis: the hash
``tmapi:page_sizes``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FILE_NAME = "limits.json"
JOBDIR_FILE_NAME = "tmapi-limits.json"
REDIS_KEY = "tmapi:limits"  # a hash: account key -> limit (with REDIS_URL)
REDIS_PAGE_SIZE_KEY = "tmapi:page_sizes"  # a hash: account key -> page size served
VERSION = 1


def default_path(environ: Mapping[str, str], jobdir: str | None = None) -> Path:
    """Where the limits live without a path given: the job directory's file,
    or the user's cache directory (XDG_CACHE_HOME, else ~/.cache)."""
    if jobdir:
        return Path(jobdir) / JOBDIR_FILE_NAME
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tmapi-crawler" / FILE_NAME


def load(path: Path) -> dict[str, Any]:
    """Every account's entry in the file (none if it is missing or unreadable)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    limits = data.get("limits") if isinstance(data, dict) else None
    return limits if isinstance(limits, dict) else {}


def parse_limit(value: Any, field: str = "limit") -> int | None:
    """A stored limit or page size (an entry's *field*, or Redis's text), if
    it is one."""
    if isinstance(value, dict):
        value = value.get(field)
    try:
        limit = int(value)
    except (TypeError, ValueError):
        return None
    return limit if limit >= 1 else None


def read_limit(path: Path, key: str, field: str = "limit") -> int | None:
    return parse_limit(load(path).get(key), field)


def write_limit(
    path: Path,
    key: str,
    limit: int,
    now: datetime | None = None,
    field: str = "limit",
) -> None:
    """Keep *limit* (or the page size: *field*) for *key*, the rest of its
    entry and the other accounts' entries as they were; the file is replaced
    whole (a crash leaves the old one or the new one)."""
    limits = load(path)
    when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    entry = limits.get(key)
    limits[key] = {**(entry if isinstance(entry, dict) else {}), field: limit}
    limits[key]["updated"] = when
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": VERSION, "limits": limits}, indent=1, sort_keys=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
