"""The TMAPI "1688 Get Category Items V2" contract, free of Scrapy: its public face.

The contract of the items endpoint, and of the category tree's beside it, is
kept in four modules, each read on its own; this one names them together, so
that ``from tmapi_crawler.contract import api`` is the one import the crawler,
the simulator and a user's own script need (``api.CategoryQuery``,
``api.page_url``, ``api.parse_data``, ``api.Page``...):

- :mod:`.query`: the query a category page is fetched with
  (:class:`CategoryQuery`, its options :class:`QueryOptions`) and the URL of
  one page (:func:`page_url`);
- :mod:`.answer`: what an answer means (:func:`parse_data`, then
  :func:`page_from_data`): a :class:`Page` of items, or an :class:`ApiError`
  carrying the code and message whether the code came as the HTTP status or
  in the JSON body, and what each code means (:class:`ErrorKind`);
- :mod:`.baseurl`: where calls may go (``TMAPI_BASE_URL``) and where the
  token rides on a call;
- :mod:`.categoryinfo`: the category tree's endpoint, ``/1688/category/info``.

The facts they encode are in ``../shared/tmapi/API.md``; where they are
uncertain, every reading is accepted.
"""

from __future__ import annotations

from tmapi_crawler.contract.answer import (
    REPAIRED_TEXT,
    SUCCESS_CODES,
    ApiError,
    ErrorKind,
    Page,
    as_int,
    classify,
    int_of_digits,
    malformed,
    page_from_data,
    parse_data,
)
from tmapi_crawler.contract.baseurl import (
    TOKEN_HEADER,
    TOKEN_QUERY_FIELD,
    base_url_problems,
    is_loopback,
)
from tmapi_crawler.contract.categoryinfo import (
    CATEGORY_INFO_PATH,
    CategoryInfo,
    CategoryNode,
    category_info_from_data,
    category_info_url,
)
from tmapi_crawler.contract.query import (
    DEFAULT_PAGE_SIZE,
    FILTER_FLAGS,
    ITEMS_PATH,
    LANGUAGES,
    MAX_PAGE_SIZE,
    SORTS,
    CategoryQuery,
    Language,
    QueryOptions,
    Sort,
    page_url,
    parse_boolean,
)

__all__ = [
    "CATEGORY_INFO_PATH",
    "DEFAULT_PAGE_SIZE",
    "FILTER_FLAGS",
    "ITEMS_PATH",
    "LANGUAGES",
    "MAX_PAGE_SIZE",
    "REPAIRED_TEXT",
    "SORTS",
    "SUCCESS_CODES",
    "TOKEN_HEADER",
    "TOKEN_QUERY_FIELD",
    "ApiError",
    "CategoryInfo",
    "CategoryNode",
    "CategoryQuery",
    "ErrorKind",
    "Language",
    "Page",
    "QueryOptions",
    "Sort",
    "as_int",
    "base_url_problems",
    "category_info_from_data",
    "category_info_url",
    "classify",
    "int_of_digits",
    "is_loopback",
    "malformed",
    "page_from_data",
    "page_url",
    "parse_boolean",
    "parse_data",
]
