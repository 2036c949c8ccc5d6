"""TMAPI answers built by hand (``scrapy.http.TextResponse``), for the
components tested in-process: the API's error codes in each of the styles
the simulator serves, and a page."""

from __future__ import annotations

import json

from scrapy import Request
from scrapy.http import TextResponse

from tmapi_crawler.contract import api
from tmapi_crawler.simulator.catalog import SAMPLE_RESPONSE
from tmapi_crawler.simulator.faults import MESSAGES


def answer(request: Request, code: int, style: str = "both") -> TextResponse:
    """TMAPI's answer *code* in one style: the HTTP status (with the message
    as plain text), the JSON body's code with HTTP 200, or both."""
    message = MESSAGES.get(code, f"error {code}")
    if style == "status":
        return TextResponse(
            request.url, status=code, body=message.encode(), request=request
        )
    body = {"code": code, "msg": message, "data": None}
    status = code if style == "both" else 200
    return raw_answer(request, json.dumps(body).encode(), status)


def raw_answer(request: Request, body: bytes, status: int = 200) -> TextResponse:
    headers = {"Content-Type": "application/json"}
    return TextResponse(
        request.url, status=status, body=body, headers=headers, request=request
    )


def a_page(request: Request) -> TextResponse:
    """The documentation's sample page (three items)."""
    return raw_answer(request, SAMPLE_RESPONSE.read_bytes())


def another(request: Request, number: int) -> Request:
    """Another call of the same category."""
    return request.replace(url=f"{request.url}&another={number}")


def parse_page(
    body: bytes,
    http_status: int = 200,
    *,
    requested_page: int | None = None,
    requested_page_size: int | None = None,
) -> api.Page:
    """One answer of the items endpoint as a page, as the error contract reads
    it (``parse_data``, then ``page_from_data``); ``ApiError`` if none."""
    data = api.parse_data(body, http_status)
    return api.page_from_data(data, requested_page, requested_page_size)


def parse_category_info(body: bytes, http_status: int = 200) -> api.CategoryInfo:
    """One answer of the category info endpoint, as the spider reads it."""
    return api.category_info_from_data(api.parse_data(body, http_status))
