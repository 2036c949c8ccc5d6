"""The TMAPI endpoints the crawler calls, each a contract: its path, how its
answer's ``data`` is read, and the stat that counts answers bent out of shape.

The error contract (``downloadermiddlewares/errors.py``) reads every answer
the same way (:func:`tmapi_crawler.contract.api.parse_data`: the envelope, the
error codes), then hands ``data`` to the endpoint's :attr:`Endpoint.parse`,
found by the path the call went to (:func:`endpoint_of`). The parsed answer
has a ``problems`` tuple (survivable departures from the documented shape:
logged once and counted, never a crash). Adding an endpoint is adding one
:class:`Endpoint` here; nothing on the call path changes. Free of Scrapy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from tmapi_crawler.contract import api
from tmapi_crawler.contract.stats import PAGES_WITH_PROBLEMS, TREE_WITH_PROBLEMS


class Answer(Protocol):
    """What an endpoint's parser returns: whatever it is, with its problems."""

    @property
    def problems(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    path: str  # after the base URL
    # (the answer's data, what was asked: the request's meta["tmapi"]) -> answer
    parse: Callable[[dict[str, Any], Mapping[str, Any]], Answer]
    problems_stat: str  # answers with problems, counted once each


def _page(data: dict[str, Any], asked: Mapping[str, Any]) -> api.Page:
    return api.page_from_data(data, asked["page"], asked["query"].get("page_size"))


def _category_info(data: dict[str, Any], asked: Mapping[str, Any]) -> api.CategoryInfo:
    return api.category_info_from_data(data)


ITEMS = Endpoint("items", api.ITEMS_PATH, _page, PAGES_WITH_PROBLEMS)
CATEGORY_INFO = Endpoint(
    "category_info", api.CATEGORY_INFO_PATH, _category_info, TREE_WITH_PROBLEMS
)
ENDPOINTS = (ITEMS, CATEGORY_INFO)


def endpoint_of(url: str) -> Endpoint:
    """The endpoint a call to *url* asks (the base URL may carry a path of its
    own: the endpoint's path ends it); ``ValueError`` for any other path."""
    path = urlsplit(url).path.rstrip("/")
    for endpoint in ENDPOINTS:
        if path.endswith(endpoint.path):
            return endpoint
    raise ValueError(f"no TMAPI endpoint at {path!r}")
