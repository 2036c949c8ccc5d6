"""Real crawls with item details (``-a details=...``) against the simulator:
one detail call per item chosen, through the one call path (retries, the
budget, failures of one item), the details feeds apart from the listings'."""

from __future__ import annotations

import csv
import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import json_lines, run_crawl, stat
from tests.crawls.test_distributed import enqueue, expected_items, start_worker
from tests.crawls.test_resume import (
    settled,
    start_crawl,
    wait_until,
    wait_until_answered,
)
from tmapi_crawler.resume import journal
from tmapi_crawler.simulator.catalog import Catalog
from tmapi_crawler.simulator.variants import variants

CAT, SIZE = 51, 25  # 2 pages of 20
DETAIL = "/1688/item_detail"


def listed(size: int = SIZE, day: int = 0) -> list[Any]:
    return list(Catalog(0, {CAT: size}, day=day).products(CAT))


def detail_calls(sim, outcome: str | None = "ok") -> Counter:
    """Detail calls the simulator answered, by item id."""
    return Counter(
        c["item_id"]
        for c in sim.calls()
        if c["path"] == DETAIL and (outcome is None or c["outcome"] == outcome)
    )


def crawl_details(sim, tmp_path: Path, name: str, **options: Any):
    settings = {
        "TMAPI_DETAILS_FEED": str(tmp_path / f"{name}.details.jsonl"),
        "TMAPI_COST_PER_CALL": "0.002 USD",
        **options.pop("settings", {}),
    }
    arguments = {"cat_id": CAT, **options.pop("arguments", {})}
    return run_crawl(
        tmp_path, sim.url, arguments, settings, output_name=f"{name}.jsonl", **options
    )


def crawl_all(sim, tmp_path: Path, **settings: Any):
    """A crawl with ``details=all`` and *settings*."""
    return crawl_details(
        sim, tmp_path, "run", arguments={"details": "all"}, settings=settings
    )


def test_details_all_one_call_per_listing_in_the_crawls_language(simulator, tmp_path):
    sim = simulator(size=f"{CAT}={SIZE}", latency=0.01)
    result = crawl_details(
        sim, tmp_path, "run", arguments={"details": "all", "language": "ru"}
    )
    assert result.returncode == 0, result.log[-3000:]
    products = {p.item_id: p for p in listed()}
    assert detail_calls(sim) == Counter(set(products))  # each once
    assert {c["params"]["language"] for c in sim.calls() if c["path"] == DETAIL} == {
        "ru"
    }
    # the listings feed holds the listings only; the details feed the details
    assert sorted(i["item_id"] for i in result.items) == sorted(products)
    assert all("skus" not in item for item in result.items)
    details = json_lines(tmp_path / "run.details.jsonl")
    assert sorted(d["item_id"] for d in details) == sorted(products)
    for detail in details:
        product = products[detail["item_id"]]
        expected = variants(0, product.item_id, 0)
        assert [s["id"] for s in detail["skus"]] == [v.sku_id for v in expected]
        assert [s["price"] for s in detail["skus"]] == [
            f"{v.price_fen(product) / 100:.2f}" for v in expected
        ]
        assert [s["stock"] for s in detail["skus"]] == [v.stock(0, 0) for v in expected]
        assert detail["language"] == "ru" and detail["category_id"] == CAT
    plan = crawl_details(
        sim, tmp_path, "plan", arguments={"details": "all", "dry_run": "true"}
    )
    assert f"Plus item details: ~{SIZE} calls (0.05 USD)" in plan.log
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert summary["details"]["detail_calls"] == SIZE
    assert summary["details"]["listing_calls"] == 2
    assert summary["details"]["detail_cost"] == {"amount": "0.050", "currency": "USD"}
    assert summary["items_exported"] == SIZE
    assert f"calls {SIZE + 2} (listings 2 ~0.004 USD, details {SIZE} ~0.05 USD)" in (
        result.log
    )


def test_details_none_by_default_sends_no_detail_call(simulator, tmp_path):
    sim = simulator(size=f"{CAT}={SIZE}")
    result = crawl_details(sim, tmp_path, "run")
    assert result.returncode == 0, result.log[-3000:]
    assert not detail_calls(sim, None)
    assert json_lines(tmp_path / "run.details.jsonl") == []


