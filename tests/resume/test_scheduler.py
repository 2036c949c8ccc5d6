"""The job journal in-process: the scheduler the add-on wires with ``JOBDIR``
reports what it queues and hands out, and a new run over the same job
directory schedules what the last one left unsettled, once. The same in real
crawls stopped, killed and resumed: tests/crawls/test_resume.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request

from tests.conftest import SENTINEL_TOKEN
from tmapi_crawler.resume import journal
from tmapi_crawler.resume.scheduler import JournaledScheduler
from tmapi_crawler.signals import request_settled

pytestmark = pytest.mark.timeout(60)

CATEGORIES = "5,6,7"


def lines(jobdir: Path) -> list[dict[str, Any]]:
    path = jobdir / journal.JOURNAL_NAME
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def drain(scheduler: Any) -> list[Request]:
    taken = []
    while (request := scheduler.next_request()) is not None:
        taken.append(request)
    return taken


@pytest.fixture
def job(open_crawler, tmp_path):
    """``job()``: a crawl of three categories over one job directory."""
    jobdir = tmp_path / "job"

    def run() -> Any:
        crawler = open_crawler({"JOBDIR": str(jobdir)}, cat_id=CATEGORIES)
        assert isinstance(crawler.scheduler, JournaledScheduler)
        return crawler

    run.jobdir = jobdir
    return run


def fingerprint(crawler: Any, request: Request) -> str:
    return crawler.crawler.request_fingerprinter.fingerprint(request).hex()


def test_the_journal_records_what_is_queued_handed_out_and_settled(job):
    crawler = job()
    scheduler = crawler.scheduler
    requests = crawler.start_requests()
    queued = [fingerprint(crawler, request) for request in requests]
    assert all(scheduler.enqueue_request(request) for request in requests)
    first, second = scheduler.next_request(), scheduler.next_request()
    crawler.crawler.signals.send_catch_log(
        request_settled, request=first, outcome="failed"
    )
    entries = lines(job.jobdir)
    assert [entry["e"] for entry in entries] == [
        "run", "queued", "queued", "queued", "leased", "leased", "settled",
    ]  # fmt: skip
    assert entries[0]["n"] == 1
    assert [entry["fp"] for entry in entries[1:4]] == queued
    assert [entry["request"]["url"] for entry in entries[1:4]] == [
        request.url for request in requests
    ]
    leased = [entries[4]["fp"], entries[5]["fp"]]
    assert leased == [fingerprint(crawler, first), fingerprint(crawler, second)]
    cover = entries[6].pop("cov")  # a failed page counts in its query's coverage
    assert entries[6] == {
        "e": "settled", "fp": leased[0], "items": 0, "outcome": "failed",
    }  # fmt: skip
    assert (
        cover["failed"] is True
        and cover["cat_id"] == first.meta["tmapi"]["query"]["cat_id"]
    )
    assert SENTINEL_TOKEN not in (job.jobdir / journal.JOURNAL_NAME).read_text()
    state = journal.load(job.jobdir / journal.JOURNAL_NAME)
    assert set(state.pending) == set(queued) - {leased[0]}
    assert state.in_flight == {leased[1]}


def test_a_new_run_schedules_the_unsettled_requests_once(job):
    first_run = job()
    scheduler = first_run.scheduler
    requests = first_run.start_requests()
    for request in requests:
        scheduler.enqueue_request(request)
    settled, in_flight = scheduler.next_request(), scheduler.next_request()
    first_run.crawler.signals.send_catch_log(
        request_settled, request=settled, outcome="failed"
    )
    # the run ends cleanly: Scrapy's own queue on disk holds the third request
    first_run.close()
    left = {fingerprint(first_run, r) for r in requests}
    left.remove(fingerprint(first_run, settled))
    assert fingerprint(first_run, in_flight) in left and len(left) == 2

    second_run = job()
    again = drain(second_run.scheduler)
    assert sorted(fingerprint(second_run, r) for r in again) == sorted(left)
    assert all(request.dont_filter for request in again)
    # the spider's start requests again: every one is known, none is queued
    restarted = second_run.start_requests()
    assert not any(second_run.scheduler.enqueue_request(r) for r in restarted)
    assert drain(second_run.scheduler) == []
    runs = [entry["n"] for entry in lines(job.jobdir) if entry["e"] == "run"]
    assert runs == [1, 2]
