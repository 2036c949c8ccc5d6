"""Jobs for Redis-fed workers: ``tmapi-enqueue`` and the check both sides run.

A job is a JSON object of spider arguments, such as
``{"cat_id": 1031922, "language": "en", "sort": "sales", "price_start": "1"}``.
``tmapi-enqueue`` (or ``python -m tmapi_crawler.distributed.jobs``) validates every job
as ``scrapy crawl category`` validates its arguments and queues them all on
``tmapi:<crawl id>:jobs``, or, if any is bad, refuses them all with a message
per problem and queues nothing. Workers (``scrapy crawl category_jobs``) check
each job again with :func:`parse_job`, and log and skip a bad one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from redis.exceptions import RedisError

from tmapi_crawler.contract.arguments import JobError, parse_job
from tmapi_crawler.distributed.connection import connect, safe_url
from tmapi_crawler.distributed.queue import CrawlKeys

DEFAULT_CRAWL_ID = "category_jobs"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tmapi-enqueue",
        description="Queue validated crawl jobs for `scrapy crawl category_jobs` "
        "workers. Nothing is queued if any job is bad.",
    )
    parser.add_argument(
        "jobs",
        nargs="+",
        metavar="JOB",
        help='a JSON object such as \'{"cat_id": 1031922, "sort": "sales"}\', '
        "or - to read one per line from standard input",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="the workers' Redis (default: $REDIS_URL)",
    )
    parser.add_argument(
        "--crawl-id",
        default=DEFAULT_CRAWL_ID,
        help="the workers' TMAPI_CRAWL_ID (default: %(default)s)",
    )
    return parser


def _read_jobs(given: list[str]) -> list[str]:
    jobs: list[str] = []
    for job in given:
        if job == "-":
            jobs += [line for line in sys.stdin.read().splitlines() if line.strip()]
        else:
            jobs.append(job)
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    if not options.redis_url:
        parser.error("no Redis: give --redis-url or set REDIS_URL")
    jobs = _read_jobs(options.jobs)
    problems = []
    for number, job in enumerate(jobs, 1):
        try:
            parse_job(job)
        except JobError as exc:
            problems.append(f"  job {number} {job.strip()}: {exc}")
    if problems or not jobs:
        print(
            "tmapi-enqueue: refused, nothing was queued:\n" + "\n".join(problems),
            file=sys.stderr,
        )
        return 2
    key = CrawlKeys.of(options.crawl_id).jobs
    try:
        connect(options.redis_url).rpush(
            key, *(json.dumps(json.loads(j)) for j in jobs)
        )
    except RedisError as exc:
        print(
            f"tmapi-enqueue: Redis at {safe_url(options.redis_url)}: {exc}; "
            "nothing was queued",
            file=sys.stderr,
        )
        return 1
    print(f"queued {len(jobs)} job(s) on {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
