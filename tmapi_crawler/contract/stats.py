"""Every stat the crawler writes, named once. Free of Scrapy.

Names are ``tmapi/...``; a name ending in ``/`` is a prefix, completed by a
reason, a code or a field (``RESPONSE + "503"``). ``docs/stats.md`` is the
user's reference; a test holds it to this module. Scrapy's own stats the
crawler reads (``item_scraped_count``, ``finish_reason``,
``feedexport/failed_count/...``) are named here too, so no other module spells
a stat out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# calls and answers
CALLS = "tmapi/calls"  # every call sent (counted by the token handler)
CALLS_TO = "tmapi/calls_to/"  # + the endpoint's name (items, details, ...)
RESPONSE = "tmapi/response/"  # + "200", or the error's reason ("503", "malformed")
EXCEPTION = "tmapi/exception/"  # + the exception class of a failed download
RETRY = "tmapi/retry"  # Scrapy's get_retry_request base: /count, /reason_count/<r>
RETRY_BY_REASON = "tmapi/retry/reason_count/"
GAVE_UP = "tmapi/gave_up/"  # + reason: pages given up after their retries
CONCURRENCY_CURRENT = "tmapi/concurrency/current"
CONCURRENCY_MIN = "tmapi/concurrency/min"
CONCURRENCY_MAX = "tmapi/concurrency/max"
CONCURRENCY_PROBES = "tmapi/concurrency/probes"  # calls sent at an unproven level
CONCURRENCY_REMEMBERED = "tmapi/concurrency/remembered"  # the limit a run started at
CONCURRENCY_LEARNED = "tmapi/concurrency/learned"  # the limit it ended at, kept
PAGE_SIZE_ASKED = "tmapi/page_size/asked"  # the size the first page 1 asked
PAGE_SIZE_SERVED = "tmapi/page_size/served"  # the size the API serves, learned
PAGE_SIZE_REMEMBERED = "tmapi/page_size/remembered"  # the size a run started at
PAGE_SIZE_REFUSED = "tmapi/page_size/refused"  # page 1 asked again after a 422
BUDGET_MAX_CALLS = "tmapi/budget/max_calls"
BUDGET_MAX_SPEND = "tmapi/budget/max_spend"  # TMAPI_MAX_SPEND, when it is the cap

# pages
PAGES_FAILED = "tmapi/pages/failed"
PAGES_UNSENT = "tmapi/pages/unsent"
PAGES_PAST_END = "tmapi/pages/past_end"
PAGES_WITH_PROBLEMS = "tmapi/pages/with_problems"
PAGES_REDELIVERED = "tmapi/pages/redelivered"
SPLIT_BANDS = "tmapi/split/bands"

# the category tree
TREE_CATEGORIES = "tmapi/tree/categories"
TREE_LEAVES = "tmapi/tree/leaves"
TREE_FAILED = "tmapi/tree/failed"
TREE_WITH_PROBLEMS = "tmapi/tree/with_problems"

# item details (-a details=..., TMAPI_DETAILS)
DETAILS = "tmapi/details/"  # the prefix of the stats below
DETAILS_CHOSEN = "tmapi/details/chosen"  # items chosen for a detail call
DETAILS_ITEMS = "tmapi/details/items"  # detail items delivered
DETAILS_GONE = "tmapi/details/gone"  # answered: the item no longer exists
DETAILS_FAILED = "tmapi/details/failed"  # the call failed for good (4xx, retries)
DETAILS_OVER_CAP = "tmapi/details/over_cap"  # chosen past TMAPI_MAX_DETAIL_CALLS
DETAILS_WITH_PROBLEMS = "tmapi/details/with_problems"  # answers with unfit fields
DETAILS_UNFIT = "tmapi/details/unfit/"  # + the field that did not fit

# items
ITEMS_INVALID = "tmapi/items/invalid"  # + "/<field>/<kind>" per problem
ITEMS_QUARANTINED = "tmapi/items/quarantined"
ITEMS_DUPLICATE = "tmapi/items/duplicate"
DEDUPE_ERRORS = "tmapi/dedupe/errors"

# coverage (set when the spider closes)
COVERAGE = "tmapi/coverage/"  # + categories, incomplete, bands, split, ...

# resume (with JOBDIR)
RESUME = "tmapi/resume/"  # + pages_done_before, pages_left_before, ...
RESUME_PAGES_DONE_BEFORE = "tmapi/resume/pages_done_before"
RESUME_UNJOURNALED = "tmapi/resume/unjournaled"
RESUME_ITEMS_ALREADY_DELIVERED = "tmapi/resume/items_already_delivered"
JOB_PAGES_LEFT = "tmapi/job/pages_left"

# the spool of feeds that upload (with JOBDIR, or REDIS_URL and TMAPI_SPOOL_DIR)
SPOOL_FILES_UPLOADED = "tmapi/spool/files_recovered"
SPOOL_ITEMS_UPLOADED = "tmapi/spool/items_recovered"

# distributed (with REDIS_URL)
REDIS_OUTAGES = "tmapi/redis/outages"
REDIS_LEASES_RECOVERED = "tmapi/redis/leases_recovered"
JOBS_ACCEPTED = "tmapi/jobs/accepted"
JOBS_REJECTED = "tmapi/jobs/rejected"

# the catalog store (with TMAPI_STORE)
STORE_OBSERVATIONS = "tmapi/store/observations"  # written to the store
STORE_CHANGES = "tmapi/store/changes/"  # + new, price, gone, back
STORE_ERRORS = "tmapi/store/errors"  # times the store could not be reached
STORE_UNSTORED = "tmapi/store/unstored"  # observations never written: in a file
STORE_UNSTORED_FILE = "tmapi/store/unstored_file"  # that file (a path)
STORE_NOT_CLOSED = "tmapi/store/not_closed"  # 1: the run's close is in that file too
STORE_REPLAYED = "tmapi/store/replayed"  # of a killed run's log, written again

# alerts (with TMAPI_ALERTS): messages of the run, one per rule that matched
ALERTS = "tmapi/alerts/"  # + sent, failed
ALERTS_SENT = "tmapi/alerts/sent"  # taken by their webhook
ALERTS_FAILED = "tmapi/alerts/failed"  # not taken after every attempt

# Scrapy's names, written by the Redis scheduler as Scrapy's scheduler and
# duplicate filter write them
SCHEDULER_ENQUEUED_REDIS = "scheduler/enqueued/redis"
SCHEDULER_DEQUEUED_REDIS = "scheduler/dequeued/redis"
DUPEFILTER_FILTERED = "dupefilter/filtered"

# Scrapy's, read by the crawler
ITEMS_EXPORTED = "item_scraped_count"
FINISH_REASON = "finish_reason"
FEED_FAILED = "feedexport/failed_count/"  # + storage; "not_written": see feedalert
FEED_NOT_WRITTEN = FEED_FAILED + "not_written"

# feeds (tmapi_crawler/feeds/guard.py)
FEED_ITEMS_REFUSED = "tmapi/feeds/refused"  # items a feed's writer could not hold
FEED_ITEMS_NOT_WRITTEN = "tmapi/feeds/not_written"  # kept out by a failed write


def invalid_field(field: str, kind: str) -> str:
    return f"{ITEMS_INVALID}/{field}/{kind}"


def by_prefix(stats: Mapping[str, Any], prefix: str) -> dict[str, int]:
    """``{rest: count}`` of the stats named ``<prefix><rest>``."""
    return {
        key[len(prefix) :]: int(value)
        for key, value in stats.items()
        if key.startswith(prefix)
    }


def feeds_failed(stats: Mapping[str, Any]) -> int:
    """How many feeds could not be stored (Scrapy's count and ours)."""
    return sum(by_prefix(stats, FEED_FAILED).values())


def store_failed(stats: Mapping[str, Any]) -> bool:
    """Whether the catalog store missed observations or the run's close (both
    kept in the file ``STORE_UNSTORED_FILE`` names)."""
    return bool(stats.get(STORE_UNSTORED) or stats.get(STORE_NOT_CLOSED))