def test_a_failing_item_fails_alone_retries_apply_and_the_cap_holds(
    simulator, tmp_path
):
    first = [p.item_id for p in Catalog(0, {CAT: SIZE}).expected(CAT)][:5]
    sim = simulator(
        size=f"{CAT}={SIZE}",
        fault=[f"{first[0]}:0=422", f"{first[1]}:0=503"],
    )
    result = crawl_all(
        sim,
        tmp_path,
        TMAPI_MAX_DETAIL_CALLS=5,
        TMAPI_BACKOFF_BASE=0.01,
        TMAPI_DETAILS_FEED=tmp_path / "details.csv",
    )
    assert result.returncode == 0, result.log[-3000:]  # the listings are complete
    assert len(result.items) == SIZE
    assert detail_calls(sim, None) == Counter({**dict.fromkeys(first, 1), first[1]: 2})
    assert stat(result.log, "tmapi/details/failed") == 1
    assert stat(result.log, "tmapi/details/over_cap") == SIZE - 5
    assert f"details of item {first[0]} (en) failed" in result.log
    with (tmp_path / "details.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    skus = {
        item: [v.sku_id for v in variants(0, item, 0)] for item in first[1:]
    }  # a row per variant of the four items detailed
    assert sorted((int(r["item_id"]), r["sku.id"]) for r in rows) == sorted(
        (item, sku) for item, ids in skus.items() for sku in ids
    )


def test_the_call_budget_counts_detail_calls(simulator, tmp_path):
    sim = simulator(size=f"{CAT}={SIZE}")
    result = crawl_all(sim, tmp_path, TMAPI_MAX_CALLS=10, CONCURRENT_REQUESTS=1)
    assert "TMAPI_MAX_CALLS=10 reached" in result.log
    assert len(sim.calls()) == 10
    assert stat(result.log, "tmapi/calls") == 10


def test_bad_detail_choices_are_refused_before_any_call(simulator, tmp_path):
    sim = simulator(size=f"{CAT}={SIZE}")
    result = crawl_details(sim, tmp_path, "a", arguments={"details": "new"})
    assert result.returncode == 2
    assert "details=new: new, price and back are judged by the catalog store" in (
        result.log
    )
    result = crawl_details(
        sim,
        tmp_path,
        "b",
        arguments={"details": "all,new"},
        settings={"TMAPI_MAX_DETAIL_CALLS": 0},
    )
    assert result.returncode == 2
    assert "details='all,new': must be 'all', 'none', or one or more of" in result.log
    assert "TMAPI_MAX_DETAIL_CALLS='0': must be a whole number of calls" in result.log
    result = crawl_details(sim, tmp_path, "c", settings={"TMAPI_DETAILS": "gone"})
    assert result.returncode == 2 and "TMAPI_DETAILS='gone'" in result.log
    assert sim.calls() == []


def test_details_new_and_price_on_a_repeat_day(simulator, tmp_path):
    size = 80
    store = f"sqlite:///{tmp_path}/catalog.sqlite"
    options = {
        "arguments": {"details": "new,price"},
        "settings": {"TMAPI_STORE": store},
    }
    day0 = simulator(size=f"{CAT}={size}", day=0)
    result = crawl_details(day0, tmp_path, "day0", **options)
    assert result.returncode == 0, result.log[-3000:]
    before = {p.item_id: p.price for p in listed(size, 0)}
    assert detail_calls(day0) == Counter(set(before))  # every listing is new

    day1 = simulator(size=f"{CAT}={size}", day=1)
    # the dry run's estimate: not known after one run of the category
    plan = {**options, "arguments": {**options["arguments"], "dry_run": "true"}}
    result = crawl_details(day1, tmp_path, "plan1", **plan)
    assert result.returncode == 0, result.log[-3000:]
    assert "Plus item details: ~0 calls (not counted: category 51 (en): the " in (
        result.log
    )
    result = crawl_details(day1, tmp_path, "day1", **options)
    assert result.returncode == 0, result.log[-3000:]
    after = {p.item_id: p.price for p in listed(size, 1)}
    new = set(after) - set(before)
    repriced = {i for i in set(after) & set(before) if after[i] != before[i]}
    assert new and repriced
    assert detail_calls(day1) == Counter(new | repriced)  # once each, none else
    details = json_lines(tmp_path / "day1.details.jsonl")
    assert {d["item_id"] for d in details} == new | repriced
    # after two runs, the share that changed in the last one, times the listings
    result = crawl_details(day1, tmp_path, "plan2", **plan)
    chosen = len(new | repriced)
    assert f"Plus item details: ~{chosen} calls ({chosen * 0.002:g} USD)" in (
        result.log
    )


