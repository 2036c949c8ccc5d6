"""The add-on that wires every component of the crawler, each order explained once.

``settings.py`` enables it (``ADDONS``) and holds every default; this module
says which component goes where, and why there. It runs when Scrapy builds
the crawler, after every setting is known, so the choices that depend on
settings (a shared Redis queue with ``REDIS_URL``, the job journal with
``JOBDIR``, the default feed) are made here too, by the feature packages'
own functions, in this order:

1. the default and quarantine feeds (:mod:`tmapi_crawler.feeds.addon`);
2. the Redis scheduler and seen-set with ``REDIS_URL``
   (:mod:`tmapi_crawler.distributed`);
3. the job journal with ``JOBDIR`` (:mod:`tmapi_crawler.resume`), which
   needs Scrapy's scheduler, so after 2;
4. the compact duplicate filter, unless 2, 3 or the user chose one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.core.scheduler import Scheduler
from scrapy.settings import SETTINGS_PRIORITIES

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.downloadhandlers import TOKEN_HANDLER, wrap_handlers
from tmapi_crawler.feeds.addon import DefaultFeed
from tmapi_crawler.feeds.feedfile import FeedMemory
from tmapi_crawler.internals import drop_base_components
from tmapi_crawler.resume.journal import JOURNAL_NAME, load

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

P = "tmapi_crawler"

DOWNLOAD_HANDLER = TOKEN_HANDLER

DOWNLOADER_MIDDLEWARES = {
    # Reads every answer (HTTP status and body code) before any built-in
    # middleware does: 580 is after the ones that prepare a request (user
    # agent 500, default headers 400) and before those that read an answer
    # (retry 550 is off, redirect 600, cookies 700, compression 590 reads
    # the body after us on the way back, as it must: it runs first there).
    f"{P}.downloadermiddlewares.errors.TMAPIErrorMiddleware": 580,
    # TMAPI calls are retried by the API's contract above; nothing else retries.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    # Last before the download handler (HttpCache is 900): nothing after it
    # can drop a request it admitted, so it counts exactly the calls made.
    f"{P}.downloadermiddlewares.budget.CallBudget": 990,
}

# An API, not a web site: no URL too long, no link depth to track, and the
# spider builds every request's meta afresh (nothing copied to warn about).
# Every spider middleware is a layer each item passes through (BENCHMARKS.md,
# benchmark 3). RefererMiddleware stays: the redirect middlewares warn without it.
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}

# Switched off in settings.py (REMOTE_CONTROL_ENABLED, TELNETCONSOLE_ENABLED,
# COOKIES_ENABLED: an API needs no cookies), and taken out of <kind>_BASE, so
# not even imported (a component given None is imported all the same): the
# remote control's module imports aiohttp's web server, the cookies
# middleware's tldextract and requests, ~0.1 s and 0.03 s of CPU at every start.
SWITCHED_OFF = {
    "REMOTE_CONTROL_ENABLED": (
        "EXTENSIONS",
        "scrapy.extensions.remote_control.RemoteControl",
    ),
    "TELNETCONSOLE_ENABLED": ("EXTENSIONS", "scrapy.extensions.telnet.TelnetConsole"),
    "COOKIES_ENABLED": (
        "DOWNLOADER_MIDDLEWARES",
        "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",
    ),
}

EXTENSIONS = {
    # First, so that no later component logs a secret before it is in place.
    f"{P}.extensions.redaction.SecretRedaction": 0,
    f"{P}.extensions.feedalert.FeedFailureAlert": 0,
    # The crawl's state: before every extension that reads it.
    f"{P}.extensions.ledger.CrawlLedger": 100,
    # The calls in flight (the gate, the window, the learned limit): built
    # before the downloader and its error middleware, as every extension is.
    f"{P}.extensions.calls.CallsInFlight": 100,
    # The page size served (what a new query asks, learned from page 1
    # answers, kept beside the learned limit): after the calls in flight,
    # whose memory of the limit it shares; before the run summary (510),
    # which reads it. It learns on answer_read, sent by the error contract.
    f"{P}.extensions.pagesize.PageSizeServed": 110,
    f"{P}.extensions.failedpages.FailedPagesFile": 500,
    f"{P}.extensions.progress.CrawlProgressDisplay": 500,
    # After the progress display: its last line comes before the summary.
    f"{P}.extensions.summary.RunSummary": 510,
    # With a spool (JOBDIR, or REDIS_URL): what dead runs left spooled is
    # uploaded at the start and the end (nothing reads it, so any order).
    f"{P}.feeds.recovery.SpoolRecovery": 500,
    # The catalog store (nothing without TMAPI_STORE): after the ledger, whose
    # coverage it reads when the spider closes to judge what is gone; it takes
    # items on item_scraped, after every pipeline, as the feeds do.
    f"{P}.store.extension.CatalogStore": 520,
    # The run report and alerts (with TMAPI_STORE): after the store, whose run
    # is closed (gone judged) by the time this reads it back.
    f"{P}.report.extension.RunReportWriter": 530,
}

ITEM_PIPELINES = {
    # The spider's raw dict becomes a typed item, or is dropped as invalid...
    f"{P}.pipelines.validation.ValidationPipeline": 100,
    # ...before its item_id is looked up: an invalid id is no id.
    f"{P}.pipelines.dedupe.DedupePipeline": 200,
}

FEED_EXPORTERS = {
    "csv": f"{P}.feeds.exporters.FlatCsvItemExporter",
    # The details feed as CSV (TMAPI_DETAILS_FEED=....csv): a row per variant.
    "details_csv": f"{P}.feeds.details.DetailCsvItemExporter",
    # Whole lines, flushed as written: a kill leaves every exported item.
    "jsonlines": f"{P}.feeds.feedfile.LineFlushingJsonLinesExporter",
    "jsonl": f"{P}.feeds.feedfile.LineFlushingJsonLinesExporter",
    # Scrapy's own, guarded: an item the writer refuses costs that item only.
    "json": f"{P}.feeds.guard.GuardedJsonItemExporter",
    "xml": f"{P}.feeds.guard.GuardedXmlItemExporter",
    "marshal": f"{P}.feeds.guard.GuardedMarshalItemExporter",
    "pickle": f"{P}.feeds.guard.GuardedPickleItemExporter",
}
FEED_STORAGES = {
    "s3": f"{P}.feeds.storages.RescuingS3FeedStorage",
    # Local files, unbuffered: a failed write is cut back to the last whole item.
    "": f"{P}.feeds.guard.FeedFileStorage",
    "file": f"{P}.feeds.guard.FeedFileStorage",
}

COMPACT_DUPEFILTER = f"{P}.dupefilters.CompactDupeFilter"

# With JOBDIR, the job journal (tmapi_crawler.resume) and its companions:
JOURNAL_SCHEDULER = f"{P}.resume.scheduler.JournaledScheduler"
JOURNAL = {
    # First among the extensions: the journal is read before any other
    # extension's spider_opened.
    "EXTENSIONS": {f"{P}.resume.extension.ResumeJournal": 0},
    # Closest to the spider: it counts the items the callback gave.
    "SPIDER_MIDDLEWARES": {f"{P}.resume.middleware.PageOutputCounter": 10},
    # Before validation (100): it matches the raw items of a replayed page.
    "ITEM_PIPELINES": {f"{P}.resume.pipeline.ReplayedItemFilter": 50},
}
SCRAPY_SCHEDULER = "scrapy.core.scheduler.Scheduler"

# With REDIS_URL, the Redis scheduler (tmapi_crawler.distributed), and Scrapy's
# filter that filters nothing: the Redis scheduler writes the seen-set in the
# script that queues, and no other filter is wanted.
REDIS_SCHEDULER = f"{P}.distributed.scheduler.RedisScheduler"
NO_DUPEFILTER = "scrapy.dupefilters.BaseDupeFilter"


class TMAPIAddon:
    """Wires the crawler's components (see the module doc)."""

    # Components the add-on may enable, for the pre-flight checks
    # (tmapi_crawler.preflight) to ask about their settings.
    PARTS = (DefaultFeed, RunBackends)

    def update_settings(self, settings: BaseSettings) -> None:
        wire(settings)
        DefaultFeed().update_settings(settings)
        backends = RunBackends.from_settings(settings)  # the run's kind, once
        use_redis(settings, backends)
        use_journal(settings, backends)
        chosen = settings.getpriority("DUPEFILTER_CLASS") or 0
        if chosen < SETTINGS_PRIORITIES["addon"]:  # Scrapy's default still
            settings.set("DUPEFILTER_CLASS", COMPACT_DUPEFILTER, priority="addon")


