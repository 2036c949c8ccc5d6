"""Scrapy settings of tmapi-crawler, tuned for a paid JSON API.

Every setting of the project's own is named ``TMAPI_*``; override any of them
with ``-s NAME=VALUE``. The token is never set here: it comes from the
``TMAPI_TOKEN`` environment variable (see :mod:`tmapi_crawler.downloadhandlers`).
"""

from importlib.util import find_spec

BOT_NAME = "tmapi_crawler"
SPIDER_MODULES = ["tmapi_crawler.spiders"]
NEWSPIDER_MODULE = "tmapi_crawler.spiders"
COMMANDS_MODULE = "tmapi_crawler.commands"

# --- the API -------------------------------------------------------------
TMAPI_BASE_URL = "https://api.tmapi.io"  # current docs; the token travels in the URL
# Plain http:// to a host other than loopback is refused before any call (the
# token would cross the network in clear); True allows it, by name.
TMAPI_ALLOW_PLAIN_HTTP = False
TMAPI_TOKEN_PLACEMENT = (
    "query"  # "query" (apiToken=..., documented) or "header" (apikey)
)
# The handler the token handler sends calls through, per scheme; default: the
# one DOWNLOAD_HANDLERS gave (the add-on moves it here), else Scrapy's own.
TMAPI_DOWNLOAD_HANDLERS: dict[str, str] = {}

# The page size asked on page 1 of a token's first query (without -a page_size);
# what the API serves is learned from the answer and asked from then on, kept
# per token beside the learned limit (TMAPI_REMEMBER_LIMIT). 20: the documented.
TMAPI_PAGE_SIZE_PROBE = 50

# --- the error contract (tmapi_crawler.downloadermiddlewares.errors) -------
# Retries per reason: a code ("499"), a kind ("temporary", "concurrency_limit",
# "malformed") or "network" (timeouts, dropped connections).
TMAPI_MAX_RETRIES = {
    "concurrency_limit": 6,
    "temporary": 3,
    "malformed": 3,
    "network": 3,
}
TMAPI_MAX_RETRIES_PER_PAGE = 8  # all reasons together: a bound on what a page costs
TMAPI_BACKOFF_BASE = 1.0  # seconds; doubles per retry of a reason, with jitter
TMAPI_BACKOFF_MAX = 60.0
TMAPI_BALANCE_RETRIES = 2  # after a 439, probes before stopping the crawl
TMAPI_BALANCE_RETRY_DELAY = 300.0  # seconds every call is held after a 439
TMAPI_ADAPTIVE_CONCURRENCY = True  # learn the account's limit from 503s
TMAPI_MAX_CONCURRENCY = 0  # ceiling of calls in flight; 0: CONCURRENT_REQUESTS
TMAPI_CONCURRENCY_START = 4  # calls in flight at the start (probes grow while all hold)
TMAPI_CONCURRENCY_PROBE_AFTER = 32  # successes before a probe (x2 per 503)
# The limit learnt is kept for the next run with the same token (by a digest of
# it): Redis with REDIS_URL, else this file, else JOBDIR's, else the user cache.
TMAPI_REMEMBER_LIMIT = True
TMAPI_LIMITS_FILE = None  # default: $XDG_CACHE_HOME/tmapi-crawler/limits.json
TMAPI_FAILED_PAGES_FILE = "out/%(name)s-%(time)s.failed.jsonl"

# --- whole categories past the result cap (tmapi_crawler.contract.slicing) ---
TMAPI_SPLIT = None  # "price": slice every category at the cap into price bands
TMAPI_RESULT_CAP = 2000  # total_count never exceeds this (integrators' measurements)
TMAPI_SPLIT_WAYS = 4  # bands a band at the cap is cut into

# --- talking to it ----------------------------------------------------------
USER_AGENT = "tmapi-crawler/0.1 (+https://github.com/tmapi-crawler)"
ROBOTSTXT_OBEY = False  # a JSON API, not a web site
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16
# Scrapy starts this many item workers for every answer, whatever its size;
# the item pipelines are synchronous, so 4 is plenty (the default 100 cost
# ~2 ms of CPU a page: BENCHMARKS.md, benchmark 3).
CONCURRENT_ITEMS = 4
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = 60  # the API asks clients to allow 60 s (its 499 advice)
# uvloop under Twisted's asyncio reactor: less CPU for every task and callback
# Scrapy schedules (BENCHMARKS.md, benchmark 3); Python's own loop where it is
# not installed (Windows), or with -s ASYNCIO_EVENT_LOOP=asyncio.SelectorEventLoop.
ASYNCIO_EVENT_LOOP = "uvloop.Loop" if find_spec("uvloop") else None
# Every component (download handler, middlewares, extensions, pipelines,
# exporters, storages, and the schedulers REDIS_URL and JOBDIR choose) is
# wired by one add-on, with each order explained there.
ADDONS = {"tmapi_crawler.addon.TMAPIAddon": 0}
# Scrapy's remote control runs any Python code sent to a local port, token in
# reach: not for a crawler holding a paid account's key.
REMOTE_CONTROL_ENABLED = False

