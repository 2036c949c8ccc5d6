"""Hostile answers in real crawls against the simulator: the shapes seen in the
wild (string ids, nulls, missing fields, bad bytes, a wrong count, a walk that
never ends) are logged once, counted, and their valid items kept; hostile
values (the simulator's ``hostile`` quirk, and pages of them generated with
hypothesis) cost only their own listings, in every feed format and the store.
The same input, property-based and in-process: tests/contract/test_answer.py and
tests/pipelines/test_validation.py."""

from __future__ import annotations

import csv
import json
import math
import re
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import json_lines, run_crawl, stat
from tmapi_crawler.contract.items import INT64_MAX, MAX_PRICE, unsafe_text
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.simulator.process import SimulatorProcess


def test_quirky_pages_are_logged_once_counted_and_their_valid_items_kept(
    simulator, crawl
):
    sim = simulator(
        size=["44=70", "45=30"],
        miscount="44=-15",  # total_count says 55: three pages, there are four
        quirk=[
            "44:2=item_id_string,null_strings,missing_nested,extra_fields",
            "44:3=not_object,non_utf8",
            "44:4=huge",
            "45:*=endless",  # has_next_page true for ever, empty pages past the end
        ],
    )
    result = crawl(sim.url, {"cat_id": "44,45"})
    assert result.returncode == 0, result.log[-3000:]
    catalog = Catalog(seed=0, sizes={44: 70, 45: 30})
    delivered = {(i["cat_id"], str(i["item_id"])) for i in result.items}
    expected = {(c, str(p.item_id)) for c in (44, 45) for p in catalog.expected(c)}
    replaced = {(44, str(catalog.expected(44)[40].item_id))}  # page 3's first item
    untitled = {(44, str(catalog.expected(44)[20].item_id))}  # null title: invalid
    assert delivered == expected - replaced - untitled
    assert len(result.items) == len(delivered)
    assert "'tmapi/items/invalid': 1," in result.log  # logged and counted
    invalid = [line for line in result.log.splitlines() if "Invalid item" in line]
    assert len(invalid) == 1 and "category 44" in invalid[0] and "page 2" in invalid[0]
    warnings = [line for line in result.log.splitlines() if "WARNING" in line]
    page_3 = [line for line in warnings if "page 3 of category 44" in line]
    assert len(page_3) == 1  # once, however many problems
    assert "not objects" in page_3[0] and "UTF-8" in page_3[0]
    assert any("page 3 of category 45" in line for line in warnings)
    calls = [(c["cat_id"], c["page"]) for c in sim.calls()]
    assert sorted(p for c, p in calls if c == 45) == [1, 2, 3]  # the walk ended
    stat = re.search(r"'tmapi/pages/with_problems': (\d+)", result.log)
    assert stat and int(stat.group(1)) >= 3


@pytest.mark.parametrize("quirk", ["item_id_string", "null_strings", "extra_fields"])
def test_item_shapes_never_crash_the_crawl(simulator, crawl, quirk):
    sim = simulator(size="46=5", quirk=f"46:1={quirk}")
    result = crawl(sim.url, {"cat_id": "46"})
    assert result.returncode == 0, result.log[-3000:]
    assert "Traceback" not in result.log


def sinks(tmp_path: Path) -> dict[str, Any]:
    """Feeds of every format the project writes, and a SQLite store."""
    feeds = {
        str(tmp_path / "items.jsonl"): {"format": "jsonlines"},
        str(tmp_path / "items.parquet"): {"format": "parquet"},
        str(tmp_path / "items.csv"): {"format": "csv"},
        str(tmp_path / "items.json"): {"format": "json"},
    }
    return {
        "FEEDS": json.dumps(feeds),
        "TMAPI_STORE": f"sqlite:///{tmp_path}/catalog.sqlite",
        "TMAPI_QUARANTINE_FEED": str(tmp_path / "invalid.jsonl"),
    }


