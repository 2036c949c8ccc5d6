"""Scrapy's scheduler, reporting to the job journal (:mod:`tmapi_crawler.resume`)."""

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
        if self.journal is not None:
            if accepted:
                self.journal.queued(request, self.spider)
            self.journal.placed(request)  # queued or turned away: known
        return accepted

    def next_request(self) -> Request | None:
        request = super().next_request()
        if request is not None and self.journal is not None:
            self.journal.leased(request)
        return request
