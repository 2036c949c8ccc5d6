"""``JOBDIR``: the job journal's components, and the feeds a resumed run continues.

Stop, kill, resume: a crawl with ``-s JOBDIR=DIR`` loses no page. Scrapy's job
directory resumes a crawl stopped cleanly (Ctrl-C, SIGTERM), but its request
queue is written only at a clean close and requests already handed to the
downloader are not in it. Here the job directory also holds a journal
(:mod:`tmapi_crawler.resume.journal`): every request queued, handed to the
downloader (leased) and settled (its items written to the feed, or failed for
good). A run started with a job directory that has a journal:

* reschedules every request queued and not settled, once (``dont_filter``),
  whatever stopped the last run (:mod:`.scheduler`); Scrapy's own queue is
  dropped and ``requests.seen`` rebuilt from the journal, so both agree with
  it even after a SIGKILL. Only requests that were in flight are sent a
  second time;
* drops the items of those in-flight pages that already reached the feed
  (:mod:`.pipeline`), read from the feed file itself, and tells item
  pipelines that dedupe (signal ``items_delivered_before``) every item the feed
  holds, so the dedupe state always agrees with what was written;
* appends to the feed files of the first run, after removing a line a kill
  cut short (:mod:`.extension`);
* says what it resumes at the start and what is left at the end.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.core.scheduler import Scheduler

from tmapi_crawler.feeds.feedfile import FeedMemory
from tmapi_crawler.resume import journal

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

SCRAPY_SCHEDULER = "scrapy.core.scheduler.Scheduler"
P = "tmapi_crawler.resume"
# The journal's own components; orders:
# the extension first among extensions, so it has read the journal before any
# other extension's spider_opened; the output counter closest to the spider
# (10), so it counts what the callback gave; the replay filter (50) before
# validation (100): it matches the raw items of a replayed page.
EXTENSION = f"{P}.extension.ResumeJournal"
OUTPUT_COUNTER = f"{P}.middleware.PageOutputCounter"
REPLAY_FILTER = f"{P}.pipeline.ReplayedItemFilter"
SCHEDULER = f"{P}.scheduler.JournaledScheduler"


def use_journal(settings: BaseSettings) -> None:
    """With ``JOBDIR``: the journaled scheduler and its companions, and the
    feeds of the first run continued."""
    jobdir = settings.get("JOBDIR")
    if not jobdir:
        return
    scheduler = settings.get("SCHEDULER")
    if scheduler not in (SCRAPY_SCHEDULER, Scheduler):
        logger.warning("JOBDIR with SCHEDULER=%s: the job journal is off", scheduler)
        return
    settings.set("SCHEDULER", SCHEDULER, "addon")
    settings["EXTENSIONS"][EXTENSION] = 0
    settings["SPIDER_MIDDLEWARES"][OUTPUT_COUNTER] = 10
    settings["ITEM_PIPELINES"][REPLAY_FILTER] = 50
    if (Path(jobdir) / journal.JOURNAL_NAME).exists():
        feeds = FeedMemory(Path(jobdir)).resumed_feeds(settings.getdict("FEEDS"))
        settings.set("FEEDS", feeds, settings.getpriority("FEEDS") or "addon")
