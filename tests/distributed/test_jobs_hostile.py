"""Whatever a job enqueued for the workers holds, it parses or is refused with
a reason (property-based: see tests/strategies.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import argument_names, argument_values, json_values
from tmapi_crawler.distributed.jobs import JobError, parse_job


@given(
    job=st.binary(max_size=300)
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(argument_names, argument_values, max_size=5).map(
        lambda job: json.dumps(job, default=str).encode()
    )
)
def test_any_enqueued_job_parses_or_is_refused_with_a_reason(job):
    try:
        parsed = parse_job(job)
    except JobError as error:
        assert str(error)
    else:
        assert parsed.queries()


def test_a_job_nested_too_deep_is_refused():
    with pytest.raises(JobError, match="not JSON"):
        parse_job("[" * 100_000)
