"""Scrapy's internals, behind one door.

Everything else in the crawler goes through Scrapy's documented interfaces
(settings, signals, stats, add-ons, ``get_extension``, the scheduler and
download handler interfaces, ``Request.to_dict``, ``get_retry_request``, the
feed exports). Each function here reaches further, for a reason it states,
and was checked against :data:`CHECKED_AGAINST` (``pyproject.toml`` pins
``scrapy>=2.19,<2.20``). ``tests/test_internals.py`` holds one test per use
that fails loudly when a Scrapy upgrade changes what it relies on;
``docs/architecture.md`` lists them ("Scrapy internals").

==============================  ==============================================
function                        relies on
==============================  ==============================================
:func:`requests_in_progress`    ``ExecutionEngine._slot.inprogress``
:func:`open_download_slot`      ``Downloader.per_slot_settings``,
                                ``Downloader.total_concurrency``
:func:`feed_slots`,             ``FeedExporter.slots`` (``uri``,
:func:`flush_feed_files`        ``uri_template``, ``file``, ``itemcount``,
                                ``exporter``, ``filter``,
                                ``start_exporting()``)
:func:`feed_filters`,           ``FeedExporter.filters`` (``ItemFilter``
:func:`filter_feed`,            ``accepts``), ``FeedExporter.feeds``
:func:`feed_format`
:func:`signal_receivers`        PyDispatcher's ``getAllReceivers`` and
                                ``liveReceivers`` on the crawler's
                                ``SignalManager.sender``
:func:`left_downloader_unsent`  ``request_left_downloader`` sent by a
                                middleware (Scrapy sends it itself)
:func:`reset_job_state`         the job directory's ``requests.queue``
                                directory and ``requests.seen`` file
:data:`S3_STORE_IN_THREAD`      ``S3FeedStorage._store_in_thread``,
                                overridden by the spooling S3 storage
:func:`drop_base_components`    ``Settings.getwithbase`` imports every key
                                of ``EXTENSIONS`` (one given ``None`` too)
                                and of ``EXTENSIONS_BASE`` (those not
                                ``None``)
==============================  ==============================================
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydispatch.dispatcher import (  # type: ignore[import-untyped]
    getAllReceivers,
    liveReceivers,
)
from scrapy import signals
from scrapy.extensions.feedexport import FeedExporter

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

CHECKED_AGAINST = "2.19"

# The method of Scrapy's S3 feed storage that uploads a closed file, in a
# thread: the spooling storage (tmapi_crawler.feeds.storages) overrides it to
# keep the file of an upload that failed instead of losing it.
S3_STORE_IN_THREAD = "_store_in_thread"


def requests_in_progress(crawler: Crawler) -> set[Request] | None:
    """The engine's requests being downloaded or scraped, items included
    (None: the engine has no such set). Scrapy has no signal for "this
    request is completely processed": the Redis scheduler acknowledges a
    page only once it has left this set."""
    slot = getattr(crawler.engine, "_slot", None)
    inprogress = getattr(slot, "inprogress", None)
    return None if inprogress is None else set(inprogress)


def open_download_slot(
    crawler: Crawler, slot: str, concurrency: int, total: int
) -> None:
    """The downloader slot *slot* admits *concurrency* requests at once, and
    the downloader as a whole at least *total*: the call gate, not the slot,
    then keeps calls in flight to the window (a slot lets a loop tick's
    requests through at once)."""
    engine = crawler.engine
    assert engine is not None
    downloader = engine.downloader
    downloader.per_slot_settings.setdefault(slot, {})["concurrency"] = concurrency
    downloader.total_concurrency = max(downloader.total_concurrency, total)


def _feed_exporter(crawler: Crawler) -> FeedExporter | None:
    return crawler.get_extension(FeedExporter)


def feed_slots(crawler: Crawler) -> list[Any]:
    """The feed exporter's open slots (each: ``uri``, ``uri_template``,
    ``file``, ``itemcount``, ``exporter``, ``filter``, ``start_exporting()``):
    the files a run writes, kept for a resumed job; a feed that accepted
    items it never wrote fails the run; an item a writer refused goes to the
    quarantine feed's slot."""
    exporter = _feed_exporter(crawler)
    return list(getattr(exporter, "slots", ())) if exporter is not None else []


def flush_feed_files(slots: Iterable[Any], fsync: bool = False) -> None:
    """The open files of feed *slots* (:func:`feed_slots`) flushed (CSV is
    not flushed per line), fsynced with *fsync*: a page's items reach the
    files before it is settled or acknowledged."""
    for slot in slots:
        file = slot.file
        if file is None or getattr(file, "closed", False):
            continue
        file.flush()
        if fsync:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                os.fsync(file.fileno())


def feed_filters(crawler: Crawler) -> Mapping[str, Any]:
    """Each feed's item filter, by URI template (``accepts(item)``): the
    exporter's own mapping, built with it, so a caller may keep it."""
    exporter = _feed_exporter(crawler)
    return exporter.filters if exporter is not None else {}


def feed_format(crawler: Crawler, template: str) -> Any:
    """The ``format`` a feed was given."""
    exporter = _feed_exporter(crawler)
    return None if exporter is None else exporter.feeds[template].get("format")


def filter_feed(
    crawler: Crawler,
    template: str,
    wrap: Callable[[Callable[[Any], bool]], Callable[[Any], bool]],
) -> None:
    """A feed's item filter replaced by *wrap* of it (a resumed job turns
    away, per feed, the items its own file already holds)."""
    item_filter = feed_filters(crawler)[template]
    item_filter.accepts = wrap(item_filter.accepts)


def signal_receivers(crawler: Crawler, signal: Any) -> list[Any]:
    """The receivers connected to *signal* on the crawler, live ones only
    (Scrapy runs one asyncio task per receiver for every item; the crawler's
    one fan-out receiver calls them in turn)."""
    manager = crawler.signals
    return list(liveReceivers(getAllReceivers(manager.sender, signal)))


def left_downloader_unsent(crawler: Crawler, request: Request) -> None:
    """``request_left_downloader`` for a request a middleware turned back
    before it was sent: whoever keeps it a place in flight frees it, as after
    a call."""
    crawler.signals.send_catch_log(
        signal=signals.request_left_downloader,
        request=request,
        spider=crawler.spider,
    )


def reset_job_state(jobdir: Path, fingerprints: Iterable[str]) -> None:
    """Scrapy's own state in a job directory made to agree with the job's
    journal after a kill: its request queue dropped (the journal reschedules
    what was pending) and its seen-set rewritten, in Scrapy's format (each
    fingerprint as two bytes of length and its bytes), from *fingerprints*
    (hex)."""
    shutil.rmtree(jobdir / "requests.queue", ignore_errors=True)
    data = b"".join(
        len(raw).to_bytes(2, "big") + raw for raw in map(bytes.fromhex, fingerprints)
    )
    (jobdir / "requests.seen").write_bytes(data)


def drop_base_components(settings: Any, name: str, paths: Iterable[str]) -> None:
    """Scrapy's components *paths* taken out of ``<name>_BASE``, so that they
    are never imported, not only never built: a key given ``None`` in
    ``<name>`` switches a component off, but Scrapy imports it all the same to
    read its name (the remote control's module imports aiohttp's web server,
    ~0.1 s of CPU at every start)."""
    base = settings[f"{name}_BASE"]
    for path in paths:
        if path in base:
            del base[path]
