"""The run report and the alerts of a real two-day store: two crawls of the
simulator (days 0 and 1) into a SQLite file, with alert rules sent to real
webhook receivers on loopback (one that fails); the report opened in a real
headless Chromium. Exact sets, from the simulator's own catalog."""

from __future__ import annotations

import bisect
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SENTINEL_TOKEN, run_crawl
from tests.terminal import on_a_terminal
from tests.webhooks import WebhookReceiver
from tmapi_crawler.simulator.catalog import Catalog, Product
from tmapi_crawler.simulator.process import SimulatorProcess

SIZES = {51: 120, 52: 90}
ATTEMPTS = 2
# the report's screenshot is kept there
ARTIFACTS = Path(os.environ.get("TMAPI_TEST_ARTIFACTS") or ROOT / "out" / "artifacts")


def catalog(day: int) -> dict[int, Product]:
    """Every listing of the day, by item_id (both categories)."""
    found = Catalog(0, SIZES, day=day)
    return {p.item_id: p for cat in SIZES for p in found.products(cat)}


def percent(old: Decimal, new: Decimal) -> Decimal:
    return (new - old) * 100 / old


@dataclass
class TwoDays:
    tmp: Path
    store: str
    runs: list[str]
    logs: list[str]
    calls: list[int]  # calls each day's simulator answered
    received: list[list[dict[str, Any]]]  # the messages of each day's run
    failed_posts: list[int]  # POSTs to the failing webhook, each day
    rules: list[dict[str, Any]]
    good: WebhookReceiver


