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
    "tmapi_crawler.middlewares.TMAPIResponseMiddleware": 580,
}
EXTENSIONS = {
    "tmapi_crawler.auth.TokenRedaction": 0,
}
ADDONS = {
    "tmapi_crawler.feeds.DefaultFeed": 0,
}
# Scrapy's remote control runs any Python code sent to a local port, token in
# reach: not for a crawler holding a paid account's key.
REMOTE_CONTROL_ENABLED = False

# --- output -------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"  # Chinese titles stay readable
TMAPI_DEFAULT_FEED = "out/%(name)s-%(time)s.jsonl"  # used unless -o/-O or FEEDS

LOG_LEVEL = "INFO"
