"""The ``category_jobs`` spider: workers that crawl the jobs queued in Redis.

``REDIS_URL=redis://host:6379/0 scrapy crawl category_jobs`` on any number of
machines; ``tmapi-enqueue '{"cat_id": 1031922, "sort": "sales"}'`` feeds them.
Each job is a crawl of the ``category`` spider (same arguments, same checks;
not ``subtree`` or ``dry_run``); its pages spread over all workers through
the shared queue, each carrying the job's ``max_pages`` and ``details``
(``split`` gives its first page a band). A bad job is logged and skipped, as
is one whose details need a catalog store the worker does not have. Workers
end once everything has been idle for ``TMAPI_IDLE_CLOSE`` seconds, or wait
for more jobs with ``TMAPI_DAEMON``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import scrapy

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract.arguments import IGNORED_ARGUMENTS, JobError, parse_job
from tmapi_crawler.contract.credentials import store_uri
from tmapi_crawler.contract.stats import JOBS_ACCEPTED, JOBS_REJECTED
from tmapi_crawler.spiders.details import detail_problems
from tmapi_crawler.spiders.pages import PageSpider

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

NO_REDIS = "category_jobs needs Redis: set REDIS_URL (environment or -s REDIS_URL=...)"


class CategoryJobsSpider(PageSpider):
    """No crawl-wide arguments: every job brings its own, validated per job."""

    name = "category_jobs"

    @classmethod
    def argument_problems(
        cls, settings: BaseSettings, arguments: Mapping[str, Any]
    ) -> list[str]:
        problems = []
        if unknown := sorted(set(arguments) - IGNORED_ARGUMENTS):
            problems.append(
                f"category_jobs takes no arguments (got {', '.join(unknown)}): "
                "queue jobs with tmapi-enqueue"
            )
        if not RunBackends.from_settings(settings).distributed:
            problems.append(NO_REDIS)
        problems += cls.details_problems(settings, None)  # TMAPI_DETAILS
        return problems + super().argument_problems(settings, arguments)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        """Nothing: the scheduler pops jobs while it has room."""
        return
        yield

    def requests_from_job(self, job: bytes) -> list[scrapy.Request]:
        """Page 1 of each query of a job; none for a bad job (logged, counted)."""
        text = job.decode("utf-8", errors="replace")
        try:
            arguments = parse_job(job)
            store = store_uri(self.settings)  # details=new,... need this worker's
            problems = detail_problems(self.settings, arguments.details, store)
        except JobError as exc:
            problems = [str(exc)]
        if problems:
            self.logger.error("Skipped a bad job %s: %s", text, "; ".join(problems))
            self.crawler.stats.inc_value(JOBS_REJECTED)
            return []
        self.logger.info("Job %s: %d queries", text, len(arguments.queries()))
        self.crawler.stats.inc_value(JOBS_ACCEPTED)
        details = (
            None if arguments.details is None else tuple(sorted(arguments.details))
        )
        return [
            self.first_request(query, arguments, details)
            for query in arguments.queries()
        ]
