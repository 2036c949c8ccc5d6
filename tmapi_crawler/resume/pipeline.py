"""Stop, kill, resume: a crawl with ``-s JOBDIR=DIR`` loses no page.

Scrapy's job directory resumes a crawl stopped cleanly (Ctrl-C, SIGTERM), but
its request queue is written only at a clean close and requests already handed
to the downloader are not in it. Here the job directory also holds a journal
(:mod:`tmapi_crawler.resume.journal`): every request queued, handed to the downloader
(leased) and settled (its items written to the feed, or failed for good). A
run started with a job directory that has a journal:

* reschedules every request queued and not settled, once (``dont_filter``),
  whatever stopped the last run; Scrapy's own queue is dropped and
  ``requests.seen`` rebuilt from the journal, so both agree with it even after
  a SIGKILL. Only requests that were in flight are sent a second time;
* drops the items of those in-flight pages that already reached the feed
  (:class:`ReplayedItemFilter`), read from the feed file itself, and tells
  item pipelines that dedupe (``remember_delivered(item)``) every item the
  feed holds, so the dedupe state always agrees with what was written;
* appends to the feed files of the first run (:mod:`tmapi_crawler.feeds.feedfile`),
  after removing a line a kill cut short;
* says what it resumes at the start and what is left at the end.

:class:`ResumableJob` is the add-on that wires these in when ``JOBDIR`` is set.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tmapi_crawler.contract.stats import RESUME_ITEMS_ALREADY_DELIVERED
from tmapi_crawler.exceptions import AlreadyDelivered
from tmapi_crawler.resume.extension import ResumeJournal

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)


class ReplayedItemFilter:
    """Drops items of a page fetched again after a kill that the feed already
    holds (the page was in flight, some of its items were written)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReplayedItemFilter:
        return cls(crawler)

    @cached_property
    def journal(self) -> ResumeJournal | None:
        return ResumeJournal.of(self.crawler)

    def process_item(self, item: Any) -> Any:
        if (
            self.journal is not None
            and self.journal.replayed
            and isinstance(item, dict)
            and self.journal.already_delivered(item)
        ):
            self.crawler.stats.inc_value(RESUME_ITEMS_ALREADY_DELIVERED)  # type: ignore[union-attr]
            raise AlreadyDelivered("duplicate: in the feed before the last run ended")
        return item
