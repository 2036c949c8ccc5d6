"""The run report and the alerts, when a crawl with a store ends.

:class:`RunReportWriter` samples the crawl's counters (calls, items) every
half second and keeps each listing's image as items are delivered; when the
spider closes, after the catalog store has closed the run (it comes after
the store in ``EXTENSIONS``), it reads the run back, writes the report
(``TMAPI_REPORT_FILE``, by default beside the summary file:
``items.report.html``) and sends the alerts of ``TMAPI_ALERTS``, in a thread
(the store's reads and the webhooks' POSTs keep the reactor free). Neither
fails the crawl: what went wrong is logged, and counted
(``tmapi/alerts/failed``); the summary says so.

It waits for the store's close (:meth:`CatalogStore.when_closed`). Alerts
are sent once per rule and run, by the process that judged the run (the
store's :attr:`~CatalogStore.judged`): not by a job stopped early (its
resumed run sends them), not by a worker that is not the last of a shared
crawl to close (the last sends them; ``tmapi-store alerts --run ID`` where
none could). Neither report nor alerts when observations could not be
stored: the run's changes are not all known (``tmapi-store load``, then
``report`` and ``alerts``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task, threads

from tmapi_crawler.alerts.rules import Rule, RuleError, parse
from tmapi_crawler.alerts.send import Outcome, send_alerts
from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract.cost import cost_from
from tmapi_crawler.contract.credentials import store_uri, token_from
from tmapi_crawler.contract.items import ProductItem
from tmapi_crawler.contract.operator_settings import (
    count,
    problems_of,
    seconds,
    switch,
)
from tmapi_crawler.contract.outcome import FINISHED
from tmapi_crawler.contract.report import run_figures
from tmapi_crawler.contract.stats import (
    ALERTS_FAILED,
    ALERTS_SENT,
    CALLS,
    ITEMS_EXPORTED,
    store_failed,
)
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.extensions.summary import RunSummary
from tmapi_crawler.itemsignal import connect_item_scraped
from tmapi_crawler.report.data import CrawlFacts, Sample, read_run
from tmapi_crawler.store.db import Store, open_store, store_errors
from tmapi_crawler.store.extension import CatalogStore

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)
SAMPLE_SECONDS = 0.5


def alert_rules(settings: BaseSettings) -> list[Rule]:
    return parse(settings.get("TMAPI_ALERTS"))


class RunReportWriter:
    def __init__(self, crawler: Crawler, uri: str) -> None:
        self.crawler = crawler
        self.uri = uri
        self.report = switch(crawler.settings, "TMAPI_REPORT")
        self.rules = alert_rules(crawler.settings)
        self.attempts = count(crawler.settings, "TMAPI_ALERTS_ATTEMPTS", 1)
        self.backoff = seconds(crawler.settings, "TMAPI_ALERTS_BACKOFF")
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.samples: list[Sample] = []
        self.images: dict[tuple[int, str], str] = {}
        self.sampler: task.LoopingCall | None = None
        crawler.signals.connect(self.spider_opened, signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signals.spider_closed)
        if self.report:
            connect_item_scraped(crawler, self.item_scraped)

    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        problems = problems_of(
            lambda: switch(settings, "TMAPI_REPORT"),
            lambda: count(settings, "TMAPI_ALERTS_ATTEMPTS", 1),
            lambda: seconds(settings, "TMAPI_ALERTS_BACKOFF"),
        )
        try:
            rules = alert_rules(settings)
        except RuleError as exc:
            return [*problems, str(exc)]
        if rules and not store_uri(settings):
            problems.append(
                "TMAPI_ALERTS needs TMAPI_STORE: alerts are sent from the "
                "changes the store finds"
            )
        return problems

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunReportWriter:
        uri = store_uri(crawler.settings)
        settings = crawler.settings
        if not uri or not (switch(settings, "TMAPI_REPORT") or alert_rules(settings)):
            raise NotConfigured
        return cls(crawler, uri)

    # --- during the crawl --------------------------------------------------------

    def spider_opened(self, spider: Spider) -> None:
        self.spider = spider
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        if self.report:
            self.sampler = task.LoopingCall(self.sample)
            self.sampler.start(SAMPLE_SECONDS, now=True)

    def sample(self) -> None:
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        self.samples.append(
            Sample(
                round(time.monotonic() - self.started, 3),
                int(stats.get(CALLS, 0)),
                int(stats.get(ITEMS_EXPORTED, 0)),
            )
        )

    def item_scraped(self, item: Any, response: Any = None) -> None:
        if isinstance(item, ProductItem) and item.img:
            self.images[(item.item_id, item.language or "")] = str(item.img)

    # --- at the close ------------------------------------------------------------

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.sampler is not None and self.sampler.running:
            self.sampler.stop()
            self.sample()
        store = self.crawler.get_extension(CatalogStore)
        if store is not None:  # the run written and closed (or kept in a file)
            await maybe_deferred_to_future(store.when_closed())
        run_id = store.run_id if store is not None else None
        if run_id is None:
            logger.error("Run report: the store never opened the run: no report")
            return
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        if store_failed(stats):  # the store was unreachable at the end
            logger.error(
                "No run report, no alerts: run %s is not all in the store "
                "(tmapi-store load, then tmapi-store report and alerts --run %s)",
                run_id,
                run_id,
            )
            return
        facts = CrawlFacts(self.summary(reason, stats), self.samples, self.images)
        judged = store is not None and store.judged
        send = bool(self.rules) and self.may_alert(run_id, reason, judged)
        outcomes = await maybe_deferred_to_future(
            threads.deferToThread(self.finish, run_id, facts, send)
        )
        self.finished(outcomes, run_id)

    def may_alert(self, run_id: str, reason: str, judged: bool) -> bool:
        """Whether this process sends the run's alerts (see the module doc)."""
        if judged:
            return True
        kind = RunBackends.of(self.crawler).kind
        if reason != FINISHED and kind == "job":
            why = "the job stopped early: its resumed run sends them"
        elif kind == "distributed":
            why = "another worker of the shared crawl closes last and sends them"
        else:
            why = "this process did not judge the run"
        logger.warning(
            "Alerts of run %s not sent: %s (tmapi-store alerts --run %s)",
            run_id,
            why,
            run_id,
        )
        return False

    def summary(self, reason: str, stats: dict[str, Any]) -> dict[str, Any]:
        """The run's own figures, as the summary file gives them."""
        cost = cost_from(self.crawler.settings)
        figures = run_figures(
            CrawlLedger.of(self.crawler).progress,
            stats,
            time.monotonic() - self.started,
            cost,
            result_cap=self.crawler.settings.getint("TMAPI_RESULT_CAP"),
        )
        money = cost.as_dict(figures.calls) if cost else None
        return {
            "finish_reason": reason,
            "elapsed_seconds": round(figures.elapsed, 3),
            "calls": figures.calls,
            "estimated_cost": money,
            "items_exported": int(stats.get(ITEMS_EXPORTED, 0)),
            "categories": [row.as_dict() for row in figures.rows],
            "totals": figures.total.as_dict(),
        }

    def path(self) -> Path:
        if configured := self.crawler.settings.get("TMAPI_REPORT_FILE"):
            return Path(configured)
        summary = self.crawler.get_extension(RunSummary)
        if summary is not None:
            beside = summary.path()
            return beside.with_name(
                beside.name.removesuffix(".summary.json") + ".report.html"
            )
        stamp = self.started_at.strftime("%Y-%m-%dT%H-%M-%S")
        return Path("out") / f"{self.spider.name}-{stamp}.report.html"

    def finish(self, run_id: str, facts: CrawlFacts, send: bool) -> list[Outcome]:
        """In a thread: the report written, the alerts sent."""
        try:
            store = open_store(self.uri)
            try:
                return self.write_and_send(store, run_id, facts, send)
            finally:
                store.close()
        except store_errors(self.uri) as exc:
            logger.error(
                "Run report and alerts of run %s: the store could not be read "
                "(%s); tmapi-store report and alerts --run %s once it answers",
                run_id,
                exc,
                run_id,
            )
            return []

    def write_and_send(
        self, store: Store, run_id: str, facts: CrawlFacts, send: bool
    ) -> list[Outcome]:
        # matplotlib (~0.5 s of CPU) only now: never in a crawl without a store
        from tmapi_crawler.report.html import render, write

        written: str | None = None
        if self.report:
            path = self.path()
            try:
                write(path, render(read_run(store, run_id, facts)))
            except OSError as exc:
                logger.error("Could not write the run report to %s: %s", path, exc)
            else:
                written = str(path)
                logger.info("Run report: %s", path)
        if not send:
            return []
        return send_alerts(
            store,
            run_id,
            self.rules,
            written,
            attempts=self.attempts,
            backoff=self.backoff,
            secret=token_from(self.crawler.settings),
        )

    def finished(self, outcomes: list[Outcome], run_id: str) -> None:
        """In the reactor's thread: the alerts counted, a failure said."""
        sent = [o for o in outcomes if o.sent]
        failed = [o for o in outcomes if o.error]
        if self.crawler.stats is not None and self.rules:
            self.crawler.stats.set_value(ALERTS_SENT, len(sent))
            self.crawler.stats.set_value(ALERTS_FAILED, len(failed))
        if failed:
            logger.error(
                "Alerts of run %s: %d of %d messages not sent (%s); the crawl is "
                "not failed for it: tmapi-store alerts --run %s sends them again",
                run_id,
                len(failed),
                len(sent) + len(failed),
                "; ".join(f"{o.rule}: {o.error}" for o in failed),
                run_id,
            )
