"""How a crawl ended: its finish reasons and the process exit code.

The crawler's own finish reasons (``finish_reason`` in the stats) are named
once, here; Scrapy's are ``finished`` and ``shutdown``. The exit code is what
scripts and schedulers read:

=====  ==========================================================
 0     complete: every planned page delivered, every feed stored
 1     the crawl could not run (an error while starting)
 2     refused before any call: bad argument, missing token
 3     incomplete: some pages (or category tree calls) failed for good
 4     stopped before the end (bad token, no balance, budget,
       Ctrl-C): resumable
 5     items not delivered: a feed could not be stored, or the
       catalog store did not take every observation (kept in a file)
=====  ==========================================================

When several apply, the highest code wins. ``docs/finish-reasons.md`` is the
user's reference; a test holds it to this module. Free of Scrapy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tmapi_crawler.contract import stats as names

# finish reasons
FINISHED = "finished"  # Scrapy's: nothing left to crawl
SHUTDOWN = "shutdown"  # Scrapy's: Ctrl-C or SIGTERM
BAD_TOKEN = "tmapi_bad_token"  # 401/403 or a key error code
NO_BALANCE = "tmapi_insufficient_balance"  # 439 after TMAPI_BALANCE_RETRIES
BUDGET_EXHAUSTED = "tmapi_budget_exhausted"  # TMAPI_MAX_CALLS reached
SPEND_CAP_REACHED = "tmapi_spend_cap_reached"  # TMAPI_MAX_SPEND reached

# What the summary says of each reason to stop early.
STOP_ADVICE = {
    BUDGET_EXHAUSTED: "the call budget (TMAPI_MAX_CALLS) was reached",
    SPEND_CAP_REACHED: "the spend cap (TMAPI_MAX_SPEND) was reached",
    BAD_TOKEN: "the token was refused: check TMAPI_TOKEN",
    NO_BALANCE: "the account has no balance left: top it up",
    SHUTDOWN: "the crawl was interrupted",
}

# exit codes
COMPLETE, NOT_STARTED, REFUSED, INCOMPLETE, STOPPED, NOT_STORED = 0, 1, 2, 3, 4, 5


def exit_code(stats: Mapping[str, Any]) -> int:
    """The exit code for a finished crawl's stats."""
    code = COMPLETE
    if stats.get(names.PAGES_FAILED) or stats.get(names.TREE_FAILED):
        code = INCOMPLETE
    if stats.get(names.FINISH_REASON, FINISHED) != FINISHED:
        code = STOPPED
    if names.feeds_failed(stats) or names.store_failed(stats):
        code = NOT_STORED
    return code
