"""Alert rules (``TMAPI_ALERTS``): which changes of a run each rule matches,
and the one message a rule sends for a run. Free of Scrapy.

A rule is a mapping::

    {"name": "drops", "when": "price_drop", "percent": 10,
     "webhook": "https://hooks.slack.com/services/...", "top": 5,
     "cat_id": [1031922], "seller": ["..."], "super_factory": true,
     "items": [610947572360]}

``when`` is what it looks for in the run's changes (``docs/store.md``):

- ``price_drop``: a price that fell by ``percent`` % or more;
- ``price_below``: a listing new, back or repriced in the run, now priced
  under ``price``, that was not under it before;
- ``new``, ``back``, ``gone``: listings new in the store, listed again,
  gone (a run that judged no category sends no ``gone`` alert: it cannot
  tell).

The filters narrow it: ``cat_id``, ``seller`` (the shop's company name),
``super_factory`` (true: super-factory shops only), ``items`` (the
listings you watch), ``language``. ``top`` (10) listings go in the message,
the largest drop first for ``price_drop``, the lowest price first for
``price_below``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from tmapi_crawler.store.changes import ListedChange

SETTING = "TMAPI_ALERTS"
KINDS = ("price_drop", "price_below", "new", "back", "gone")
FILTERS = ("cat_id", "seller", "super_factory", "items", "language")
KEYS = {"name", "when", "webhook", "percent", "price", "top", *FILTERS}
TOP = 10


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    webhook: str
    percent: Decimal | None = None
    price: Decimal | None = None
    top: int = TOP
    cat_id: frozenset[int] | None = None
    seller: frozenset[str] | None = None
    super_factory: bool | None = None
    items: frozenset[int] | None = None
    language: str | None = None


@dataclass(frozen=True)
class Match(ListedChange):
    """A change of the run a rule matched, with its listing's shop."""

    seller: str | None
    super_factory: bool | None

    def as_dict(self) -> dict[str, Any]:
        percent = self.percent
        return {
            "item_id": self.item_id,
            "language": self.language,
            "cat_id": self.cat_id,
            "title": self.title,
            "url": self.url,
            "change": self.change,
            "old_price": None if self.old_price is None else str(self.old_price),
            "new_price": None if self.new_price is None else str(self.new_price),
            "percent": None if percent is None else str(round(percent, 1)),
            "seller": self.seller,
        }


class RuleError(ValueError):
    pass


