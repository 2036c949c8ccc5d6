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
from typing import TYPE_CHECKING

from scrapy import Request
from scrapy.core.scheduler import Scheduler

from tmapi_crawler.resume.extension import ResumeJournal

if TYPE_CHECKING:
    from scrapy import Spider
    from twisted.internet.defer import Deferred


logger = logging.getLogger(__name__)


class JournaledScheduler(Scheduler):
    """Scrapy's scheduler, reporting to the job journal what it queues and
    hands out, and scheduling the requests a previous run left unsettled."""

    journal: ResumeJournal | None = None

    def open(self, spider: Spider) -> Deferred[None] | None:
        result = super().open(spider)
        assert self.crawler is not None
        self.journal = ResumeJournal.of(self.crawler)
        if self.journal is not None:
            for request in self.journal.pending_requests(spider):
                super().enqueue_request(request)
        return result

    def enqueue_request(self, request: Request) -> bool:
        accepted = super().enqueue_request(request)
        if accepted and self.journal is not None:
            self.journal.queued(request, self.spider)
        return accepted

    def next_request(self) -> Request | None:
        request = super().next_request()
        if request is not None and self.journal is not None:
            self.journal.leased(request)
        return request
