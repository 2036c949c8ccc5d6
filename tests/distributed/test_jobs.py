"""Jobs for Redis-fed workers: the check both ``tmapi-enqueue`` and workers run."""

from __future__ import annotations

import pytest

from tmapi_crawler.distributed.jobs import JobError, parse_job


@pytest.mark.parametrize(
    ("job", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"cat_id": "x1"}', "cat_id='x1'"),
        ('{"cat_id": 5, "sort": "newest"}', "sort='newest'"),
        ('{"cat_id": 5, "colour": "red"}', "colour='red'"),
        ('{"cat_id": 5, "subtree": true}', "subtree=true is not taken by a job"),
        ('{"cat_id": 5, "dry_run": "yes"}', "dry_run=true is not taken by a job"),
    ],
)
def test_a_bad_job_is_refused_naming_the_problem(job, problem):
    with pytest.raises(JobError, match=problem):
        parse_job(job)


def test_a_job_takes_json_values_like_spider_arguments():
    job = '{"cat_id": 1031922, "language": "en", "sort": "sales", "price_start": "1"}'
    arguments = parse_job(job)
    assert arguments.cat_id == (1031922,) and arguments.sort == "sales"


def test_a_job_takes_its_own_details_and_split():
    arguments = parse_job('{"cat_id": 5, "details": "new,price", "split": "price"}')
    assert arguments.details == {"new", "price"} and arguments.split == "price"
    assert not parse_job('{"cat_id": 5, "subtree": false}').subtree