def wire(settings: BaseSettings) -> None:
    """The components every crawl has, at their orders."""
    for setting, (kind, path) in SWITCHED_OFF.items():
        if not settings.getbool(setting):
            drop_base_components(settings, kind, [path])
    # the token handler, wrapping the handler you chose for the scheme, if any
    wrap_handlers(settings, ("http", "https"))
    for name, components in (
        ("DOWNLOADER_MIDDLEWARES", DOWNLOADER_MIDDLEWARES),
        ("SPIDER_MIDDLEWARES", SPIDER_MIDDLEWARES),
        ("EXTENSIONS", EXTENSIONS),
        ("ITEM_PIPELINES", ITEM_PIPELINES),
        ("FEED_EXPORTERS", FEED_EXPORTERS),
        ("FEED_STORAGES", FEED_STORAGES),
    ):
        chosen = settings[name]
        for path, value in components.items():
            if path not in chosen:  # an order you gave wins
                chosen[path] = value


def use_redis(settings: BaseSettings, backends: RunBackends) -> None:
    """With ``REDIS_URL`` (setting or environment): one crawl shared by many
    workers."""
    url = backends.redis
    if not url:
        return
    settings.set("REDIS_URL", url, priority="addon")
    settings.set("SCHEDULER", REDIS_SCHEDULER, priority="addon")
    settings.set("DUPEFILTER_CLASS", NO_DUPEFILTER, priority="addon")


def use_journal(settings: BaseSettings, backends: RunBackends) -> None:
    """With ``JOBDIR``: the journaled scheduler and its companions, and the
    feeds of the job's first run continued (appended to, never overwritten)."""
    jobdir = backends.jobdir
    if jobdir is None:
        return
    scheduler = settings.get("SCHEDULER")
    if scheduler not in (SCRAPY_SCHEDULER, Scheduler):
        logger.warning("JOBDIR with SCHEDULER=%s: the job journal is off", scheduler)
        return
    settings.set("SCHEDULER", JOURNAL_SCHEDULER, "addon")
    for name, components in JOURNAL.items():
        for path, order in components.items():
            settings[name][path] = order
    if (journal := Path(jobdir) / JOURNAL_NAME).exists():
        feeds = FeedMemory(Path(jobdir)).resumed_feeds(
            settings.getdict("FEEDS"),
            run=load(journal).runs + 1,
            batch=settings.getint("FEED_EXPORT_BATCH_ITEM_COUNT"),
        )
        settings.set("FEEDS", feeds, settings.getpriority("FEEDS") or "addon")
