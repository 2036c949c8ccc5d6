"""Scrapy settings of tmapi-crawler, tuned for a paid JSON API.

Every setting of the project's own is named ``TMAPI_*``; override any of them
with ``-s NAME=VALUE``. The token is never set here: it comes from the
``TMAPI_TOKEN`` environment variable (see :mod:`tmapi_crawler.auth`).
"""

BOT_NAME = "tmapi_crawler"
SPIDER_MODULES = ["tmapi_crawler.spiders"]
NEWSPIDER_MODULE = "tmapi_crawler.spiders"
COMMANDS_MODULE = "tmapi_crawler.commands"

# --- the API -------------------------------------------------------------
TMAPI_BASE_URL = "http://api.tmapi.top"
TMAPI_TOKEN_PLACEMENT = (
    "query"  # "query" (apiToken=..., documented) or "header" (apikey)
)

# --- the error contract (see tmapi_crawler/middlewares.py) ----------------
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
TMAPI_CONCURRENCY_START = 4  # calls in flight at the start (doubles while all succeed)
TMAPI_CONCURRENCY_PROBE_AFTER = 32  # successes before trying one call more
TMAPI_FAILED_PAGES_FILE = "out/%(name)s-%(time)s.failed.jsonl"

# --- talking to it ----------------------------------------------------------
USER_AGENT = "tmapi-crawler/0.1 (+https://github.com/tmapi-crawler)"
ROBOTSTXT_OBEY = False  # a JSON API, not a web site
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = 60  # the API asks clients to allow 60 s (its 499 advice)
DOWNLOAD_HANDLERS = {
    "http": "tmapi_crawler.auth.TokenDownloadHandler",
    "https": "tmapi_crawler.auth.TokenDownloadHandler",
}
DOWNLOADER_MIDDLEWARES = {
    # Reads every answer (HTTP status and body code) before anything else does.
    "tmapi_crawler.middlewares.TMAPIErrorMiddleware": 580,
    # TMAPI calls are retried by the API's contract, above; nothing else retries.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
}
EXTENSIONS = {
    "tmapi_crawler.auth.TokenRedaction": 0,
    "tmapi_crawler.failures.FailedPagesFile": 500,
}
ADDONS = {
    "tmapi_crawler.feeds.DefaultFeed": 0,
    # with REDIS_URL set: one crawl shared by many workers (see distributed.py)
    "tmapi_crawler.distributed.DistributedCrawl": 0,
}
# Scrapy's remote control runs any Python code sent to a local port, token in
# reach: not for a crawler holding a paid account's key.
REMOTE_CONTROL_ENABLED = False

# --- output -------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"  # Chinese titles stay readable
TMAPI_DEFAULT_FEED = "out/%(name)s-%(time)s.jsonl"  # used unless -o/-O or FEEDS

# --- distributed crawling (with REDIS_URL set; see tmapi_crawler/distributed.py) --
TMAPI_CRAWL_ID = ""  # workers with the same id share a crawl; default: spider name
TMAPI_LEASE_SECONDS = 60  # a dead worker's requests go back to the queue after this
TMAPI_IDLE_CLOSE = 10  # seconds the whole crawl must stay idle before workers end
TMAPI_DAEMON = False  # True: workers wait for more requests or jobs for ever
TMAPI_POLL_INTERVAL = 0.1  # seconds between looks at the shared queue

LOG_LEVEL = "INFO"
