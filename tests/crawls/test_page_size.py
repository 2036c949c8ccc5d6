"""The page size served, learned, and the spend cap: real ``scrapy crawl``
runs against the simulator serving each reading of the API."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.crawls.test_operating import summary_of
from tmapi_crawler.simulator.catalog import Catalog

SIZES = {81: 120, 82: 45}
PROBED = {"TMAPI_PAGE_SIZE_PROBE": 50}  # the default (the suite's crawls ask 20)
READINGS = {
    "serves 50": ({}, 50, 3 + 1),
    "clamps quietly": ({"max_page_size": 20, "page_size_over": "clamp"}, 20, 6 + 3),
    "clamps, echoing": (
        {"max_page_size": 20, "page_size_over": "clamp-echo"},
        20,
        6 + 3,
    ),
    "refuses with 422": ({"max_page_size": 20}, 20, 1 + 6 + 3),
}


def delivered(result) -> Counter:
    return Counter((item["cat_id"], item["item_id"]) for item in result.items)


def expected() -> Counter:
    catalog = Catalog(seed=0, sizes=SIZES)
    return Counter((cat, p.item_id) for cat in SIZES for p in catalog.expected(cat))


def sim_options(reading: str) -> dict:
    return {"size": [f"{cat}={n}" for cat, n in SIZES.items()], **READINGS[reading][0]}


@pytest.mark.parametrize("reading", READINGS)
def test_every_reading_is_crawled_whole_at_the_size_served(simulator, crawl, reading):
    _, served, calls = READINGS[reading]
    sim = simulator(**sim_options(reading))
    result = crawl(sim.url, {"cat_id": "81,82"}, PROBED)
    assert result.returncode == 0, result.log[-3000:]
    assert delivered(result) == expected()  # no item lost, none twice
    log = sim.calls()
    assert len(log) == calls
    # the first call probes; the other query's page 1 waits for its answer
    assert (log[0]["page"], log[0]["params"]["page_size"]) == (1, "50")
    refused = [c for c in log if c["code"] == 422]
    assert len(refused) == (1 if reading == "refuses with 422" else 0)
    summary = summary_of(result)
    assert summary["complete"] is True
    assert summary["page_size"]["served"] == served
    assert summary["totals"]["calls"] == calls
    assert f"Page size: probed at 50, served {served}" in result.log
    # the size every query asks, kept for the next run: 50 unless refused
    asked = 20 if refused else 50
    assert {c["params"]["page_size"] for c in log if c["code"] != 422} == {str(asked)}
    kept = json.loads(
        (result.output.parent / "cache/tmapi-crawler/limits.json").read_text()
    )
    assert [entry["page_size"] for entry in kept["limits"].values()] == [asked]


def test_the_size_learned_is_asked_from_the_first_call_of_the_next_run(
    simulator, crawl
):
    sim = simulator(**sim_options("refuses with 422"))
    first = crawl(sim.url, {"cat_id": "81"}, PROBED, output_name="first.jsonl")
    assert first.returncode == 0, first.log[-3000:]
    before = len(sim.calls())
    second = crawl(sim.url, {"cat_id": "82"}, PROBED, output_name="second.jsonl")
    assert second.returncode == 0, second.log[-3000:]
    later = sim.calls()[before:]
    assert [c["params"]["page_size"] for c in later] == ["20"] * 3
    assert "asking 20 (remembered for this token), served 20" in second.log


def test_a_page_size_given_is_sent_as_given(simulator, crawl):
    sim = simulator(**sim_options("refuses with 422"))
    result = crawl(sim.url, {"cat_id": "81", "page_size": "50"}, PROBED)
    assert result.returncode == 3  # the page failed: the user asked for it
    assert [c["code"] for c in sim.calls()] == [422]


def test_the_spend_cap_stops_the_run_cleanly_and_it_resumes(simulator, crawl, tmp_path):
    sim = simulator(**sim_options("clamps quietly"))
    job = {"JOBDIR": str(tmp_path / "job"), "TMAPI_CONCURRENCY_START": 1}
    spend = {"TMAPI_COST_PER_CALL": "0.01 USD", "TMAPI_MAX_SPEND": "0.05 USD"}
    arguments = {"cat_id": "81,82"}
    first = crawl(
        sim.url, arguments, {**job, **spend, **PROBED}, output_name="first.jsonl"
    )
    assert first.returncode == 4, first.log[-3000:]
    assert len(sim.calls()) == 5
    assert sim.calls()[0]["params"]["page_size"] == "50"  # the probe, clamped
    summary = summary_of(first)
    assert summary["finish_reason"] == "tmapi_spend_cap_reached"
    assert summary["max_spend"] == {"amount": "0.05", "currency": "USD"}
    assert "TMAPI_MAX_SPEND=0.05 USD (5 calls) reached" in first.log

    # the resumed run asks what the first learned: the same requests
    second = crawl(sim.url, arguments, {**job, **PROBED}, output_name="second.jsonl")
    assert second.returncode == 0, second.log[-3000:]
    pages = Counter((c["cat_id"], c["page"]) for c in sim.calls())
    assert max(pages.values()) == 1  # no page paid for twice
    assert delivered(first) + delivered(second) == expected()


def test_the_dry_run_says_whether_the_crawl_fits_the_spend_cap(simulator, crawl):
    sim = simulator(**sim_options("serves 50"))
    cost = {**PROBED, "TMAPI_COST_PER_CALL": "0.01 USD"}
    fits = crawl(
        sim.url,
        {"cat_id": "81,82", "dry_run": "true"},
        {**cost, "TMAPI_MAX_SPEND": "0.04 USD"},
    )
    assert fits.returncode == 0, fits.log[-3000:]
    assert "The full crawl needs 4 pages" in fits.log
    assert "It fits TMAPI_MAX_SPEND=0.04 USD." in fits.log
    assert "Page size: probed at 50, served 50." in fits.log
    short = crawl(
        sim.url,
        {"cat_id": "81,82", "dry_run": "true"},
        {**cost, "TMAPI_MAX_SPEND": "0.03 USD"},
    )
    assert "It does not fit TMAPI_MAX_SPEND=0.03 USD" in short.log


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"TMAPI_MAX_SPEND": "5 USD"}, "needs TMAPI_COST_PER_CALL"),
        (
            {"TMAPI_MAX_SPEND": "5 EUR", "TMAPI_COST_PER_CALL": "0.01 USD"},
            "in EUR, but TMAPI_COST_PER_CALL is in USD",
        ),
        ({"TMAPI_MAX_SPEND": "lots"}, "TMAPI_MAX_SPEND='lots': must be a number"),
        ({"TMAPI_PAGE_SIZE_PROBE": "80"}, "TMAPI_PAGE_SIZE_PROBE='80'"),
        ({"TMAPI_BASE_URL": "http://api.tmapi.top"}, "plain http://"),
    ],
)
def test_bad_spend_page_size_and_base_url_settings_stop_before_any_call(
    simulator, crawl, settings, named
):
    sim = simulator()
    result = crawl(sim.url, {"cat_id": "81"}, settings)
    assert result.returncode == 2
    assert named in result.log
    assert sim.calls() == []
