"""The TMAPI simulator's HTTP server: the items endpoint and the category
tree (``/1688/category/info``) on loopback, with the documented auth, errors,
cap and latency, and a request log of every call.

The log is JSON Lines, one object per call, written when the answer is sent:
``t`` (arrival, epoch seconds), ``dt`` (seconds), ``path``, ``cat_id``,
``page``, ``params`` (the query without the token), ``token`` (``"query"``,
``"header"`` or null: where a token came, never its value), ``status``,
``code`` (the body code, or null), ``outcome`` (``ok``, ``fault:<kind>``,
``cap``, ``auth``, ``invalid``), ``items`` and ``in_flight`` (calls being
served on arrival, this one included).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from tmapi_crawler.contract.api import (
    CATEGORY_INFO_PATH,
    FILTER_FLAGS,
    ITEMS_PATH,
    LANGUAGES,
    SORTS,
    TOKEN_HEADER,
    TOKEN_QUERY_FIELD,
)
from tmapi_crawler.contract.details import DETAIL_PATH
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.simulator.faults import (
    MESSAGES,
    Fault,
    FaultPlan,
    Quirk,
    apply_quirks,
    encode_quirky,
    quirks_for,
)
from tmapi_crawler.simulator.tree import CategoryTree
from tmapi_crawler.simulator.variants import apply_detail_quirks, detail_data

# When the 503 over the concurrency cap comes back (API.md leaves it open):
# on arrival, or once the call's latency has passed, its place held meanwhile.
CAP_ANSWERS = ("at-once", "after-latency")

# What a page_size above the largest served gets: a 422, that many items with
# page_size saying so, or that many items with page_size echoing the size asked.
PAGE_SIZE_OVER = ("refuse", "clamp", "clamp-echo")

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass
class SimulatorConfig:
    """Everything the simulator can be told (``tmapi-simulator -h`` lists it)."""

    seed: int = 0
    day: int = 0  # the catalog's day: each evolves the one before (catalog.evolve)
    sizes: dict[int, int] = field(default_factory=dict)
    dense: dict[int, tuple[int, int]] = field(default_factory=dict)  # fen, count
    tree: dict[int, tuple[int, ...]] = field(default_factory=dict)  # pinned children
    miscounts: dict[int, int] = field(default_factory=dict)  # total_count off by this
    latency: float = 0.0
    latency_jitter: float = 0.0
    max_concurrency: int = 0  # 0: no cap
    cap_answer: str = "at-once"  # one of CAP_ANSWERS
    tokens: frozenset[str] = frozenset()  # empty: any non-empty token is accepted
    result_cap: int = 2000
    max_page_size: int = 50
    page_size_over: str = "refuse"  # one of PAGE_SIZE_OVER: a size above the max
    price_end_inclusive: bool = True
    repeat_rate: float = 0.0  # share of pages that repeat an item of the page before
    timeout_delay: float = 70.0  # how long a "timeout" fault keeps the caller waiting
    faults: FaultPlan = field(default_factory=FaultPlan)
    quirks: list[Quirk] = field(default_factory=list)  # answers that bend the shape
    request_log: Path | None = None
    # item_id -> fields served instead of the catalog's (to serve invalid items)
    item_overrides: dict[int, dict[str, Any]] = field(default_factory=dict)


class Simulator:
    """The aiohttp application and its state: in-flight calls, faults, the log."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.catalog = Catalog(
            config.seed,
            config.sizes,
            price_end_inclusive=config.price_end_inclusive,
            dense=config.dense,
            day=config.day,
        )
        self.tree = CategoryTree(config.seed, config.tree)
        self.in_flight = 0
        self.rng = random.Random(config.seed)
        self.log_file: IO[str] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(ITEMS_PATH, self.items)
        app.router.add_get(CATEGORY_INFO_PATH, self.category_info)
        app.router.add_get(DETAIL_PATH, self.item_detail)
        app.router.add_get("/_simulator/health", self.health)
        app.router.add_post("/_simulator/faults", self.add_faults)
        app.router.add_delete("/_simulator/faults", self.clear_faults)
        app.on_startup.append(self._open_log)
        app.on_startup.append(self._build_catalogs)
        app.on_cleanup.append(self._close_log)
        return app

    async def _open_log(self, _: web.Application) -> None:
        if self.config.request_log:
            self.log_file = self.config.request_log.open("a", encoding="utf-8")

    async def _build_catalogs(self, _: web.Application) -> None:
        """Build the catalogs of the categories given a size before serving:
        built at their first call, they held the event loop for tens of ms,
        and calls already sent waited unseen (a real API does not stop taking
        calls while it answers one), which skews what clients learn."""
        for cat_id in {*self.config.sizes, *self.config.dense}:
            self.catalog.products(cat_id)

    async def _close_log(self, _: web.Application) -> None:
        if self.log_file:
            self.log_file.close()

    def _log(self, record: dict[str, Any]) -> None:
        if self.log_file:
            self.log_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.log_file.flush()

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True, "in_flight": self.in_flight})

    async def add_faults(self, request: web.Request) -> web.Response:
        specs = (await request.json()).get("faults", [])
        try:
            for spec in specs:
                self.config.faults.add(spec)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"added": len(specs)})

    async def clear_faults(self, _: web.Request) -> web.Response:
        self.config.faults.scripts.clear()
        self.config.faults.rates.clear()
        return web.json_response({"cleared": True})

    async def items(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self.page_data, "items")

    async def category_info(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self.info_data, "children")

    async def item_detail(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self.detail_data, "skus")

    async def _serve(
        self,
        request: web.Request,
        data_for: Callable[[dict[str, str]], dict[str, Any] | None],
        counted: str,
    ) -> web.StreamResponse:
        """One call of an endpoint: auth, faults, latency, the log, then data."""
        self.in_flight += 1
        params = {k: v for k, v in request.query.items() if k != TOKEN_QUERY_FIELD}
        record: dict[str, Any] = {
            "t": round(time.time(), 4),
            "path": request.path,
            "cat_id": _int_or_none(params.get("cat_id")),
            "page": _int_or_none(params.get("page", "1"))
            if request.path == ITEMS_PATH
            else None,
            "item_id": _int_or_none(params.get("item_id")),
            "params": params,
            "token": "query"
            if TOKEN_QUERY_FIELD in request.query
            else "header"
            if TOKEN_HEADER in request.headers
            else None,
            "in_flight": self.in_flight,
        }
        started = time.monotonic()
        record.update(outcome="dropped", status=None, code=None, items=0)
        try:
            answer = await self._answer(request, params, data_for, counted)
            record.update(
                outcome=answer.outcome,
                status=answer.response.status,
                code=answer.code,
                items=answer.items,
            )
            return answer.response
        finally:
            self.in_flight -= 1
            record["dt"] = round(time.monotonic() - started, 4)
            self._log(record)

    async def _answer(
        self,
        request: web.Request,
        params: dict[str, str],
        data_for: Callable[[dict[str, str]], dict[str, Any] | None],
        counted: str,
    ) -> Answer:
        config = self.config
        over_cap = bool(config.max_concurrency) and (
            self.in_flight > config.max_concurrency
        )
        if over_cap and config.cap_answer == "at-once":
            return _error_answer(Fault("503", "both"), "cap")
        if config.latency or config.latency_jitter:
            await asyncio.sleep(
                config.latency + self.rng.uniform(0, config.latency_jitter)
            )
        if over_cap:  # after-latency: the refusal took as long as a call
            return _error_answer(Fault("503", "both"), "cap")
        token = request.query.get(TOKEN_QUERY_FIELD) or request.headers.get(
            TOKEN_HEADER
        )
        if not token:
            return _json(401, {"code": 4011, "message": MESSAGES[401]}, "auth")
        if config.tokens and token not in config.tokens:
            return _json(401, {"code": 4012, "message": "invalid API key"}, "auth")
        cat_id = _int_or_none(params.get("cat_id"))
        page = _int_or_none(params.get("page", "1")) if counted == "items" else None
        if counted == "skus":  # an item's details: faults for ITEM_ID:0
            cat_id, page = _int_or_none(params.get("item_id")), 0
        fault = config.faults.next_fault(cat_id, page)
        if fault and fault.code is None:
            response = await self._breakage(request, fault, params, data_for)
            return Answer(response, f"fault:{fault.kind}")
        if fault:
            return _error_answer(fault, f"fault:{fault.kind}")
        try:
            data = data_for(params)
        except ValueError as exc:
            payload = {"code": 422, "msg": f"{MESSAGES[422]}: {exc}", "data": None}
            return _json(200, payload, "invalid")
        payload = {"code": 200, "msg": "success", "data": data}
        kinds = quirks_for(config.quirks, cat_id, page) if counted != "children" else []
        if kinds and data is not None:
            if counted == "skus":  # an item's details
                apply_detail_quirks(data, kinds)
            else:
                apply_quirks(data, kinds)
            body = encode_quirky(payload)
            response = web.Response(
                status=200, body=body, content_type="application/json"
            )
            return Answer(response, "ok", 200, len(data[counted]))
        return _json(200, payload, "ok", items=len(data[counted]) if data else 0)

    def info_data(self, params: dict[str, str]) -> dict[str, Any]:
        """The ``data`` of ``/1688/category/info``; ValueError if the id is bad."""
        if "cat_id" not in params:
            return self.tree.info(None)
        cat_id = _int_or_none(params["cat_id"])
        if not cat_id or cat_id < 1:
            raise ValueError("cat_id must be a positive integer")
        return self.tree.info(cat_id)

    def detail_data(self, params: dict[str, str]) -> dict[str, Any] | None:
        """The ``data`` of one item's details: None (null) for an item gone
        today; ValueError for an unknown item or a bad language."""
        item_id = _int_or_none(params.get("item_id"))
        language = params.get("language", "zh")  # the endpoint's default
        if language not in LANGUAGES:
            raise ValueError("unknown language")
        found = self.catalog.find(item_id) if item_id else None
        if found is None:
            raise ValueError(f"item_id {params.get('item_id')!r} not found")
        cat_id, product = found
        if product is None:
            return None
        return detail_data(self.config.seed, cat_id, product, self.config.day, language)

    def page_data(self, params: dict[str, str]) -> dict[str, Any]:
        """The ``data`` of one page for these query parameters; ValueError if bad."""
        cat_id = _int_or_none(params.get("cat_id"))
        page = _int_or_none(params.get("page", "1"))
        page_size = _int_or_none(params.get("page_size", "20"))
        language = params.get("language", "en")
        sort = params.get("sort", "default")
        if not cat_id or cat_id < 1:
            raise ValueError("cat_id must be a positive integer")
        if not page or page < 1:
            raise ValueError("page must be a positive integer")
        asked_size = page_size
        largest = self.config.max_page_size
        if page_size and page_size > largest and self.config.page_size_over != "refuse":
            page_size = largest
        if not page_size or not 1 <= page_size <= largest:
            raise ValueError(f"page_size must be 1..{largest}")
        if language not in LANGUAGES or sort not in SORTS:
            raise ValueError("unknown language or sort")
        price_start, price_end = (
            _price(params, "price_start"),
            _price(params, "price_end"),
        )
        flags = frozenset(
            f for f in FILTER_FLAGS if params.get(f, "").lower() == "true"
        )
        selection = self.catalog.select(cat_id, sort, price_start, price_end, flags)
        reported = max(0, len(selection) + self.config.miscounts.get(cat_id, 0))
        visible = min(len(selection), self.config.result_cap)
        start = (page - 1) * page_size
        chosen = list(selection.products[start : min(start + page_size, visible)])
        if chosen and self._repeats(cat_id, page):
            chosen.append(selection.products[max(0, start - 1)])
        filters = {
            k: v
            for k, v in params.items()
            if k in ("price_start", "price_end", *FILTER_FLAGS)
        }
        return {
            "page": page,
            "page_size": (
                asked_size if self.config.page_size_over == "clamp-echo" else page_size
            ),
            "total_count": min(reported, self.config.result_cap),
            "keyword": "",
            "sort": sort,
            "cat_id": cat_id,
            "filters": filters,
            "items": [
                {
                    **product.render(language),
                    **self.config.item_overrides.get(product.item_id, {}),
                }
                for product in chosen
            ],
            "has_next_page": start + page_size < visible,
        }

    def _repeats(self, cat_id: int, page: int) -> bool:
        if not self.config.repeat_rate:
            return False
        draw = random.Random(f"{self.config.seed}:repeat:{cat_id}:{page}").random()
        return draw < self.config.repeat_rate

    async def _breakage(
        self,
        request: web.Request,
        fault: Fault,
        params: dict[str, str],
        data_for: Callable[[dict[str, str]], dict[str, Any] | None],
    ) -> web.StreamResponse:
        if fault.kind == "html502":
            return web.Response(status=502, body=HTML_502, content_type="text/html")
        if fault.kind == "empty":
            return web.Response(status=200, body=b"", content_type="application/json")
        if fault.kind == "garbage":
            return web.Response(status=200, body=bytes(range(128, 256)) * 4)
        if fault.kind == "timeout":
            await asyncio.sleep(self.config.timeout_delay)
        body = json.dumps({"code": 200, "msg": "success", "data": data_for(params)})
        full = body.encode()
        if fault.kind == "truncated":
            return web.Response(
                status=200, body=full[: len(full) // 2], content_type="application/json"
            )
        if fault.kind in ("reset", "dataloss"):
            response = web.StreamResponse(status=200)
            response.content_type = "application/json"
            response.content_length = len(full)
            await response.prepare(request)
            if fault.kind == "dataloss":
                await response.write(full[: len(full) // 2])
            assert request.transport is not None
            request.transport.abort()
            return response
        return web.Response(status=200, body=full, content_type="application/json")


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _price(params: dict[str, str], name: str) -> Decimal | None:
    if name not in params:
        return None
    try:
        price = Decimal(params[name])
    except InvalidOperation:
        raise ValueError(f"{name} must be a number") from None
    if not price.is_finite() or price < 0:
        raise ValueError(f"{name} must be a number, 0 or more")
    return price


@dataclass(frozen=True, slots=True)
class Answer:
    """A response and what the request log says of it."""

    response: web.StreamResponse
    outcome: str
    code: int | None = None
    items: int = 0


def _json(status: int, payload: dict[str, Any], outcome: str, items: int = 0) -> Answer:
    body = json.dumps(payload, ensure_ascii=False).encode()
    response = web.Response(status=status, body=body, content_type="application/json")
    return Answer(response, outcome, payload.get("code"), items)


def _error_answer(fault: Fault, outcome: str) -> Answer:
    """An API error code in the fault's style: HTTP status, body code, or both."""
    code = fault.code
    assert code is not None
    if fault.style == "status":
        return Answer(web.Response(status=code, text=MESSAGES[code]), outcome)
    payload = {"code": code, "msg": MESSAGES[code], "data": None}
    return _json(code if fault.style == "both" else 200, payload, outcome)
