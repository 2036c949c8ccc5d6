"""The items of the pages in flight at a kill that the job's files already
hold (see :mod:`tmapi_crawler.resume`): found in every local JSON Lines and
CSV file of the job and in the spool a killed run left, kept by kind of file,
since a kill can leave an item in one feed and not yet in another: the
replay filter (:mod:`.pipeline`) drops an item every feed holds, and each
feed's item filter turns away what its own kind of file holds.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from tmapi_crawler.contract.api import CategoryQuery
from tmapi_crawler.feeds.feedfile import read_items
from tmapi_crawler.meta import TMAPI
from tmapi_crawler.resume.journal import JobState

KINDS = ("jsonl", "csv")


def _page_key(
    cat_id: object, language: object, sort: object, filters: object, page: object
) -> str:
    return json.dumps([cat_id, language, sort, filters, page], sort_keys=True)


def _request_page_key(request: dict[str, Any]) -> str | None:
    """Which category page a journaled request fetches, as its items say it."""
    meta = request.get("meta", {}).get(TMAPI, {})
    if "page" not in meta:
        return None
    try:
        query = CategoryQuery.model_validate(meta["query"])
    except ValueError:
        return None
    return _page_key(
        query.cat_id, query.language, query.sort, query.filters(), meta["page"]
    )


def _item_page_key(item: dict[str, Any]) -> str:
    return _page_key(
        item.get("cat_id"),
        item.get("language"),
        item.get("sort"),
        item.get("filters"),
        item.get("page"),
    )


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _loose_key(cat_id: Any, language: Any, page: Any, item_id: Any) -> str:
    # the language too: one item is listed in each language, on the same page
    return f"{_int(cat_id)}:{language}:{_int(page)}:{item_id}"


def kind_of(feed_format: Any) -> str:
    """The kind of file a feed format writes: what it is read back as."""
    return "csv" if feed_format == "csv" else "jsonl"


def read_csv(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as rows:
        yield from csv.DictReader(rows)


class Replay:
    """What the job's files hold of the pages in flight at a kill."""

    def __init__(self) -> None:
        self.replayed: dict[str, set[str]] = {}  # page key: item ids delivered
        # "cat_id:page:item_id" of those items, by kind of feed file
        self.in_files: dict[str, set[str]] = {kind: set() for kind in KINDS}

    def find(self, before: JobState, files: list[Path]) -> dict[str, set[str]]:
        """Reads *files* for the items of the pages *before* left in flight;
        returns those the journal's ``partial`` lines did not hold, by
        fingerprint."""
        keys = {}
        for fp in before.in_flight & set(before.pending):
            if (key := _request_page_key(before.queued[fp])) is None:
                continue
            keys[key] = fp
            self.replayed[key] = set(before.partial.get(fp, ()))
            cat_id, language, _, _, page = json.loads(key)
            for item_id in self.replayed[key]:  # from a spool since uploaded
                loose = _loose_key(cat_id, language, page, item_id)
                self.in_files["jsonl"].add(loose)
        if not keys:
            return {}
        pages = set()  # [cat_id, language, page]
        languages: dict[tuple[Any, Any], set[Any]] = {}  # (cat_id, page): languages
        for cat_id, language, _, _, page in map(json.loads, keys):
            pages.add(json.dumps([cat_id, language, page]))
            languages.setdefault((cat_id, page), set()).add(language)
        found: dict[str, set[str]] = {}
        for path in files:
            kind = kind_of(path.suffix.removeprefix("."))
            for item in read_items(path) if kind == "jsonl" else read_csv(path):
                item_id = str(item.get("item_id"))
                cat_id, page = _int(item.get("cat_id")), _int(item.get("page"))
                language = item.get("language")
                if kind == "csv" and "language" not in item:
                    # a CSV without the column (FEED_EXPORT_FIELDS): the page's
                    # language if one alone was in flight, else written again
                    in_flight = languages.get((cat_id, page), set())
                    if len(in_flight) != 1:
                        continue
                    (language,) = in_flight
                loose = _loose_key(cat_id, language, page, item_id)
                if kind == "csv":  # no nested filters: by category, language, page
                    if json.dumps([cat_id, language, page]) in pages:
                        self.in_files[kind].add(loose)
                    continue
                key = _item_page_key(item)
                if key in keys:
                    self.in_files[kind].add(loose)
                    if item_id not in self.replayed[key]:
                        self.replayed[key].add(item_id)
                        found.setdefault(keys[key], set()).add(item_id)
        return found

    def any_held(self) -> bool:
        return any(self.in_files.values())

    def _held(self, item: tuple[Any, Any, Any, Any], kinds: set[str]) -> bool:
        loose = _loose_key(*item)  # cat_id, language, page, item_id
        return all(loose in self.in_files[kind] for kind in kinds)

    def held_everywhere(self, key: str, kinds: set[str]) -> list[str]:
        """The ids of page *key* every kind of feed file holds."""
        cat_id, language, _, _, page = json.loads(key)
        return [
            i
            for i in self.replayed[key]
            if self._held((cat_id, language, page, i), kinds)
        ]

    def in_every_feed(self, item: dict[str, Any], kinds: set[str]) -> bool:
        ids = self.replayed.get(_item_page_key(item))
        if ids is None or str(item.get("item_id")) not in ids:
            return False
        where = (item.get("cat_id"), item.get("language"), item.get("page"))
        return self._held((*where, item["item_id"]), kinds)

    def turning_away(
        self, accepts: Callable[[Any], bool], kind: str
    ) -> Callable[[Any], bool]:
        """A feed's ``accepts``, turning away what its kind of file holds."""
        held = self.in_files[kind]

        def accepts_unless_held(item: Any) -> bool:
            if not accepts(item):
                return False
            get = item.get if isinstance(item, dict) else partial(getattr, item)
            try:
                key = _loose_key(
                    get("cat_id"), get("language"), get("page"), get("item_id")
                )
            except AttributeError:  # not a product (an invalid item)
                return True
            return key not in held

        return accepts_unless_held
