"""Command line of the TMAPI simulator; prints its URL once it listens."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tmapi_crawler.simulator.faults import QUIRKS, STYLES, FaultPlan, Quirk
from tmapi_crawler.simulator.server import (
    CAP_ANSWERS,
    PAGE_SIZE_OVER,
    Simulator,
    SimulatorConfig,
)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _pairs(values: list[str], option: str) -> dict[int, int]:
    pairs = {}
    for value in values:
        key, sep, number = value.partition("=")
        if not sep:
            raise SystemExit(f"{option} {value!r}: expected CAT_ID=NUMBER")
        pairs[int(key)] = int(number)
    return pairs


def _dense(values: list[str]) -> dict[int, tuple[int, int]]:
    dense = {}
    for value in values:
        cat, sep, rest = value.partition("=")
        price, colon, count = rest.partition(":")
        try:
            dense[int(cat)] = (round(float(price) * 100), int(count))
        except ValueError:
            sep = colon = ""
        if not sep or not colon:
            raise SystemExit(f"--dense-price {value!r}: expected CAT=PRICE:COUNT")
    return dense


def _tree(values: list[str]) -> dict[int, tuple[int, ...]]:
    tree = {}
    for value in values:
        parent, sep, children = value.partition("=")
        try:
            tree[int(parent)] = tuple(int(c) for c in children.split(",") if c.strip())
        except ValueError:
            sep = ""
        if not sep:
            raise SystemExit(f"--tree {value!r}: expected PARENT=CHILD,CHILD...")
    return tree


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tmapi-simulator", description=__doc__.splitlines()[0]
    )
    p.add_argument("--host", default="127.0.0.1", choices=LOOPBACK)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=0, help="catalog seed")
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="CAT=N",
        help="pin a category's catalog size",
    )
    p.add_argument(
        "--dense-price",
        action="append",
        default=[],
        metavar="CAT=PRICE:COUNT",
        help="put COUNT of the category's products on one price, e.g. 77=9.9:2500",
    )
    p.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="PARENT=CHILD,...",
        help="pin a category's children in /1688/category/info (others: leaves)",
    )
    p.add_argument(
        "--miscount",
        action="append",
        default=[],
        metavar="CAT=DELTA",
        help="report total_count off by DELTA (has_next_page stays true)",
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    p.add_argument("--latency-jitter", type=float, default=0.0)
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=0,
        help="answer 503 above this many calls in flight (0: no cap)",
    )
    p.add_argument(
        "--cap-answer",
        choices=CAP_ANSWERS,
        default="at-once",
        help="a 503 over the cap comes at once, or after the call's latency",
    )
    p.add_argument(
        "--token",
        action="append",
        default=[],
        help="the only tokens accepted (default: any non-empty token)",
    )
    p.add_argument("--result-cap", type=int, default=2000)
    p.add_argument("--max-page-size", type=int, default=50)
    p.add_argument(
        "--page-size-over",
        choices=PAGE_SIZE_OVER,
        default="refuse",
        help="a page_size above --max-page-size: 422, served at the max "
        "(page_size says the max), or served at the max echoing the size asked",
    )
    p.add_argument(
        "--price-end", choices=("inclusive", "exclusive"), default="inclusive"
    )
    p.add_argument(
        "--repeat-rate",
        type=float,
        default=0.0,
        help="share of pages that repeat an item of the page before",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="CAT:PAGE=KINDS",
        help="scripted faults, e.g. 1031922:3=503,499@body,truncated",
    )
    p.add_argument(
        "--error-rate",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="inject a fault into this share of calls, e.g. 503=0.05",
    )
    p.add_argument(
        "--error-style",
        choices=STYLES,
        default="both",
        help="errors as the HTTP status, the body code, or both",
    )
    p.add_argument(
        "--override-item",
        action="append",
        default=[],
        metavar="ITEM_ID:FIELD=JSON",
        help='serve a field of one item as given, e.g. 123:price="-1" (bad items)',
    )
    p.add_argument(
        "--quirk",
        action="append",
        default=[],
        metavar="CAT:PAGE=KINDS",
        help="answers that succeed but bend the documented shape; kinds: "
        + ", ".join(QUIRKS),
    )
    p.add_argument("--timeout-delay", type=float, default=70.0)
    p.add_argument("--request-log", type=Path, help="JSON Lines log of every call")
    # --- days of the catalog (the catalog store's tests and demo) ---
    p.add_argument(
        "--day",
        type=int,
        default=0,
        help="the catalog's day: each evolves the one before (prices change, "
        "listings go, come back, appear); 0 is the catalog as seeded",
    )
    return p


def _overrides(values: list[str]) -> dict[int, dict[str, Any]]:
    overrides: dict[int, dict[str, Any]] = {}
    for value in values:
        item_id, _, assignment = value.partition(":")
        name, sep, text = assignment.partition("=")
        try:
            overrides.setdefault(int(item_id), {})[name] = json.loads(text)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise SystemExit(f"--override-item {value!r}: expected ITEM_ID:FIELD=JSON")
    return overrides


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    faults = FaultPlan(style=args.error_style)
    try:
        for spec in args.fault:
            faults.add(spec)
        for spec in args.error_rate:
            faults.add_rate(spec)
        quirks = [Quirk.parse(spec) for spec in args.quirk]
    except ValueError as exc:
        raise SystemExit(f"tmapi-simulator: {exc}") from None
    return SimulatorConfig(
        seed=args.seed,
        sizes=_pairs(args.size, "--size"),
        dense=_dense(args.dense_price),
        tree=_tree(args.tree),
        miscounts=_pairs(args.miscount, "--miscount"),
        latency=args.latency,
        latency_jitter=args.latency_jitter,
        max_concurrency=args.max_concurrency,
        cap_answer=args.cap_answer,
        tokens=frozenset(args.token),
        result_cap=args.result_cap,
        max_page_size=args.max_page_size,
        page_size_over=args.page_size_over,
        price_end_inclusive=args.price_end == "inclusive",
        repeat_rate=args.repeat_rate,
        timeout_delay=args.timeout_delay,
        faults=faults,
        quirks=quirks,
        request_log=args.request_log,
        item_overrides=_overrides(args.override_item),
        day=_day(args.day),
    )


def _day(day: int) -> int:
    if day < 0:
        raise SystemExit(f"--day {day}: expected 0 or more")
    return day


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    runner = web.AppRunner(Simulator(config).app(), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"TMAPI simulator listening on http://{shown}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    config = config_from(args)
    try:
        asyncio.run(serve(config, args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