def parse(value: Any) -> list[Rule]:
    """The rules of a ``TMAPI_ALERTS`` value: a list of mappings, or its JSON
    text (``-s TMAPI_ALERTS='[...]'``); RuleError says what is wrong."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RuleError(f"{SETTING}: not JSON ({exc})") from None
    if not isinstance(value, list | tuple):
        raise RuleError(f"{SETTING}: expected a list of rules, got {value!r}")
    rules = [rule_of(n, raw) for n, raw in enumerate(value)]
    names = [rule.name for rule in rules]
    if len(set(names)) < len(names):
        raise RuleError(f"{SETTING}: two rules have the same name: {names}")
    return rules


def rule_of(n: int, raw: Any) -> Rule:
    where = f"{SETTING}[{n}]"
    if not isinstance(raw, Mapping):
        raise RuleError(f"{where}: expected a mapping, got {raw!r}")
    if unknown := sorted(set(raw) - KEYS):
        raise RuleError(f"{where}: unknown keys {unknown}; allowed: {sorted(KEYS)}")
    when = raw.get("when")
    if when not in KINDS:
        raise RuleError(f"{where}: 'when' must be one of {', '.join(KINDS)}")
    webhook = raw.get("webhook")
    if not isinstance(webhook, str) or urlsplit(webhook).scheme not in (
        "http",
        "https",
    ):
        raise RuleError(f"{where}: 'webhook' must be an http:// or https:// URL")
    percent = number(raw, "percent", where) if when == "price_drop" else None
    price = number(raw, "price", where) if when == "price_below" else None
    top = raw.get("top", TOP)
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise RuleError(f"{where}: 'top' must be a whole number above 0")
    super_factory = raw.get("super_factory")
    if super_factory is not None and not isinstance(super_factory, bool):
        raise RuleError(f"{where}: 'super_factory' must be true or false")
    return Rule(
        name=str(raw.get("name") or f"{when}-{n}"),
        when=str(when),
        webhook=webhook,
        percent=percent,
        price=price,
        top=top,
        cat_id=ids(raw, "cat_id", where),
        seller=texts(raw, "seller", where),
        super_factory=super_factory,
        items=ids(raw, "items", where),
        language=raw.get("language"),
    )


def number(raw: Mapping[str, Any], key: str, where: str) -> Decimal:
    try:
        found = Decimal(str(raw[key]))
    except (KeyError, InvalidOperation):
        raise RuleError(f"{where}: '{key}' must be a number above 0") from None
    if not found > 0:
        raise RuleError(f"{where}: '{key}' must be a number above 0")
    return found


def listed(raw: Mapping[str, Any], key: str) -> list[Any] | None:
    value = raw.get(key)
    if value is None:
        return None
    return list(value) if isinstance(value, list | tuple) else [value]


def ids(raw: Mapping[str, Any], key: str, where: str) -> frozenset[int] | None:
    values = listed(raw, key)
    if values is None:
        return None
    try:
        return frozenset(int(v) for v in values)
    except (TypeError, ValueError):
        raise RuleError(f"{where}: '{key}' must be ids (whole numbers)") from None


def texts(raw: Mapping[str, Any], key: str, where: str) -> frozenset[str] | None:
    values = listed(raw, key)
    return None if values is None else frozenset(map(str, values))


def problems(value: Any) -> list[str]:
    """What is wrong with a ``TMAPI_ALERTS`` value (nothing: an empty list)."""
    try:
        parse(value)
    except RuleError as exc:
        return [str(exc)]
    return []


def matches(rule: Rule, changes: Sequence[Match], judged: bool) -> list[Match]:
    """The changes of a run *rule* matches, in the order its message lists
    them; *judged*: the run said of some category which listings are gone."""
    if rule.when == "gone" and not judged:
        return []
    found = [c for c in changes if kept(rule, c) and wanted(rule, c)]
    if rule.when == "price_drop":
        return sorted(found, key=lambda c: (c.percent, c.item_id, c.language))
    if rule.when == "price_below":
        return sorted(found, key=lambda c: (c.new_price, c.item_id, c.language))
    return sorted(found, key=lambda c: (c.item_id, c.language))


def kept(rule: Rule, change: Match) -> bool:
    """The rule's filters."""
    return not (
        (rule.cat_id is not None and change.cat_id not in rule.cat_id)
        or (rule.seller is not None and change.seller not in rule.seller)
        or (
            rule.super_factory is not None
            and bool(change.super_factory) != rule.super_factory
        )
        or (rule.items is not None and change.item_id not in rule.items)
        or (rule.language is not None and change.language != rule.language)
    )


def wanted(rule: Rule, change: Match) -> bool:
    if rule.when == "price_drop":
        percent = change.percent
        assert rule.percent is not None
        return (
            change.change == "price"
            and percent is not None
            and (-percent >= rule.percent)
        )
    if rule.when == "price_below":
        assert rule.price is not None
        new, old = change.new_price, change.old_price
        return (
            change.change in ("new", "price", "back")
            and new is not None
            and new < rule.price
            and (change.change == "new" or old is None or old >= rule.price)
        )
    return change.change == rule.when


def headline(rule: Rule, count: int) -> str:
    what = {
        "price_drop": f"dropped {rule.percent}% or more",
        "price_below": f"now priced under {rule.price}",
        "new": "new",
        "back": "back in stock",
        "gone": "gone",
    }[rule.when]
    return f"{count} listing{'s' if count != 1 else ''} {what} (rule {rule.name})"


def message(
    rule: Rule, run_id: str, found: Sequence[Match], report: str | None
) -> dict[str, Any]:
    """The one message *rule* sends for a run: Slack's ``text``, and the same
    as fields for any other receiver."""
    top = list(found[: rule.top])
    lines = [f"tmapi-crawler run {run_id}: {headline(rule, len(found))}"]
    for match in top:
        prices = " -> ".join(
            str(p) for p in (match.old_price, match.new_price) if p is not None
        )
        percent = match.percent
        move = f" ({percent:+.1f}%)" if percent is not None else ""
        link = f" {match.url}" if match.url else ""
        lines.append(f"- {match.title or match.item_id}: {prices}{move}{link}")
    if len(found) > len(top):
        lines.append(f"... and {len(found) - len(top)} more")
    if report:
        lines.append(f"Report: {report}")
    return {
        "text": "\n".join(lines),
        "rule": rule.name,
        "when": rule.when,
        "run_id": run_id,
        "count": len(found),
        "items": [match.as_dict() for match in top],
        "report": report,
    }
