"""A run's alerts: its changes read from the catalog store, matched by each
rule, one message a rule sent to its webhook. Free of Scrapy.

A rule that matches nothing sends nothing. A webhook that fails is said in
the outcome (and by the crawl in its summary); ``tmapi-store alerts --run
ID`` sends the run's messages again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tmapi_crawler.alerts import webhook
from tmapi_crawler.alerts.rules import Match, Rule, matches, message
from tmapi_crawler.store.db import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    rule: str
    count: int  # listings the rule matched
    sent: bool  # a message went (none for a rule that matched nothing)
    error: str | None  # why the webhook did not take it


def decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def read_matches(store: Store, run_id: str) -> tuple[list[Match], bool]:
    """Every change of the run with its listing's shop; and whether the run
    judged any category (said which listings are gone)."""
    rows = store.query(
        "SELECT c.change, c.item_id, c.language, c.cat_id, c.title, "
        "i.product_url, c.old_price, c.new_price, i.company_name, "
        "i.is_super_factory FROM changes c LEFT JOIN items i "
        "ON i.item_id = c.item_id AND i.language = c.language "
        "WHERE c.run_id = ? ORDER BY c.item_id, c.language, c.change",
        (run_id,),
    )
    found = [
        Match(
            change=row["change"],
            item_id=int(row["item_id"]),
            language=row["language"],
            cat_id=None if row["cat_id"] is None else int(row["cat_id"]),
            title=row["title"],
            url=row["product_url"],
            old_price=decimal(row["old_price"]),
            new_price=decimal(row["new_price"]),
            seller=row["company_name"],
            super_factory=None
            if row["is_super_factory"] is None
            else bool(row["is_super_factory"]),
        )
        for row in rows
    ]
    judged = store.query(
        "SELECT COUNT(*) AS n FROM run_categories WHERE run_id = ? AND complete",
        (run_id,),
    )[0]["n"]
    return found, bool(judged)


def send_alerts(
    store: Store,
    run_id: str,
    rules: Sequence[Rule],
    report: str | None = None,
    *,
    attempts: int = 3,
    backoff: float = 1.0,
    secret: str | None = None,
    post: Callable[..., str | None] = webhook.post,
) -> list[Outcome]:
    """Each rule's message for the run, sent; what became of each."""
    changes, judged = read_matches(store, run_id)
    outcomes = []
    for rule in rules:
        found = matches(rule, changes, judged)
        if not found:
            outcomes.append(Outcome(rule.name, 0, False, None))
            continue
        body = message(rule, run_id, found, report)
        error = post(
            rule.webhook, body, attempts=attempts, backoff=backoff, secret=secret
        )
        if error:
            logger.error("Alert %s (%d listings) not sent: %s", rule.name,
                         len(found), error)  # fmt: skip
        else:
            first = body["text"].splitlines()[0]
            logger.info("Alert %s sent to %s: %s", rule.name,
                        webhook.shown(rule.webhook), first)  # fmt: skip
        outcomes.append(Outcome(rule.name, len(found), not error, error))
    return outcomes