def delivered(tmp_path: Path) -> dict[str, dict[int, tuple[Any, ...]]]:
    """Per sink, ``{item_id: (price, title)}`` as a user reads them back."""

    def price(value: Any) -> Decimal | None:
        return None if value in (None, "") else Decimal(str(value)).normalize()

    lines = json_lines(tmp_path / "items.jsonl")
    table = pq.read_table(tmp_path / "items.parquet").to_pylist()
    with (tmp_path / "items.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    array = json.loads((tmp_path / "items.json").read_text(encoding="utf-8"))
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        stored = db.execute("SELECT item_id, price, title FROM items").fetchall()
    found = {
        "jsonl": [(i["item_id"], price(i["price"]), i["title"]) for i in lines],
        "parquet": [(i["item_id"], price(i["price"]), i["title"]) for i in table],
        "csv": [(int(r["item_id"]), price(r["price"]), r["title"]) for r in rows],
        "json": [(i["item_id"], price(i["price"]), i["title"]) for i in array],
        "store": [(i, price(p), t) for i, p, t in stored],
    }
    for name, items in found.items():
        assert len({i[0] for i in items}) == len(items), f"{name} repeats an item"
    return {name: {i[0]: i[1:] for i in items} for name, items in found.items()}


def test_a_hostile_page_costs_only_its_hostile_listings_in_every_sink(
    simulator, crawl, tmp_path
):
    """Page 3 of a 100-item category carries the simulator's nine hostile
    listings (docs/simulator.md): the 91 others reach every feed and the
    store, the same in each; none of the nine does; each is quarantined with
    what is wrong with it."""
    sim = simulator(size="77=100", quirk="77:3=hostile")
    result = crawl(sim.url, {"cat_id": "77"}, sinks(tmp_path), output_name=None)
    assert result.returncode == 0, result.log[-3000:]
    assert "Traceback" not in result.log and " ERROR: " not in result.log
    products = Catalog(seed=0, sizes={77: 100}).expected(77)
    good = {p.item_id for n, p in enumerate(products) if not 40 <= n < 49}
    found = delivered(tmp_path)
    assert set(found["jsonl"]) == good  # 91 of 91
    for name, items in found.items():
        assert items == found["jsonl"], f"{name} disagrees with the JSON Lines feed"
    quarantined = json_lines(tmp_path / "invalid.jsonl")
    assert [q["position"] for q in quarantined] == list(range(1, 10))
    kinds = [
        sorted({(e["field"], e["kind"]) for e in q["errors"]}) for q in quarantined
    ]
    assert kinds == [
        [("item_id", "range")],  # 2**70
        [("item_id", "range")],  # negative
        [("item_id", "type")],  # full-width digits
        [("price", "type")],  # NaN
        [("price", "type")],  # 1e309
        [("price", "negative")],
        [("shop_info.company_name", "type")],
        [("title", "text")],  # 100,000 characters, a NUL, a right-to-left override
        [("img", "url")],  # javascript:
    ]
    assert stat(result.log, "tmapi/items/invalid") == 9
    assert stat(result.log, "tmapi/items/quarantined") == 9
    assert stat(result.log, "tmapi/feeds/refused") == 0


# --- property-based: pages of generated hostile listings, every sink -------------

CONTROLS = st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202e", "\u2067"])
SHORT = st.text(max_size=12)
UNSAFE_TEXT = st.one_of(
    st.builds(lambda a, c, b: a + c + b, SHORT, CONTROLS, SHORT),
    st.integers(10_001, 12_000).map(lambda n: "x" * n),
)
FULL_WIDTH = st.text(
    st.characters(min_codepoint=0xFF10, max_codepoint=0xFF19), min_size=1
)
NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
PAST_64_BITS = st.integers(min_value=2**63, max_value=2**90)
OBJECTS = st.one_of(
    st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    st.lists(st.integers(), min_size=1, max_size=2),
    st.booleans(),
)
BAD_URLS = st.sampled_from([
    "javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://detail.1688.com/1",
    "file:///etc/passwd", "http://a b/", "https://detail.1688.com/\x00.html",
    "https://detail.1688.com/\u202elmth.exe",
])  # fmt: skip
HOSTILE_VALUES = st.one_of(
    st.tuples(st.just("item_id"), st.one_of(
        PAST_64_BITS, st.integers(max_value=0), FULL_WIDTH, NOT_FINITE, OBJECTS,
        UNSAFE_TEXT)),
    st.tuples(st.just("price"), st.one_of(
        NOT_FINITE, st.integers(max_value=-1), st.integers(min_value=10**9),
        st.floats(max_value=-0.01), st.sampled_from(["-3.00", "1e309", "NaN"]),
        OBJECTS)),
    st.tuples(st.sampled_from(["title", "title_origin", "currency"]),
              st.one_of(UNSAFE_TEXT, OBJECTS)),
    st.tuples(st.sampled_from(["img", "product_url"]), st.one_of(BAD_URLS, OBJECTS)),
    st.tuples(st.sampled_from(["moq", "quantity_begin"]),
              st.one_of(PAST_64_BITS, st.integers(max_value=-1), NOT_FINITE, OBJECTS)),
    st.tuples(st.just("category_path"), st.lists(UNSAFE_TEXT, min_size=1, max_size=2)),
    st.tuples(st.just("shop_info"), st.builds(
        lambda name: {"company_name": name}, st.one_of(UNSAFE_TEXT, OBJECTS))),
)  # fmt: skip
SIZE = 60  # three pages of 20


def safe(item: dict[str, Any]) -> bool:
    """Nothing impossible or unsafe: what every sink holds, every reader shows."""
    price = item["price"]
    return (
        0 < item["item_id"] <= INT64_MAX
        and (price is None or 0 <= Decimal(price) < MAX_PRICE)
        and unsafe_text(item["title"]) is None
        and item["product_url"].startswith(("http://", "https://"))
    )


@settings(max_examples=6, deadline=None)
@given(hostile=st.dictionaries(st.integers(0, SIZE - 1), HOSTILE_VALUES, min_size=1,
                               max_size=12))  # fmt: skip
def test_pages_of_hostile_listings_cost_only_those_listings_in_every_sink(hostile):
    products = Catalog(seed=0, sizes={79: SIZE}).expected(79)
    overrides = [
        f"{products[n].item_id}:{name}={json.dumps(value)}"
        for n, (name, value) in hostile.items()
    ]
    with (
        tempfile.TemporaryDirectory() as directory,
        SimulatorProcess(size=f"79={SIZE}", override_item=overrides) as sim,
    ):
        workdir = Path(directory)
        result = run_crawl(workdir, sim.url, {"cat_id": 79}, sinks(workdir),
                           output_name=None)  # fmt: skip
        assert result.returncode == 0, result.log[-3000:]
        assert "Traceback" not in result.log
        found = delivered(workdir)
        items = json_lines(workdir / "items.jsonl")
        quarantined = json_lines(workdir / "invalid.jsonl")
    good = {p.item_id for n, p in enumerate(products) if n not in hostile}
    assert good <= set(found["jsonl"])  # every good listing...
    for name, sink in found.items():  # ...in every sink, the same in each
        assert sink == found["jsonl"], f"{name} disagrees with the JSON Lines feed"
    assert all(safe(item) for item in items)
    duplicates = stat(result.log, "tmapi/items/duplicate")
    assert len(items) + len(quarantined) + duplicates == SIZE  # none lost unsaid