def details_in_flight(jobdir: Path) -> set[int]:
    """Items whose detail request the last run (killed) leased and the job
    never settled: in flight at the kill."""
    state = journal.load(jobdir / journal.JOURNAL_NAME)
    lines = (jobdir / journal.JOURNAL_NAME).read_text("utf-8").splitlines()
    leased: set[str] = set()
    for entry in map(json.loads, lines):
        if entry["e"] == "run":
            leased = set()
        elif entry["e"] == "leased":
            leased.add(entry["fp"])
    return {
        state.queued[fp]["meta"]["tmapi"]["item_id"]
        for fp in leased - set(state.settled)
        if "item_id" in state.queued[fp]["meta"]["tmapi"]
    }


def test_each_item_is_detailed_once_across_three_sigkills(simulator, tmp_path):
    size = 60
    sim = simulator(size=f"{CAT}={size}", latency=0.05)
    jobdir, log = tmp_path / "job", tmp_path / "log"
    output, details = tmp_path / "items.jsonl", tmp_path / "details.jsonl"
    arguments = {"cat_id": CAT, "details": "all"}
    settings = {"TMAPI_DETAILS_FEED": str(details)}
    in_flight: Counter[int] = Counter()  # item: kills it was in flight at
    for moment in (5, 25, 45):
        crawl = start_crawl(sim.url, jobdir, output, log, arguments, settings=settings)
        wait_until(crawl, lambda moment=moment: settled(jobdir) >= moment)
        crawl.send_signal(signal.SIGKILL)
        crawl.wait()
        wait_until_answered(sim)
        in_flight.update(details_in_flight(jobdir))
    crawl = start_crawl(sim.url, jobdir, output, log, arguments, settings=settings)
    assert crawl.wait(timeout=120) == 0, log.read_text()[-3000:]
    products = {p.item_id for p in listed(size)}
    calls = detail_calls(sim)
    assert set(calls) == products
    # an item detailed and journaled is never asked again; one in flight at a
    # kill is (once more for each such kill), unless the details feed
    # already held it
    asked_again = {item: n - 1 for item, n in calls.items() if n > 1}
    assert all(n <= in_flight[item] for item, n in asked_again.items()), (
        asked_again,
        in_flight,
    )
    delivered = Counter(d["item_id"] for d in json_lines(details))
    assert delivered == Counter(products)  # each once in the details feed
    assert sorted(i["item_id"] for i in json_lines(output)) == sorted(products)
    print(f"detail calls {sum(calls.values())} for {len(products)} items")


def test_three_redis_workers_detail_each_item_once(simulator, redis_factory, tmp_path):
    size = 80
    sim = simulator(size=f"{CAT}={size}", latency=0.1)
    server = redis_factory()
    workers = [
        start_worker(
            tmp_path,
            n,
            sim.url,
            server.url,
            {"cat_id": CAT, "details": "all"},
            {"TMAPI_DETAILS_FEED": str(tmp_path / f"details-{n}.jsonl")},
        )
        for n in range(3)
    ]
    codes = [worker.wait() for worker in workers]
    assert codes == [0, 0, 0], workers[0].log[-3000:]
    products = {p.item_id for p in listed(size)}
    assert detail_calls(sim) == Counter(products)  # once each, over all workers
    delivered = Counter(
        d["item_id"]
        for n in range(3)
        for d in json_lines(tmp_path / f"details-{n}.jsonl")
    )
    assert delivered == Counter(products)
    split = [stat(w.log, "tmapi/calls_to/details") for w in workers]
    print(f"detail calls per worker: {split}")


