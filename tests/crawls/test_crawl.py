"""Real ``scrapy crawl category`` runs in child processes against the simulator."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest

from tests.conftest import SENTINEL_TOKEN
from tmapi_crawler.simulator.catalog import Catalog


def pages_called(simulator) -> Counter:
    return Counter((c["cat_id"], c["page"]) for c in simulator.calls())


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"cat_id": "12x"}, "cat_id='12x'"),
        ({"cat_id": "5", "language": "fr"}, "language='fr'"),
        ({"cat_id": "5", "sort": "newest"}, "sort='newest'"),
        ({"cat_id": "5", "page_size": "0"}, "page_size='0'"),
        ({"cat_id": "5", "page_size": "-20"}, "page_size='-20'"),
        (
            {"cat_id": "5", "price_start": "10", "price_end": "2"},
            "price_start/price_end",
        ),
        ({"cat_id": "5", "colour": "red"}, "colour='red'"),
    ],
)
def test_bad_arguments_stop_the_run_before_any_call(simulator, crawl, arguments, named):
    sim = simulator()
    result = crawl(sim.url, arguments)
    assert result.returncode != 0
    assert named in result.log and "nothing was sent" in result.log
    assert sim.calls() == []


def test_a_missing_token_stops_the_run_before_any_call(simulator, crawl):
    sim = simulator()
    result = crawl(sim.url, {"cat_id": "5"}, token=None)
    assert result.returncode != 0
    assert "export TMAPI_TOKEN" in result.log
    assert sim.calls() == []


def test_full_crawl_delivers_the_catalog_with_one_call_per_page(simulator, crawl):
    sim = simulator(size=["31=45", "32=2345"], latency=0.05)
    result = crawl(sim.url, {"cat_id": "31,32,1031922", "language": "en"})
    assert result.returncode == 0, result.log[-3000:]
    catalog = Catalog(seed=0, sizes={31: 45, 32: 2345})
    for cat_id, pages in ((31, 3), (32, 100), (1031922, 100)):
        expected = {p.item_id for p in catalog.expected(cat_id)}
        delivered = [i["item_id"] for i in result.items if i["cat_id"] == cat_id]
        assert set(delivered) == expected
        assert len(delivered) == len(expected)
        called = {page for (cat, page) in pages_called(sim) if cat == cat_id}
        assert called == set(range(1, pages + 1))
    assert max(pages_called(sim).values()) == 1  # no page twice
    assert (
        max(c["in_flight"] for c in sim.calls()) > 4
    )  # pages were fetched concurrently


def test_items_carry_their_context(simulator, crawl):
    sim = simulator(size="33=25")
    result = crawl(
        sim.url,
        {
            "cat_id": "33",
            "language": "ja",
            "sort": "price_up",
            "price_start": "0.5",
            "free_shipping": "yes",
        },
    )
    assert result.returncode == 0, result.log[-3000:]
    items = result.items
    assert items
    for item in items:
        assert (item["cat_id"], item["language"], item["sort"]) == (
            33,
            "ja",
            "price_up",
        )
        assert item["filters"] == {"price_start": "0.5", "free_shipping": True}
        assert item["delivery_info"]["free_shipping"] is True
        assert (
            datetime.fromisoformat(item["crawled_at"]).utcoffset().total_seconds() == 0
        )
    assert [i["position"] for i in items if i["page"] == 1] == list(range(1, 21))[
        : len([i for i in items if i["page"] == 1])
    ]


def test_a_page_that_says_it_is_the_last_ends_the_category(simulator, crawl):
    # total_count claims 145 items (8 pages); the third page says it is the last.
    sim = simulator(size="34=45", miscount="34=100")
    result = crawl(sim.url, {"cat_id": "34"}, {"CONCURRENT_REQUESTS": 1})
    assert result.returncode == 0, result.log[-3000:]
    assert sorted(pages_called(sim)) == [(34, 1), (34, 2), (34, 3)]
    assert len({i["item_id"] for i in result.items}) == 45


def test_a_last_predicted_page_that_still_has_a_next_page_is_followed(simulator, crawl):
    # total_count claims 65 items (4 pages) of 95: pages 5 follows page 4.
    sim = simulator(size="35=95", miscount="35=-30")
    result = crawl(sim.url, {"cat_id": "35"})
    assert result.returncode == 0, result.log[-3000:]
    assert sorted(pages_called(sim)) == [(35, n) for n in range(1, 6)]
    assert len({i["item_id"] for i in result.items}) == 95


def test_max_pages_caps_each_category(simulator, crawl):
    sim = simulator(size=["36=300", "37=300"])
    result = crawl(sim.url, {"cat_id": "36,37", "max_pages": "2"})
    assert result.returncode == 0, result.log[-3000:]
    assert sorted(pages_called(sim)) == [(36, 1), (36, 2), (37, 1), (37, 2)]
    assert len(result.items) == 80


@pytest.mark.parametrize("placement", ["query", "header"])
def test_token_placement(simulator, crawl, placement):
    sim = simulator(size="38=60", token=SENTINEL_TOKEN)
    result = crawl(sim.url, {"cat_id": "38"}, {"TMAPI_TOKEN_PLACEMENT": placement})
    assert result.returncode == 0, result.log[-3000:]
    assert [c["token"] for c in sim.calls()] == [placement] * 3
    assert all(c["status"] == 200 for c in sim.calls())


@pytest.mark.parametrize("how", ["environment", "setting"])
def test_the_token_appears_in_no_log_line_or_output(simulator, crawl, how):
    sim = simulator(size="39=120", token=SENTINEL_TOKEN, fault="39:2=dataloss")
    settings = {"LOG_LEVEL": "DEBUG"}
    if how == "setting":
        settings["TMAPI_TOKEN"] = SENTINEL_TOKEN
    result = crawl(sim.url, {"cat_id": "39"}, settings)
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 120
    assert "dataloss" in result.log.lower() or "DataLoss" in result.log
    assert SENTINEL_TOKEN not in result.log
    assert SENTINEL_TOKEN not in result.output.read_text()
    assert SENTINEL_TOKEN not in sim.request_log.read_text()


AIOHTTP_HANDLER = "scrapy.core.downloader.handlers._aiohttp.AiohttpDownloadHandler"


@pytest.mark.parametrize("setting", ["DOWNLOAD_HANDLERS", "TMAPI_DOWNLOAD_HANDLERS"])
def test_the_token_handler_wraps_the_download_handler_you_choose(
    simulator, crawl, setting
):
    sim = simulator(size="40=60", token=SENTINEL_TOKEN, fault="40:2=dataloss")
    chosen = json.dumps({"http": AIOHTTP_HANDLER})
    result = crawl(sim.url, {"cat_id": "40"}, {setting: chosen, "LOG_LEVEL": "DEBUG"})
    assert result.returncode == 0, result.log[-3000:]
    assert "AiohttpDownloadHandler is experimental" in result.log  # it was in use
    assert len(result.items) == 60
    # the simulator refuses any other token: every call was answered with it
    assert all(c["status"] == 200 for c in sim.calls())
    assert sorted(pages_called(sim)) == [(40, 1), (40, 2), (40, 3)]
    assert SENTINEL_TOKEN not in result.log
    assert SENTINEL_TOKEN not in result.output.read_text()
    assert SENTINEL_TOKEN not in sim.request_log.read_text()


def test_a_wrapped_handler_that_cannot_be_loaded_stops_the_run_before_any_call(
    simulator, crawl
):
    sim = simulator()
    chosen = json.dumps({"http": "scrapy.no.such.Handler"})
    result = crawl(sim.url, {"cat_id": "5"}, {"DOWNLOAD_HANDLERS": chosen})
    assert result.returncode == 2
    assert "TMAPI_DOWNLOAD_HANDLERS['http']='scrapy.no.such.Handler'" in result.log
    assert sim.calls() == []
