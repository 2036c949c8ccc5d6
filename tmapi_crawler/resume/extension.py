"""The job journal extension: keeps the journal and restores a job from it
(see :mod:`tmapi_crawler.resume`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.extensions.feedexport import FeedExporter
from scrapy.http import Response

from tmapi_crawler.backends import RunBackends
from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.contract.coverage import PageCover
from tmapi_crawler.contract.stats import JOB_PAGES_LEFT, RESUME, RESUME_UNJOURNALED
from tmapi_crawler.exceptions import AlreadyDelivered
from tmapi_crawler.extensions.ledger import CrawlLedger
from tmapi_crawler.feeds.feedfile import (
    FeedMemory,
    is_line_file,
    local_path,
    read_items,
)
from tmapi_crawler.feeds.storages import dead_spools, spool_root, spooled_files
from tmapi_crawler.internals import (
    feed_filters,
    feed_format,
    feed_slots,
    filter_feed,
    flush_feed_files,
    reset_job_state,
)
from tmapi_crawler.meta import ANSWER, TMAPI, request_from_stored, stored_request
from tmapi_crawler.resume import journal
from tmapi_crawler.resume.replay import Replay, kind_of
from tmapi_crawler.signals import items_delivered_before, request_settled

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Spider
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)
READ_BACK_BATCH = 1000  # items of the feeds per items_delivered_before signal


@dataclass
class PageTally:
    """The output of one answer: how many items the callback gave and how
    many are handled; how many requests it gave and how many the scheduler
    has queued or turned away."""

    expected: int | None = None
    handled: int = 0
    requests: int = 0
    placed: int = 0
    delivered: int = 0
    end: bool = False
    ids: list[Any] = field(default_factory=list)  # of the items delivered
    cover: PageCover | None = None  # what the page added to the coverage


class ResumeJournal:
    """Keeps the job journal and restores a job from it (see the module doc)."""

    def __init__(self, crawler: Crawler, jobdir: Path) -> None:
        self.crawler = crawler
        self.jobdir = jobdir
        self.stats = crawler.stats
        self.fingerprinter = crawler.request_fingerprinter
        path = jobdir / journal.JOURNAL_NAME
        self.before = journal.load(path)
        self.state = journal.load(path)  # kept current as lines are written
        self.resumed = self.before.runs > 0
        self.run = self.before.runs + 1
        self.memory = FeedMemory(jobdir)
        self.fsync = crawler.settings.getbool("TMAPI_JOB_FSYNC")
        self.replay = Replay()
        self.replayed = self.replay.replayed  # page key: item ids delivered
        found: dict[str, set[str]] = {}
        if self.resumed:
            self._align_scrapy_state()
            self._repair_feeds()
            found = self._find_partial_pages()
        self.journal = journal.Journal(path)
        self.journal.start_run(self.run)
        for fp, ids in found.items():  # known to later runs, spool uploaded or not
            self._write("partial", fp=fp, ids=sorted(ids))
        for fp, item_id in self.replay.singles_held.items():  # not asked again
            self._write("settled", fp=fp, items=1, ids=[item_id], outcome="done")
        self.tallies: dict[str, PageTally] = {}
        # each request a callback gave, to its answer's fingerprint, until
        # the scheduler has it
        self.parents: WeakKeyDictionary[Request, str] = WeakKeyDictionary()
        self.items_this_run = 0
        self.pages_this_run = 0
        self._slot_files: list[str] = []
        # the job's other sinks' files (the catalog store's log), fsynced with
        # the feeds' before a page is settled, with TMAPI_JOB_FSYNC
        self.syncs: list[Callable[[], None]] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResumeJournal:
        jobdir = RunBackends.of(crawler).jobdir
        if jobdir is None:
            raise NotConfigured
        jobdir.mkdir(parents=True, exist_ok=True)
        extension = cls(crawler, jobdir)
        connect = crawler.signals.connect
        connect(extension.spider_opened, signal=signals.spider_opened)
        connect(extension.spider_closed, signal=signals.spider_closed)
        connect(extension.engine_stopped, signal=signals.engine_stopped)
        connect(extension.item_scraped, signal=signals.item_scraped)
        connect(extension.item_handled, signal=signals.item_dropped)
        connect(extension.item_handled, signal=signals.item_error)
        connect(extension.request_settled, signal=request_settled)
        return extension

    @classmethod
    def of(cls, crawler: Crawler) -> ResumeJournal | None:
        return crawler.get_extension(cls)

    def _job_files(self) -> list[Path]:
        """Every local file a run of the job wrote (or this run continues)."""
        feeds = self.crawler.settings.getdict("FEEDS")
        uris = [*self.memory.load().values(), *map(str, feeds)]
        paths = {path.resolve() for uri in uris if (path := local_path(uri))}
        return sorted(path for path in paths if path.is_file())

    def _repair_feeds(self) -> None:
        """A line a kill cut short, removed from the job's files of lines
        (before they are opened: its item is written again); a Parquet, JSON
        or XML file is never cut (it is not appended to either)."""
        formats = {
            path.resolve(): options.get("format")
            for uri, options in self.crawler.settings.getdict("FEEDS").items()
            if (path := local_path(str(uri))) is not None
        }
        for path in self._job_files():
            if not is_line_file(path, formats.get(path)):
                continue
            if cut := journal.drop_partial_last_line(path):
                logger.warning(
                    "%s ended with a line cut by a kill (%d bytes): removed; "
                    "its item is written again",
                    path,
                    cut,
                )

    def _find_partial_pages(self) -> dict[str, set[str]]:
        """What the job's files (its feeds, the spool a killed run left) hold
        of the pages in flight at a kill; returns the ids the journal did not
        know yet, by fingerprint."""
        files = self._job_files()
        if (root := spool_root(self.crawler.settings)) is not None:
            for directory in dead_spools(root):
                files += [spooled.path for spooled in spooled_files(directory)]
        return self.replay.find(self.before, files)

    def _align_scrapy_state(self) -> None:
        """Scrapy's queue and seen-set, made to agree with the journal: the
        queue is replaced by the journal's pending requests, and every request
        the journal knows counts as seen (so replayed pages do not queue their
        follow-ups twice)."""
        reset_job_state(self.jobdir, self.before.queued)

    # -- what the scheduler reports -------------------------------------------

    def fingerprint(self, request: Request) -> str:
        return self.fingerprinter.fingerprint(request).hex()

    def _write(self, event: str, **fields: Any) -> None:
        self.journal.write(event, **fields)
        self.state.apply({"e": event, **fields})

    def queued(self, request: Request, spider: Spider) -> None:
        try:
            data = stored_request(request, spider)
        except ValueError as exc:  # a callback that is not a spider method
            self.stats.inc_value(RESUME_UNJOURNALED)
            logger.warning("Not kept in the job journal: %s (%s)", request, exc)
            return
        self._write("queued", fp=self.fingerprint(request), request=data)

    def placed(self, request: Request) -> None:
        """The scheduler queued *request* (journaled) or turned it away (a
        duplicate): if an answer's callback gave it, one less to wait for."""
        fp = self.parents.pop(request, None)
        if fp is not None and (tally := self.tallies.get(fp)) is not None:
            tally.placed += 1
            self._settle_if_done(fp, tally)

    def leased(self, request: Request) -> None:
        self._write("leased", fp=self.fingerprint(request))

    def pending_requests(self, spider: Spider) -> list[Request]:
        """The requests the last runs left unsettled, to schedule once more."""
        requests = []
        for fp, data in self.before.pending.items():
            if fp in self.replay.singles_held:  # its one item is in the files
                continue
            try:
                request = request_from_stored(data, spider)
            except (KeyError, ValueError, AttributeError, TypeError) as exc:
                logger.error("A journaled request could not be restored: %s", exc)
                continue
            requests.append(request.replace(dont_filter=True))
        return requests

    # -- settling pages -----------------------------------------------------------

    def follow_up(self, response: Response, request: Request) -> None:
        """The callback of *response* gave *request*: its page is not settled
        before the scheduler has it (a kill in between would lose it: the
        page, settled, is not fetched again to give it once more)."""
        fp = self.fingerprint(response.request)  # type: ignore[arg-type]
        self.tallies.setdefault(fp, PageTally()).requests += 1
        self.parents[request] = fp

    def output_complete(self, response: Response, count: int) -> None:
        fp = self.fingerprint(response.request)  # type: ignore[arg-type]
        tally = self.tallies.setdefault(fp, PageTally())
        tally.expected = count
        tally.cover = CrawlLedger.of(self.crawler).take_cover(response.request)  # type: ignore[arg-type]
        page = response.meta.get(ANSWER)
        tally.end = page is not None and not page.has_next_page
        self._settle_if_done(fp, tally)

    def item_scraped(self, item: Any, response: Any) -> None:
        self._count(item, response, delivered=True)
        self.items_this_run += 1

    def item_handled(self, item: Any, response: Any, exception: Any = None) -> None:
        """Dropped or failed; an item dropped as already in the feed counts as
        delivered (it is in the file, from the run before)."""
        self._count(item, response, isinstance(exception, AlreadyDelivered))

    def _count(self, item: Any, response: Any, delivered: bool) -> None:
        if not isinstance(response, Response) or response.request is None:
            return
        fp = self.fingerprint(response.request)
        tally = self.tallies.setdefault(fp, PageTally())
        tally.handled += 1
        if delivered:
            tally.delivered += 1
            item_id = getattr(item, "item_id", None)
            if item_id is None and isinstance(item, dict):
                item_id = item.get("item_id")
            if item_id is not None:
                tally.ids.append(item_id)
        self._settle_if_done(fp, tally)

    def _settle_if_done(self, fp: str, tally: PageTally) -> None:
        if (
            tally.expected is not None
            and tally.handled >= tally.expected
            and tally.placed >= tally.requests
        ):
            del self.tallies[fp]
            self.pages_this_run += 1
            if tally.delivered and not self._make_durable():
                return  # a feed stopped (a full disk): the next run fetches it
            self._write(
                "settled",
                fp=fp,
                items=tally.delivered,
                ids=tally.ids,
                end=tally.end,
                outcome="done",
                **({"cov": tally.cover.to_data()} if tally.cover else {}),
            )
            if self.fsync:
                self.journal.sync()

    def _make_durable(self) -> bool:
        """Every feed's file flushed (CSV is not flushed per line), fsynced
        with ``TMAPI_JOB_FSYNC``, and any new file (a batch) remembered, before
        the page is settled: its items are in every feed, or its spool. False
        when a failed write stopped a feed (:mod:`tmapi_crawler.feeds.guard`):
        the page is not settled."""
        if self.fsync:
            for sync in self.syncs:
                sync()
        slots = feed_slots(self.crawler)
        if any(getattr(slot.exporter, "stopped", None) for slot in slots):
            return False
        flush_feed_files(slots, fsync=self.fsync)
        files = [slot.uri for slot in slots]
        if files != self._slot_files:
            self._slot_files = files
            self._remember_feeds()
        return True

    def stored(self, sink: str, upto: int, run: str) -> None:
        """A sink of the job (the catalog store) committed its log up to byte
        *upto*, to its *run*: a resumed run writes again only what lies past
        it, to the same run."""
        self._write("stored", sink=sink, upto=upto, run=run)
        if self.fsync:
            self.journal.sync()

    def request_settled(self, request: Request, outcome: str) -> None:
        self.pages_this_run += 1
        cover = None
        if outcome == "failed":
            cover = CrawlLedger.of(self.crawler).failed_cover(request)
        self._write(
            "settled",
            fp=self.fingerprint(request),
            items=0,
            outcome=outcome,
            **({"cov": cover.to_data()} if cover else {}),
        )

    # -- start and end ------------------------------------------------------------

    def spider_opened(self, spider: Spider) -> None:
        CrawlLedger.of(self.crawler).keep_covers = True  # kept with each page
        feeds = self._remember_feeds()
        self._warn_of_files_not_of_lines()
        if not self.resumed:
            return
        self._restore_ledger()
        self._read_back_delivered()
        self._filter_feeds()
        before = self.before
        replayed_items = sum(map(len, self.replayed.values()))
        for name, value in (
            ("pages_done_before", len(before.settled)),
            ("pages_left_before", len(before.pending)),
            ("pages_in_flight_before", len(before.in_flight)),
            ("items_before", before.items_delivered + replayed_items),
        ):
            self.stats.set_value(f"{RESUME}{name}", value)
        logger.info(
            "Resuming the job in %s (run %d): %d pages done before "
            "(%d items delivered), %d pages left, of which %d were in flight "
            "when the last run ended and are fetched again; output: %s",
            self.jobdir,
            self.run,
            len(before.settled),
            before.items_delivered + replayed_items,
            len(before.pending),
            len(before.in_flight & set(before.pending)),
            ", ".join(feeds) or "(none)",
        )
        if before.damaged_lines:
            logger.warning(
                "%d line(s) of the job journal could not be read and were "
                "skipped (a kill cuts the line being written)",
                before.damaged_lines,
            )

    def _remember_feeds(self) -> list[str]:
        """The files this run writes, kept for the next run of the job."""
        if self.crawler.get_extension(FeedExporter) is None:
            return []
        slots = feed_slots(self.crawler)
        stored = self.memory.load()
        for slot in slots:
            path = local_path(slot.uri)
            uri = path.resolve().as_uri() if path is not None else slot.uri
            stored.setdefault(slot.uri_template, uri)
            stored[uri] = uri
        self.memory.save(stored)
        return [slot.uri for slot in slots]

    def _warn_of_files_not_of_lines(self) -> None:
        """A local feed a kill cannot leave readable, said once at the start."""
        if self.crawler.get_extension(FeedExporter) is None:
            return
        for slot in feed_slots(self.crawler):
            path = local_path(slot.uri)
            feed = feed_format(self.crawler, slot.uri_template)
            if path is not None and not is_line_file(path, feed):
                logger.warning(
                    "%s is not a file of lines: a SIGKILL would leave it "
                    "unreadable (a Parquet file without its footer) and the "
                    "pages it holds would not be fetched again; a stop, a "
                    "budget or Ctrl-C leaves it whole. JSON Lines (-O "
                    "items.jsonl) is exactly once across kills",
                    path,
                )

    def _restore_ledger(self) -> None:
        """The ledger as the last run that closed left it, and every page that
        said it was the last (a killed run's too), so pages past them stay
        unsent."""
        ledger = CrawlLedger.of(self.crawler)
        if self.before.ledger is not None:
            ledger.restore(self.before.ledger)
        ledger.restore_covers(
            [
                (PageCover.from_data(settled.cover), settled.ids)
                for settled in self.before.settled.values()
                if settled.cover is not None
            ]
        )
        for fp, settled in self.before.settled.items():
            meta = self.before.queued.get(fp, {}).get("meta", {}).get(TMAPI, {})
            if settled.end and "page" in meta:
                ledger.restore_end(meta["query"], meta["page"])

    def _read_back_delivered(self) -> None:
        """Every item the job delivered, in batches, to whoever listens to
        ``items_delivered_before`` (the item dedupe), so a resumed job dedupes
        as one run would: from the journal's record (each settled page's ids,
        whatever feeds it went to) and the pages in flight at a kill; from
        the job's JSON Lines files for a journal too old to hold ids."""
        before, read, batch = self.before, 0, []
        ids_of = [
            (fp, settled.ids) for fp, settled in before.settled.items() if settled.ids
        ]
        kinds = self._feed_kinds()
        for key in self.replayed:  # those every feed holds
            ids_of.append((key, self.replay.held_everywhere(key, kinds)))
        for fp_or_key, ids in ids_of:
            language = self._language(fp_or_key)
            for item_id in ids:
                batch.append({"item_id": item_id, "language": language})
            if len(batch) >= READ_BACK_BATCH:
                read += self._delivered_before(batch)
                batch = []
        if any(s.items and not s.ids for s in before.settled.values()):
            for path in self._job_files():
                for item in read_items(path):
                    batch.append(item)
                    if len(batch) >= READ_BACK_BATCH:
                        read += self._delivered_before(batch)
                        batch = []
        read += self._delivered_before(batch)
        if read:
            logger.info("The item dedupe knows the %d items the job delivered", read)

    def _language(self, fp_or_key: str) -> Any:
        if fp_or_key.startswith("["):  # a page key: [cat_id, language, ...]
            return json.loads(fp_or_key)[1]
        meta = self.before.queued.get(fp_or_key, {}).get("meta", {}).get(TMAPI, {})
        try:
            return CategoryQuery.model_validate(meta["query"]).language
        except (KeyError, ValueError):
            return None

    def _delivered_before(self, items: list[dict[str, Any]]) -> int:
        if items:
            self.crawler.signals.send_catch_log(items_delivered_before, items=items)
        return len(items)

    def already_delivered(self, item: dict[str, Any]) -> bool:
        """In every feed already: not exported again (each feed's filter
        turns away what that feed alone holds)."""
        return self.replay.in_every_feed(item, self._feed_kinds())

    def _feed_kinds(self) -> set[str]:
        feeds = self.crawler.settings.getdict("FEEDS")
        return {kind_of(options.get("format")) for options in feeds.values()}

    def _filter_feeds(self) -> None:
        """Each feed turns away the items of a replayed page its own kind of
        file already holds (through its item filter, Scrapy's ``item_filter``)."""
        if not self.replay.any_held():
            return
        for template in feed_filters(self.crawler):
            kind = kind_of(feed_format(self.crawler, template))
            filter_feed(
                self.crawler, template, partial(self.replay.turning_away, kind=kind)
            )

    def spider_closed(self, spider: Spider, reason: str) -> None:
        left = len(self.state.pending)
        self.stats.set_value(JOB_PAGES_LEFT, left)
        logger.info(
            "Job %s after run %d (%s): %d pages done in all (%d in this run), "
            "%d items delivered in all (%d in this run), %d pages left%s",
            self.jobdir,
            self.run,
            reason,
            len(self.state.settled),
            self.pages_this_run,
            self.state.items_delivered,
            self.items_this_run,
            left,
            ": run the same command again to resume" if left else "",
        )
        self._write("ledger", progress=CrawlLedger.of(self.crawler).snapshot())

    def engine_stopped(self) -> None:
        """Closed once every sink of the job closed (the catalog store records
        its last batch here as the spider closes)."""
        self.journal.close()
