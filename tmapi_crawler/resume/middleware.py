"""What each answer's callback gives, counted for the job journal (see
:mod:`tmapi_crawler.resume`): its items, and each request it gives, which
the journal follows until the scheduler has queued (or dropped) it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.http import Response

from tmapi_crawler.resume.extension import ResumeJournal

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)


class PageOutputCounter:
    """Counts the items each answer's callback gives, and tells the journal
    each request it gives, so the journal knows when all of them are written
    and queued. Last of the spider middlewares (closest to the engine): it
    sees what reaches the engine."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @cached_property
    def journal(self) -> ResumeJournal | None:
        return ResumeJournal.of(self.crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageOutputCounter:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        count = 0
        try:
            async for output in result:
                if not isinstance(output, Request):
                    count += 1
                elif self.journal is not None:
                    self.journal.follow_up(response, output)
                yield output
        finally:
            if self.journal is not None:
                self.journal.output_complete(response, count)
