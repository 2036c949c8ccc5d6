"""The request meta the crawler reads and writes: one schema, one list of
per-attempt keys, one "not sent" flag.

``meta["tmapi"]`` marks a TMAPI call and says what it asks for: a page of a
category query (:class:`PageMeta`), a category's info (:class:`InfoMeta`) or
an item's details (:class:`DetailMeta`).
It is all any worker needs to handle the answer, so it travels with the
request through the scheduler, the job journal and the Redis queue. The other
``tmapi_*`` keys belong to one attempt (:data:`ATTEMPT_KEYS`: dropped from a
retry and from every request stored for later) or to the page across its
attempts (the retry counts, the backoff). ``docs/request-meta.md`` lists them
for users; a test holds it to this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy.utils.request import request_from_dict

if TYPE_CHECKING:
    from scrapy import Request, Spider

logger = logging.getLogger(__name__)

TMAPI = "tmapi"  # a TMAPI call: what it asks for (PageMeta, InfoMeta, DetailMeta)

# Set by the crawler for one attempt; meaningless to the next attempt or to
# another worker.
ANSWER = "tmapi_answer"  # the parsed answer (a contract.api.Page for a page)
SENT = "tmapi_sent"  # (monotonic time sent, calls in flight then)
PERMIT = "tmapi_permit"  # its place among the calls in flight (a concurrency.Call)
PROBE = "tmapi_probe"  # the one call that probes a balance hold (439)
NOT_SENT = "tmapi_not_sent"  # never sent: the crawl stopped (or its budget ran out)
ATTEMPT_KEYS = frozenset({ANSWER, SENT, PERMIT, PROBE, NOT_SENT})

# Kept across the attempts of one page.
RETRIES = "tmapi_retries"  # {reason: retries so far}
NOT_BEFORE = "tmapi_not_before"  # epoch seconds: the backoff's end
MAX_RETRIES = "tmapi_max_retries"  # {reason: limit}: overrides TMAPI_MAX_RETRIES
REDELIVERED = "tmapi_redelivered"  # taken back from a Redis worker that died


@dataclass(frozen=True, slots=True)
class PageMeta:
    """Page ``page`` of ``query`` (a ``CategoryQuery`` as JSON); ``last``: the
    last page planned when the request was made; ``band``: the price band
    (``contract.slicing.Band.to_meta``) with ``split=price``; ``details``:
    the kinds of listings its items get a detail call for, when a job chose
    them (None: the spider's, ``-a details`` or ``TMAPI_DETAILS``)."""

    query: dict[str, Any]
    page: int
    last: int
    band: dict[str, Any] | None = None
    max_pages: int | None = None
    details: tuple[str, ...] | None = None

    def to_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "query": self.query,
            "page": self.page,
            "last": self.last,
        }
        if self.band is not None:
            meta["band"] = self.band
        if self.max_pages is not None:
            meta["max_pages"] = self.max_pages
        if self.details is not None:
            meta["details"] = list(self.details)
        return meta

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> PageMeta:
        return cls(
            query=meta["query"],
            page=meta["page"],
            last=meta["last"],
            band=meta.get("band"),
            max_pages=meta.get("max_pages"),
            details=tuple(meta["details"]) if "details" in meta else None,
        )


@dataclass(frozen=True, slots=True)
class InfoMeta:
    """The info (children) of category ``info``; ``label`` for log lines."""

    info: int
    label: str

    def to_meta(self) -> dict[str, Any]:
        return {"info": self.info, "label": self.label}


@dataclass(frozen=True, slots=True)
class DetailMeta:
    """The details of item ``item_id`` in ``language``; ``label`` for log lines."""

    item_id: int
    language: str

    @property
    def label(self) -> str:
        return f"details of item {self.item_id} ({self.language})"

    def to_meta(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "language": self.language, "label": self.label}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> DetailMeta:
        return cls(item_id=meta["item_id"], language=meta["language"])


def is_tmapi_request(request: Request) -> bool:
    return TMAPI in request.meta


def page_meta(request: Request) -> PageMeta | None:
    """What page a request asks for, or None (not a page of the items endpoint)."""
    meta = request.meta.get(TMAPI)
    return PageMeta.from_meta(meta) if meta and "page" in meta else None


def without_attempt(meta: Mapping[str, Any]) -> dict[str, Any]:
    """*meta* without the keys of one attempt: what a retry or a stored
    request carries."""
    return {key: value for key, value in meta.items() if key not in ATTEMPT_KEYS}


def drop_attempt(meta: MutableMapping[str, Any]) -> None:
    for key in ATTEMPT_KEYS:
        meta.pop(key, None)


def jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    """A request's ``Request.to_dict()`` as JSON-able data, to keep for a later
    run or another worker (the job journal, the Redis queue; never pickle):
    bytes (headers, body) as latin-1 text, kept exactly; the meta without the
    keys of one attempt; a meta value that is not JSON left out, and said so."""
    kept = {}
    for key, value in without_attempt(data["meta"]).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            logger.warning("meta[%r] is not JSON: not kept with the request", key)
            continue
        kept[key] = value
    return {
        **data,
        "headers": {
            key.decode("latin-1"): [value.decode("latin-1") for value in values]
            for key, values in data["headers"].items()
        },
        "body": data["body"].decode("latin-1"),
        "meta": kept,
    }


def from_jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`jsonable` kept, as ``request_from_dict`` takes it."""
    return {
        **data,
        "headers": {
            key.encode("latin-1"): [value.encode("latin-1") for value in values]
            for key, values in data["headers"].items()
        },
        "body": data["body"].encode("latin-1"),
    }


def stored_request(request: Request, spider: Spider) -> dict[str, Any]:
    """*request* as JSON-able data (:func:`jsonable`)."""
    return jsonable(request.to_dict(spider=spider))


def request_from_stored(data: Mapping[str, Any], spider: Spider) -> Request:
    """The request :func:`stored_request` kept."""
    return request_from_dict(from_jsonable(data), spider=spider)
