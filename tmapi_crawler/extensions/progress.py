"""Where a running crawl stands: a live display on a terminal, a log line elsewhere.

:class:`CrawlProgressDisplay` shows pages done of planned, items, calls,
retries, the share of 503 answers, an ETA and (with ``TMAPI_COST_PER_CALL``)
the estimated cost so far, all from :func:`tmapi_crawler.contract.report.run_figures`.
When stderr is a terminal it is a `rich <https://rich.readthedocs.io>`_
progress bar, with log lines printed above it; otherwise (a log file, a
scheduler, scrapyd) one compact INFO line every ``TMAPI_PROGRESS_INTERVAL``
seconds. ``TMAPI_PROGRESS = off`` switches it off.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.log import get_scrapy_root_handler

from tmapi_crawler.contract.cost import cost_from, cost_problems
from tmapi_crawler.contract.operator_settings import (
    problems_of,
    progress_interval,
    switch,
)
from tmapi_crawler.contract.report import RunFigures, run_figures
from tmapi_crawler.extensions.ledger import CrawlLedger

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from scrapy.utils.asyncio import AsyncioLoopingCall
    from twisted.internet.task import LoopingCall

    from tmapi_crawler.contract.cost import CallCost

logger = logging.getLogger(__name__)
TERMINAL_REFRESH = 0.5  # seconds between two redraws of the live display


class CrawlProgressDisplay:
    def __init__(
        self,
        crawler: Crawler,
        interval: float,
        cost: CallCost | None,
        terminal: bool,
    ) -> None:
        self.crawler = crawler
        self.interval = TERMINAL_REFRESH if terminal else interval
        self.cost = cost
        self.live = TerminalProgress() if terminal else None
        self.started = time.monotonic()
        self.spider: Spider | None = None
        self.task: AsyncioLoopingCall | LoopingCall | None = None
        crawler.signals.connect(self.spider_opened, signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signals.spider_closed)

    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        return cost_problems(settings) + problems_of(
            lambda: switch(settings, "TMAPI_PROGRESS"),
            lambda: progress_interval(settings),
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgressDisplay:
        settings = crawler.settings
        if not switch(settings, "TMAPI_PROGRESS"):
            raise NotConfigured
        return cls(
            crawler,
            progress_interval(settings),
            cost_from(settings),
            terminal=sys.stderr.isatty(),
        )

    def figures(self) -> RunFigures:
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        return run_figures(
            CrawlLedger.of(self.crawler).progress,
            stats,
            time.monotonic() - self.started,
            self.cost,
            result_cap=self.crawler.settings.getint("TMAPI_RESULT_CAP"),
        )

    def spider_opened(self, spider: Spider) -> None:
        self.spider = spider
        self.started = time.monotonic()
        if self.live:
            self.live.start()
        self.task = create_looping_call(self.show)
        self.task.start(self.interval, now=False)

    def show(self) -> None:
        figures = self.figures()
        if self.live:
            self.live.update(figures)
        else:
            logger.info("Progress: %s", figures.progress_line())

    def spider_closed(self, spider: Spider) -> None:
        if self.task and self.task.running:
            self.task.stop()
        if self.live:
            self.live.update(self.figures())
            self.live.stop()
        else:  # the last figures, even for a crawl shorter than one interval
            logger.info("Progress: %s", self.figures().progress_line())


class TerminalProgress:
    """A rich progress bar on stderr; log lines are printed above it meanwhile."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("pages"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[figures]}"),
            console=self.console,
            auto_refresh=False,
        )
        self.task = self.progress.add_task("crawl", total=None, figures="starting")
        self._stream: Any = None

    def start(self) -> None:
        self.progress.start()
        handler = get_scrapy_root_handler()
        if isinstance(handler, logging.StreamHandler) and handler.stream in (
            sys.stderr,
            sys.__stderr__,
        ):
            self._stream = handler.setStream(FileProxy(self.console, handler.stream))

    def update(self, figures: RunFigures) -> None:
        total = figures.total
        line = figures.progress_line().split(" | ", 1)[1]
        self.progress.update(
            self.task,
            total=total.pages or None,
            completed=total.done + total.failed,
            figures=line,
        )
        self.progress.refresh()

    def stop(self) -> None:
        self.progress.stop()
        handler = get_scrapy_root_handler()
        if self._stream is not None and isinstance(handler, logging.StreamHandler):
            proxy = handler.setStream(self._stream)
            if proxy is not None:
                proxy.flush()
            self._stream = None