# --- output -------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"  # Chinese titles stay readable
TMAPI_DEFAULT_FEED = "out/%(name)s-%(time)s.jsonl"  # used unless -o/-O or FEEDS
# Parquet (pyarrow): here, not in the add-on, because `-O items.parquet` is
# read before any add-on runs (Scrapy checks the format against this setting).
FEED_EXPORTERS = {"parquet": "tmapi_crawler.feeds.parquet_exporter"}

# --- operating a crawl (see docs/operating.md) ----------------------------------
TMAPI_PROGRESS = True  # live display on a terminal, else a periodic log line
TMAPI_PROGRESS_INTERVAL = 10  # seconds between two progress log lines
TMAPI_COST_PER_CALL = None  # "0.002 USD": turns call counts into an estimated cost
TMAPI_MAX_CALLS = None  # stop cleanly (finish reason tmapi_budget_exhausted)
# Item details (/1688/item_detail, one call per item): which listings get one:
# "all", "none" (None), or some of new,price,back (judged by TMAPI_STORE)
TMAPI_DETAILS = None
TMAPI_MAX_DETAIL_CALLS = None  # a cap on the detail calls a run asks
# a feed URI: JSON Lines, .csv (a row per variant), .parquet (variants as a list)
TMAPI_DETAILS_FEED = None
# "5 USD": stop cleanly once the calls cost this (tmapi_spend_cap_reached); needs
# TMAPI_COST_PER_CALL in the same currency
TMAPI_MAX_SPEND = None
TMAPI_SUMMARY = True  # the end-of-run table and its JSON file
TMAPI_SUMMARY_FILE = None  # default: beside the output file, NAME.summary.json

# --- distributed crawling (with REDIS_URL set; see docs/distributed.md) ---------
TMAPI_CRAWL_ID = ""  # workers with the same id share a crawl; default: spider name
TMAPI_LEASE_SECONDS = 60  # a dead worker's requests go back to the queue after this
TMAPI_IDLE_CLOSE = 10  # seconds the whole crawl must stay idle before workers end
TMAPI_DAEMON = False  # True: workers wait for more requests or jobs for ever
TMAPI_POLL_INTERVAL = 0.1  # seconds between looks at the shared queue
# One window of calls in flight per account (token digest) in Redis, shared by
# every worker on it; a dead worker's places come back after this lease.
TMAPI_SHARED_WINDOW = True
TMAPI_WINDOW_LEASE_SECONDS = 90.0  # past DOWNLOAD_TIMEOUT: no live call outlives it

LOG_LEVEL = "INFO"
# Scrapy's per-page and per-item DEBUG lines, only built when some handler takes them
LOG_FORMATTER = "tmapi_crawler.logformatter.QuietLogFormatter"

# --- items: validation, dedupe, exports (contract.items, pipelines/) ---------
TMAPI_FEED_RESCUE_DIR = "out/unstored"  # where an S3 feed that failed to upload is kept
# with REDIS_URL: where S3 feeds spool items until uploaded (JOBDIR/spool with JOBDIR)
TMAPI_SPOOL_DIR = "out/spool"
TMAPI_JOB_FSYNC = False  # with JOBDIR: fsync feeds and journal as each page settles
TMAPI_QUARANTINE_FEED = None  # a path or URI: keep invalid items there
TMAPI_DEDUPE_ACROSS_LANGUAGES = False  # True: one item in two languages is a dup
TMAPI_DEDUPE_PERSIST = False  # with REDIS_URL: keep seen ids for the next run
TMAPI_DEDUPE_KEY = "%(spider)s:seen_items"  # Redis key prefix of the seen ids
TMAPI_DEDUPE_EXPECTED_ITEMS = 1_000_000  # sizes the Redis buckets (intsets)

# --- the catalog store (tmapi_crawler.store; see docs/store.md) -----------------
TMAPI_STORE = None  # sqlite:///out/catalog.sqlite or postgresql://user@host/db
TMAPI_STORE_BATCH = 1000  # observations written per transaction
# at the close, how long to keep trying a store that does not answer (seconds)
TMAPI_STORE_CLOSE_TIMEOUT = 60.0
TMAPI_CHANGES_FEED = None  # a feed URI: one record per change (needs TMAPI_STORE)
# The run report and alerts (tmapi_crawler.report, tmapi_crawler.alerts; with a store)
TMAPI_REPORT = True  # one HTML file per run: beside the summary, NAME.report.html
TMAPI_REPORT_FILE = None  # default: beside the summary file
TMAPI_ALERTS: list = []  # rules, each sent to its webhook (docs/store.md#alerts)
TMAPI_ALERTS_ATTEMPTS = 3  # tries of a webhook before the message is given up
TMAPI_ALERTS_BACKOFF = 1.0  # seconds before the second try, doubled each next
