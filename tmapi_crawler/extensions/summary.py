"""What a crawl did, when it ends: a table per category, totals, and what to do next.

:class:`RunSummary` collects, once the engine has stopped (feeds stored,
stats final), the run's figures from their owners (the ledger, the stats,
the feeds, the page size and the calls in flight) into one summary: per
category query the total_count reported, pages planned, done and failed,
items delivered, duplicates and invalid items dropped, calls and retries,
then the totals, the finish reason, the estimated cost
(``TMAPI_COST_PER_CALL``) and, if the run is incomplete, how to resume or
rerun (:meth:`RunSummary.next_steps`). It writes it as JSON in
``TMAPI_SUMMARY_FILE``: by default beside the output file (``items.jsonl``
-> ``items.summary.json``), reserved at the start so a full disk still takes
it. It shows it as a `rich <https://rich.readthedocs.io>`_ table on a
terminal, plain text in the log otherwise; the words are
:mod:`.summarytext`'s. For a dry run (``-a dry_run=true``) it is the plan
instead: the pages and calls the full crawl needs, and what they would cost.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from rich.console import Console
from scrapy import signals
from scrapy.exceptions import NotConfigured

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract.cost import cost_from, cost_problems, spend_cap_from
from tmapi_crawler.contract.operator_settings import max_calls, problems_of, switch
from tmapi_crawler.contract.outcome import FINISHED, STOP_ADVICE, exit_code
from tmapi_crawler.contract.report import COLUMNS, RunFigures, run_figures
from tmapi_crawler.contract.stats import (
    ALERTS,
    CONCURRENCY_LEARNED,
    CONCURRENCY_REMEMBERED,
    DETAILS_ITEMS,
    FINISH_REASON,
    GAVE_UP,
    ITEMS_EXPORTED,
    RESUME,
    RESUME_PAGES_DONE_BEFORE,
    RETRY_BY_REASON,
    SPOOL_ITEMS_UPLOADED,
    STORE_CHANGES,
    STORE_NOT_CLOSED,
    STORE_UNSTORED,
    STORE_UNSTORED_FILE,
    by_prefix,
    feeds_failed,
)
from tmapi_crawler.extensions.calls import CallsInFlight
from tmapi_crawler.extensions.detailsummary import details_estimate, details_figures
from tmapi_crawler.extensions.feedalert import FeedFailureAlert, stopped_feed_advice
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.extensions.pagesize import PageSizeServed
from tmapi_crawler.extensions.summarytext import (
    PLAN_COLUMNS,
    rich_table,
    summary_json,
    summary_lines,
    summary_title,
    text_table,
)
from tmapi_crawler.feeds.feedfile import local_path

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings


logger = logging.getLogger(__name__)


def resumed(stats: dict[str, Any]) -> dict[str, int] | None:
    """What earlier runs of the job had done (see resume/), if any."""
    found = by_prefix(stats, RESUME)
    found["spooled_items_uploaded"] = stats.get(SPOOL_ITEMS_UPLOADED, 0)
    return found if RESUME_PAGES_DONE_BEFORE in stats else None


def summary_path_beside(feed: Path) -> Path:
    """``out/items.jsonl`` -> ``out/items.summary.json``."""
    return feed.with_name(feed.stem + ".summary.json")


def without_credentials(uri: str) -> str:
    """A feed URI without ``user:password@`` (S3 and FTP URIs may carry keys)."""
    parsed = urlparse(uri)
    if parsed.username is None and parsed.password is None:
        return uri
    return parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()


class RunSummary:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.cost = cost_from(crawler.settings)
        self.max_calls = max_calls(crawler.settings)
        self.max_spend = spend_cap_from(crawler.settings)
        self.configured_path = crawler.settings.get("TMAPI_SUMMARY_FILE") or None
        self.result_cap = crawler.settings.getint("TMAPI_RESULT_CAP")
        self.spider: Spider | None = None
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.feeds: list[str] = []
        self.reserved: Path | None = None  # the file taken at the start
        crawler.signals.connect(self.spider_opened, signals.spider_opened)
        crawler.signals.connect(self.feed_slot_closed, signals.feed_slot_closed)
        crawler.signals.connect(self.engine_stopped, signals.engine_stopped)

    @staticmethod
    def preflight(settings: BaseSettings) -> list[str]:
        return cost_problems(settings) + problems_of(
            lambda: switch(settings, "TMAPI_SUMMARY")
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunSummary:
        if not switch(crawler.settings, "TMAPI_SUMMARY"):
            raise NotConfigured
        return cls(crawler)

    def spider_opened(self, spider: Spider) -> None:
        self.spider = spider
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.reserved = self.path()
        reserve(self.reserved)

    def feed_slot_closed(self, slot: Any) -> None:
        self.feeds.append(without_credentials(slot.uri))

    @property
    def dry_run(self) -> bool:
        return bool(getattr(self.spider, "dry_run", False))

    def engine_stopped(self) -> None:
        if self.spider is None:
            return
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        figures = run_figures(
            CrawlLedger.of(self.crawler).progress,
            stats,
            time.monotonic() - self.started,
            self.cost,
            result_cap=self.result_cap,
        )
        summary = self.summary(figures, stats)
        path = self.path()
        text = summary_json(summary)
        if self.reserved is not None and self.reserved != path:
            # the feed's name was known only once written (%(time)s)
            self.reserved.unlink(missing_ok=True)
        try:
            write_whole(path, text)
        except OSError as exc:
            logger.error("Could not write the run summary to %s: %s", path, exc)
        else:
            summary["summary_file"] = str(path)
        self.show(figures, summary)

    def path(self) -> Path:
        if self.configured_path:
            return Path(self.configured_path)
        candidates = self.feeds + list(self.crawler.settings.getdict("FEEDS"))
        for uri in candidates:
            feed = local_path(uri)
            if feed is not None and "%(" not in str(feed):
                return summary_path_beside(feed)
        stamp = self.started_at.strftime("%Y-%m-%dT%H-%M-%S")
        name = self.spider.name if self.spider else "crawl"
        return Path("out") / f"{name}-{stamp}.summary.json"

    def feed_counts(self) -> dict[str, dict[str, Any]]:
        """Per feed: the items it was handed and what it holds."""
        alert = self.crawler.get_extension(FeedFailureAlert)
        if alert is None:
            return {}
        return {
            without_credentials(uri): feed.as_dict()
            for uri, feed in alert.counts().items()
        }

    def summary(self, figures: RunFigures, stats: dict[str, Any]) -> dict[str, Any]:
        """The summary as data: what the JSON file holds."""
        total = figures.total
        feeds = self.feed_counts()
        short = max((feed["not_written"] for feed in feeds.values()), default=0)
        reason = str(stats.get(FINISH_REASON, "unknown"))
        complete = reason == FINISHED and not (total.failed or total.left)
        return {
            "spider": self.spider.name if self.spider else None,
            "dry_run": self.dry_run,
            FINISH_REASON: reason,
            "exit_code": exit_code(stats),
            "complete": complete and not self.dry_run,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "elapsed_seconds": round(figures.elapsed, 3),
            "calls": figures.calls,
            "max_calls": self.max_calls,
            "max_spend": self.max_spend.as_dict(1) if self.max_spend else None,
            "cost_per_call": self.money(1),
            "estimated_cost": self.money(figures.calls),
            "details": details_figures(figures, stats, self.money),
            "details_estimate": details_estimate(self.crawler, self.spider, self.money)
            if self.dry_run
            else None,
            "responses": figures.responses,
            "retries_by_reason": by_prefix(stats, RETRY_BY_REASON),
            "gave_up_by_reason": by_prefix(stats, GAVE_UP),
            # what the feeds hold: a feed that missed items lowers it (the
            # listings: the details are counted apart)
            "items_exported": int(stats.get(ITEMS_EXPORTED, 0))
            - int(stats.get(DETAILS_ITEMS, 0))
            - short,
            "job_dir": self.job_dir,  # with one, categories count every run
            "resumed": resumed(stats),
            "feeds": self.feeds,
            "feed_items": feeds,
            "changes": by_prefix(stats, STORE_CHANGES) or None,  # with TMAPI_STORE
            "store_unstored": stats.get(STORE_UNSTORED_FILE)
            and {
                "observations": int(stats.get(STORE_UNSTORED, 0)),
                "run_closed": not stats.get(STORE_NOT_CLOSED),
                "file": stats[STORE_UNSTORED_FILE],
            },
            "alerts": by_prefix(stats, ALERTS) or None,  # with TMAPI_ALERTS
            "categories": [row.as_dict() for row in figures.rows],
            "totals": total.as_dict(),
            "next_steps": self.next_steps(figures, reason, stats, feeds),
            "concurrency": self.concurrency(stats),
            "page_size": self.page_size(),
        }

    def page_size(self) -> dict[str, Any] | None:
        """The page size asked and served, from its owner (None: given with
        -a page_size)."""
        served = self.crawler.get_extension(PageSizeServed)
        return served.summary() if served is not None else None

    def concurrency(self, stats: dict[str, Any]) -> dict[str, Any] | None:
        """The limit of calls in flight the run started from and ended at,
        and where it is kept for the next run (None: not remembered)."""
        calls = self.crawler.get_extension(CallsInFlight)
        if calls is None or calls.where is None:
            return None
        return {
            "started_from": stats.get(CONCURRENCY_REMEMBERED),
            "ended_at": stats.get(CONCURRENCY_LEARNED),
            "kept_in": calls.where,
        }

    def money(self, calls: int) -> dict[str, str] | None:
        if self.cost is None:
            return None
        return self.cost.as_dict(calls)

    def next_steps(
        self,
        figures: RunFigures,
        reason: str,
        stats: dict[str, Any],
        feeds: dict[str, dict[str, Any]] | None = None,
    ) -> list[str]:
        """What to do about an incomplete run, one instruction each."""
        if self.dry_run:
            return ["Run the same command without -a dry_run to crawl for real."]
        total = figures.total
        steps: list[str] = []
        job_dir = self.job_dir
        if reason != FINISHED:
            why = STOP_ADVICE.get(reason, f"the crawl stopped ({reason})")
            if job_dir:
                steps.append(
                    f"Stopped early: {why}. Resume with the same command and "
                    f"-s JOBDIR={job_dir}: the requests not sent yet are saved there."
                )
            else:
                steps.append(
                    f"Stopped early: {why}. This run had no job directory, so it "
                    "cannot be resumed: run it again with -s JOBDIR=<a directory> "
                    "to make the next run resumable."
                )
        if total.failed:
            failed = [row for row in figures.rows if row.failed]
            listed = "; ".join(
                f"{row.label}: pages {', '.join(map(str, row.failed_pages))}"
                for row in failed
            )
            steps.append(
                f"{total.failed} pages failed for good ({listed}; also in the "
                "failed-pages file the log names, TMAPI_FAILED_PAGES_FILE). A "
                "resume with the same JOBDIR does not fetch them again: rerun "
                "their categories (a new run, or a new JOBDIR)."
            )
        stopped = {
            uri: feed for uri, feed in (feeds or {}).items() if feed["stopped_by"]
        }
        for uri, feed in stopped.items():
            again = stopped_feed_advice(job_dir)
            steps.append(
                f"Feed {uri} stopped: {feed['stopped_by']} on the disk "
                f"{feed['disk']}; it holds {feed['written']} items, "
                f"{feed['not_written']} not written. Free space there, then {again}."
            )
        if feeds_failed(stats) > len(stopped):
            steps.append("Items were not stored: see 'Error storing' in the log.")
        if file := stats.get(STORE_UNSTORED_FILE):
            missing = f"{stats.get(STORE_UNSTORED, 0)} observations" + (
                " and the run's close" if stats.get(STORE_NOT_CLOSED) else ""
            )
            steps.append(
                f"The catalog store did not take {missing}: they are in {file}. "
                f"Once it answers, run: tmapi-store load {file} (it writes each "
                "once, even run twice, and completes the run's changes)."
            )
        return steps

    def show(self, figures: RunFigures, summary: dict[str, Any]) -> None:
        columns = PLAN_COLUMNS if self.dry_run else COLUMNS
        rows = [*figures.rows, figures.total]
        title = summary_title(self.dry_run)
        lines = summary_lines(
            figures, summary, self.cost, self.max_spend, self.result_cap
        )
        if sys.stderr.isatty():
            console = Console(stderr=True)
            console.print(rich_table(rows, columns, title, self.cost))
            for line in lines:
                console.print(line, highlight=False, markup=False)
        else:
            table = text_table(rows, columns, self.cost)
            logger.info("%s\n%s\n%s", title, table, "\n".join(lines))

    @property
    def job_dir(self) -> str | None:
        jobdir = RunBackends.of(self.crawler).jobdir
        return str(jobdir) if jobdir else None


RESERVED = 64 * 1024  # bytes the summary file holds while the run goes on
PLACEHOLDER = {
    "complete": False,
    "note": "the run has not ended, or was killed before it wrote its summary",
}


def reserve(path: Path) -> None:
    """The summary file, taken when the run starts: a placeholder padded to
    :data:`RESERVED` bytes, so a disk the feeds fill still has room for the
    summary (JSON allows the trailing spaces)."""
    text = json.dumps(PLACEHOLDER) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + " " * (RESERVED - len(text) - 1) + "\n", "utf-8")
    except OSError as exc:
        logger.debug("Could not reserve the summary file %s: %s", path, exc)


def write_whole(path: Path, text: str) -> None:
    """*text* in *path*, whole or not at all (a full disk leaves no empty or
    cut file): written beside it and renamed over it, or, when the disk has
    no room for that, over the space :func:`reserve` took."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        data = text.encode()
        if not path.is_file() or path.stat().st_size < len(data):
            raise
        with path.open("r+b") as file:  # the reserved blocks: no new ones needed
            file.write(data)
            file.truncate()