def rules_for(good: str, bad: str) -> list[dict[str, Any]]:
    return [
        {"name": "drops", "when": "price_drop", "percent": 10, "webhook": good,
         "top": 3},
        {"name": "cheap", "when": "price_below", "price": 5, "webhook": good,
         "top": 500},
        {"name": "new-in-52", "when": "new", "cat_id": 52, "webhook": good},
        {"name": "new-super", "when": "new", "super_factory": True,
         "webhook": good, "top": 500},
        {"name": "gone", "when": "gone", "webhook": bad},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("two-days")
    store = f"sqlite:///{tmp}/catalog.sqlite"
    with WebhookReceiver() as good, WebhookReceiver(500) as bad:
        rules = rules_for(good.url, bad.url)
        logs, calls, received, failed = [], [], [], []
        for day in (0, 1):
            sim = SimulatorProcess(
                request_log=tmp / f"sim{day}.jsonl",
                size=[f"{c}={n}" for c, n in SIZES.items()],
                day=day,
                latency=0.3 * day,  # day 1 lasts seconds: its pace is plotted
            ).start()
            before, posts = len(good.bodies), bad.posts
            try:
                result = run_crawl(
                    tmp,
                    sim.url,
                    {"cat_id": "51,52", "split": "price"},
                    {
                        "TMAPI_STORE": store,
                        "TMAPI_COST_PER_CALL": "0.002 USD",
                        "TMAPI_ALERTS": json.dumps(rules),
                        "TMAPI_ALERTS_ATTEMPTS": ATTEMPTS,
                        "TMAPI_ALERTS_BACKOFF": 0.05,
                        "TMAPI_MAX_CONCURRENCY": 2,
                    },
                    output_name=f"day{day}.jsonl",
                )
                calls.append(len(sim.calls()))
            finally:
                sim.stop()
            assert result.returncode == 0, result.log[-3000:]  # a failed webhook
            logs.append(result.log)
            received.append(good.bodies[before:])
            failed.append(bad.posts - posts)
        runs = re.findall(r"Catalog store: run (\S+) in", "\n".join(logs))
        yield TwoDays(tmp, store, runs, logs, calls, received, failed, rules, good)


def by_rule(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for body in messages:
        assert body["rule"] not in found, body["rule"]  # once per rule and run
        found[body["rule"]] = body
    return found


def test_the_alerts_of_two_days_are_the_exact_sets(two_days):
    day0, day1 = catalog(0), catalog(1)
    first, second = (by_rule(m) for m in two_days.received)
    # day 0: everything is new; nothing dropped, nothing gone yet
    assert set(first) == {"cheap", "new-in-52", "new-super"}
    assert first["new-super"]["count"] == sum(p.is_super_factory for p in day0.values())
    assert two_days.failed_posts[0] == 0

    both = set(day0) & set(day1)
    drops = sorted(
        (percent(day0[i].price, day1[i].price), i)
        for i in both
        if percent(day0[i].price, day1[i].price) <= -10
    )
    new = set(day1) - set(day0)
    cheap = {i for i in new if day1[i].price < 5} | {
        i for i in both if day1[i].price < 5 <= day0[i].price
    }
    assert drops and new and cheap
    assert set(second) == {"drops", "cheap", "new-in-52", "new-super"}
    assert second["drops"]["count"] == len(drops)
    # the top 3, the largest drop first, each with its exact prices
    assert [i["item_id"] for i in second["drops"]["items"]] == [i for _, i in drops[:3]]
    for item in second["drops"]["items"]:
        assert Decimal(item["old_price"]) == day0[item["item_id"]].price
        assert Decimal(item["new_price"]) == day1[item["item_id"]].price
    assert {i["item_id"] for i in second["cheap"]["items"]} == cheap
    in_52 = {p.item_id for p in Catalog(0, SIZES, day=1).products(52)} & new
    assert second["new-in-52"]["count"] == len(in_52)
    assert {i["item_id"] for i in second["new-super"]["items"]} == {
        i for i in new if day1[i].is_super_factory
    }
    report = two_days.tmp / "day1.report.html"
    for body in second.values():
        assert body["run_id"] == two_days.runs[1]
        assert body["report"] == str(report)
        assert f"Report: {report}" in body["text"]  # Slack shows the text
        assert SENTINEL_TOKEN not in json.dumps(body)
    # the gone rule's webhook fails: tried ATTEMPTS times, the crawl not failed
    assert two_days.failed_posts[1] == ATTEMPTS
    log = two_days.logs[1]
    assert f"tmapi-store alerts --run {two_days.runs[1]}" in log
    assert "secret-path" not in log  # a webhook's path may be its key
    summary = json.loads((two_days.tmp / "day1.summary.json").read_text())
    assert summary["alerts"] == {"sent": 4, "failed": 1}
    assert "Alerts: 4 sent, 1 failed" in log


def tmapi_store(store: str, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tmapi_crawler.store", "--store", store]
    return subprocess.run(
        [*command, *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_tmapi_store_alerts_sends_a_run_again(two_days):
    gone = set(catalog(0)) - set(catalog(1))
    rules = [{**rule, "webhook": two_days.good.url, "top": 500}
             for rule in two_days.rules if rule["name"] == "gone"]  # fmt: skip
    before = len(two_days.good.bodies)
    done = tmapi_store(
        two_days.store, "alerts", "--run", two_days.runs[1], "--rules",
        json.dumps(rules),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [body] = two_days.good.bodies[before:]
    assert body["rule"] == "gone" and body["count"] == len(gone)
    assert {item["item_id"] for item in body["items"]} == gone
    assert f"gone: {len(gone)} listings, sent" in done.stdout


@dataclass
class Page:
    dom: str
    probe: dict[str, Any]
    console: list[str]


# The test's instrument, added to a copy of the report (which has no script):
# what each plot's SVG and its series measure once laid out, and every error.
PROBE = """<script>
window.__errors = [];
addEventListener('error', e => __errors.push(
  e.target && e.target.src ? {resource: e.target.src} : {error: String(e.message)}
), true);
addEventListener('load', () => {
  const figures = [...document.querySelectorAll('figure')].map(f => {
    const svg = f.querySelector('svg'), box = svg.getBoundingClientRect();
    const series = {};
    for (const g of svg.querySelectorAll('g[id]')) {
      if (!/^(history|distribution|pace)-/.test(g.id)) continue;
      const b = g.getBBox();
      series[g.id] = (series[g.id] || 0) + (b.width > 0 || b.height > 0 ? 1 : 0);
    }
    return {id: f.id, width: box.width, height: box.height, series};
  });
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({figures, errors: __errors});
  document.body.append(pre);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "Debian's chromium is not installed (.ci/run installs it: "
            "apt-get install chromium)"
        )
    return found


def browse(html: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """Headless Chromium on *html*, offline: every host but loopback unknown."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp / 'chromium'}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--window-size=1200,4200", *extra, html.as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(two_days) -> Page:
    report = two_days.tmp / "day1.report.html"
    probed = two_days.tmp / "probed.html"
    probed.write_text(
        report.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
        encoding="utf-8",
    )
    done = browse(probed, two_days.tmp, "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-3000:]
    probe = json.loads(found[1].replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "run-report.png"
    browse(report, two_days.tmp, f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
    return Page(done.stdout, probe, console)


def plot_data(dom: str, name: str) -> dict[str, Any]:
    found = re.search(rf'data-plot="{name}">(.*?)</script>', dom, re.S)
    assert found, f"no data of the plot {name}"
    return json.loads(found[1])


def test_the_report_opens_offline_with_every_plot_drawn(two_days, page):
    report = two_days.tmp / "day1.report.html"
    assert report.stat().st_size < 2_000_000
    text = report.read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text  # nothing fetched
    assert SENTINEL_TOKEN not in text
    assert page.console == []
    # what failed to load is only the listings' images, from a host the
    # browser is kept from (the test sends nothing off loopback)
    assert all("error" not in e for e in page.probe["errors"]), page.probe["errors"]
    assert all("alicdn.com" in e["resource"] for e in page.probe["errors"])
    figures = {f["id"]: f for f in page.probe["figures"]}
    assert set(figures) == {"plot-history", "plot-distribution", "plot-pace"}
    for figure in figures.values():
        assert figure["width"] > 300 and figure["height"] > 100, figure
        assert figure["series"] and all(figure["series"].values()), figure


def counted(dom: str, attribute: str, name: str) -> str:
    found = re.search(rf'data-{attribute}="{name}"[^>]*>([^<]*)<', dom)
    assert found, f"no data-{attribute}={name}"
    return found[1]


def test_the_figures_in_the_page_are_the_stores(two_days, page):
    day0, day1 = catalog(0), catalog(1)
    both = set(day0) & set(day1)
    moved = {i for i in both if day0[i].price != day1[i].price}
    dom = page.dom
    assert counted(dom, "count", "new") == str(len(set(day1) - set(day0)))
    assert counted(dom, "count", "price") == str(len(moved))
    assert counted(dom, "count", "gone") == str(len(set(day0) - set(day1)))
    assert counted(dom, "figure", "observations") == str(len(day1))
    calls = two_days.calls[1]
    assert counted(dom, "figure", "calls") == str(calls)
    assert counted(dom, "figure", "cost") == f"{Decimal('0.002') * calls} USD"
    assert counted(dom, "figure", "finish_reason") == "finished"
    # the largest drops listed first, each with the store's prices
    drops = sorted(
        (percent(day0[i].price, day1[i].price), i)
        for i in moved
        if day1[i].price < day0[i].price
    )
    rows = re.findall(r'data-item="(\d+)-en" data-change="price"', dom)
    assert [int(i) for i in rows[: len(drops[:10])]] == [i for _, i in drops[:10]]
    # the price history plot: the 4 largest drops and rises, every run's price
    rises = sorted(
        (-percent(day0[i].price, day1[i].price), i)
        for i in moved
        if day1[i].price > day0[i].price
    )
    history = plot_data(dom, "history")["series"]
    expected = [i for _, i in drops[:4]] + [i for _, i in rises[:4]]
    assert [s["item_id"] for s in history] == expected
    for series in history:
        item = series["item_id"]
        assert series["runs"] == two_days.runs
        assert [Decimal(p) for p in series["prices"]] == [
            day0[item].price,
            day1[item].price,
        ]
    drawn = next(f for f in page.probe["figures"] if f["id"] == "plot-history")
    assert set(drawn["series"]) == {s["id"] for s in history}
    # the price distribution: each category's prices, this run and the last
    for series in plot_data(dom, "distribution")["categories"]:
        cat = int(re.search(r"category (\d+)", series["label"])[1])
        for name, day in (("this", 1), ("last", 0)):
            prices = [p.price for p in Catalog(0, SIZES, day=day).products(cat)]
            counts = [0] * (len(series["edges"]) - 1)
            for price in prices:
                n = bisect.bisect_right(series["edges"], float(price)) - 1
                counts[min(n, len(counts) - 1)] += 1
            assert series[name] == counts, (series["label"], name)
    # the pace: the calls sampled end at the run's calls
    pace = plot_data(dom, "pace")
    assert pace["samples"][-1][1] == calls
    assert pace["samples"][-1][2] == len(day1)


def test_a_report_on_demand_says_what_the_store_lacks(two_days, tmp_path):
    output = tmp_path / "report.html"
    done = tmapi_store(
        two_days.store, "report", "--run", two_days.runs[0], "-o", str(output)
    )
    assert done.returncode == 0, done.stderr
    dom = output.read_text(encoding="utf-8")
    assert counted(dom, "count", "new") == str(len(catalog(0)))
    assert counted(dom, "figure", "calls") == "not in the store"
    assert 'data-missing="pace"' in dom
    assert "the store keeps no image" in dom
    # the last run by default; the summary file adds the run's own figures
    summary = two_days.tmp / "day1.summary.json"
    done = tmapi_store(
        two_days.store, "report", "-o", str(output), "--summary", str(summary)
    )
    assert two_days.runs[1] in done.stdout
    dom = output.read_text(encoding="utf-8")
    assert counted(dom, "figure", "calls") == str(two_days.calls[1])


def test_on_a_terminal_tmapi_store_report_shows_its_progress(two_days, tmp_path):
    command = [sys.executable, "-m", "tmapi_crawler.store", "--store",
               two_days.store, "report", "-o", str(tmp_path / "r.html")]  # fmt: skip
    code, screen, stdout = on_a_terminal(command, ROOT)
    assert code == 0, screen[-3000:]
    # the named steps as they come (rich redraws 10 times a second), to the end
    assert re.search(r"report: loading matplotlib .* 0/9", screen), screen
    assert re.search(r"report: the pace plot .* 9/9", screen), screen
    assert b"report written to" in stdout
    assert (tmp_path / "r.html").exists()


def test_bad_alert_rules_are_refused_before_any_call(simulator, crawl, tmp_path):
    sim = simulator(size="51=20")
    rules = [{"when": "cheap", "webhook": "http://127.0.0.1:9/"}]
    result = crawl(
        sim.url,
        {"cat_id": 51},
        {"TMAPI_STORE": f"sqlite:///{tmp_path}/c.sqlite",
         "TMAPI_ALERTS": json.dumps(rules)},
    )  # fmt: skip
    assert result.returncode == 2
    assert "TMAPI_ALERTS[0]: 'when' must be one of price_drop" in result.log
    assert sim.calls() == []


def test_on_postgresql_a_category_not_judged_has_no_gone_alert(
    simulator, postgres, tmp_path
):
    """Day 1 with a page of category 51 failing: 52 is judged, 51 is not; the
    gone alert holds exactly 52's gone listings, the report says why not 51."""
    day0, day1 = catalog(0), catalog(1)
    with WebhookReceiver() as good:
        rules = [{"name": "gone", "when": "gone", "webhook": good.url, "top": 500},
                 {"name": "drops", "when": "price_drop", "percent": 10,
                  "webhook": good.url, "top": 500}]  # fmt: skip
        for day, fault in ((0, None), (1, "51:3=422")):
            options = {"size": [f"{c}={n}" for c, n in SIZES.items()], "day": day}
            sim = simulator(**options, **({"fault": fault} if fault else {}))
            result = run_crawl(
                tmp_path,
                sim.url,
                {"cat_id": "51,52", "split": "price"},
                {"TMAPI_STORE": postgres, "TMAPI_ALERTS": json.dumps(rules),
                 "TMAPI_ALERTS_BACKOFF": 0.05},
                output_name=f"day{day}.jsonl",
            )  # fmt: skip
            assert result.returncode in (0, 3), result.log[-3000:]
        messages = by_rule(good.bodies[-2:])
    in_52 = {p.item_id for p in Catalog(0, SIZES, day=0).products(52)}
    gone_52 = (set(day0) - set(day1)) & in_52
    assert gone_52 and (set(day0) - set(day1)) - in_52  # 51 had gone ones too
    assert {i["item_id"] for i in messages["gone"]["items"]} == gone_52
    assert messages["gone"]["count"] == len(gone_52)
    # the drops seen on the pages that came: a subset, each exact
    for item in messages["drops"]["items"]:
        old, new = day0[item["item_id"]].price, day1[item["item_id"]].price
        assert Decimal(item["old_price"]) == old and Decimal(item["new_price"]) == new
        assert percent(old, new) <= -10
    dom = (tmp_path / "day1.report.html").read_text(encoding="utf-8")
    row = re.search(r'data-category="category 51 \(en\)">(.*?)</tr>', dom)[1]
    assert "no: 1 page(s) failed" in row
    assert counted(dom, "count", "gone") == str(len(gone_52))