def test_redis_jobs_bring_their_own_details_and_split(
    simulator, redis_factory, tmp_path
):
    sizes = {71: 40, 72: 40, 73: 40, 74: 100}
    sim = simulator(size=[f"{c}={n}" for c, n in sizes.items()], result_cap=60)
    server = redis_factory()
    jobs = [
        '{"cat_id": 71, "details": "all"}',
        '{"cat_id": 72}',  # the workers' TMAPI_DETAILS: none
        '{"cat_id": 73, "details": "new"}',  # no store on the workers: refused
        '{"cat_id": 74, "split": "price", "details": "all"}',  # past the cap
    ]
    assert enqueue(server.url, *jobs).returncode == 0
    workers = [
        start_worker(
            tmp_path,
            n,
            sim.url,
            server.url,
            settings={"TMAPI_RESULT_CAP": 60},
            spider="category_jobs",
        )
        for n in range(2)
    ]
    assert [worker.wait() for worker in workers] == [0, 0], workers[0].log[-3000:]
    logs = "".join(worker.log for worker in workers)
    assert 'Skipped a bad job {"cat_id": 73, "details": "new"}: details=new' in logs
    catalog = expected_items(sizes)
    delivered = Counter(item["cat_id"] for w in workers for item in w.items)
    assert delivered == {71: 40, 72: 40, 74: 100}  # 74 whole: split in bands
    listed_from = {c["cat_id"] for c in sim.calls() if c["path"] != DETAIL}
    assert listed_from == {71, 72, 74}
    # each listing of the jobs that asked for details, once; none of the others
    assert detail_calls(sim) == Counter(catalog[71] | catalog[74])


def test_a_parquet_details_feed_holds_the_variants_as_a_list(simulator, tmp_path):
    import pyarrow.parquet as pq

    sim = simulator(size=f"{CAT}=5")
    result = crawl_all(sim, tmp_path, TMAPI_DETAILS_FEED=tmp_path / "details.parquet")
    assert result.returncode == 0, result.log[-3000:]
    rows = pq.read_table(tmp_path / "details.parquet").to_pylist()
    products = {p.item_id: p for p in listed(5)}
    assert sorted(r["item_id"] for r in rows) == sorted(products)
    for found in rows:
        product = products[found["item_id"]]
        expected = variants(0, product.item_id, 0)
        assert [s["id"] for s in found["skus"]] == [v.sku_id for v in expected]
        assert [s["price"] * 100 for s in found["skus"]] == [
            v.price_fen(product) for v in expected
        ]
        assert dict(found["skus"][0]["properties"])["colour"]
        assert found["tiers"][0]["price"] == product.price


def test_details_that_do_not_fit_are_counted_and_kept_never_a_crash(
    simulator, tmp_path
):
    products = listed(3)
    odd = products[0].item_id
    sim = simulator(size=f"{CAT}=3", quirk=f"{odd}:0=odd_details")
    result = crawl_all(sim, tmp_path)
    assert result.returncode == 0, result.log[-3000:]
    assert stat(result.log, "tmapi/details/with_problems") == 1
    for field in ("skus.stock", "skus.skuid", "video_url", "main_imgs"):
        assert stat(result.log, f"tmapi/details/unfit/{field}") == 1, field
    (line,) = [
        x for x in result.log.splitlines() if f"details of item {odd} (en): " in x
    ]
    assert "WARNING" in line and "skus.stock is 'many': must be a whole number" in line
    details = {d["item_id"]: d for d in json_lines(tmp_path / "run.details.jsonl")}
    assert set(details) == {p.item_id for p in products}
    found = details[odd]
    assert [s["id"] for s in found["skus"]] == [
        v.sku_id for v in variants(0, odd, 0)
    ]  # the variant without an id left out, the others whole
    assert found["skus"][0]["stock"] is None and found["video"] is None
    assert found["extra"] == {"x_detail_trace": {"kept": True}}
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert summary["details"]["unfit"]["skus.stock"] == 1
