"""What a user asks a crawl for, validated before any paid call.

Spider arguments arrive as strings (``-a cat_id=1,2 -a free_shipping=yes``);
:func:`parse_arguments` turns them into :class:`CrawlArguments` or raises one
:class:`ArgumentError` that names every bad argument and what is allowed. A
job for the Redis-fed workers is the same arguments as a JSON object
(:func:`parse_job`). Free of Scrapy, so the enqueue command and the workers
validate jobs the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from tmapi_crawler.contract.api import (
    LANGUAGES,
    CategoryQuery,
    Language,
    QueryOptions,
    int_of_digits,
    parse_boolean,
)
from tmapi_crawler.contract.details import parse_detail_kinds

IGNORED_ARGUMENTS = frozenset({"_job"})  # scrapyd passes the job id as an argument


def _split(value: object) -> list[object]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value]


class CrawlArguments(QueryOptions):
    """The categories and languages to crawl, the query options, and the caps."""

    cat_id: tuple[int, ...] = Field(min_length=1)
    language: tuple[Language, ...] = ("en",)
    max_pages: int | None = Field(default=None, ge=1)
    split: Literal["price", "none"] | None = None  # None: the TMAPI_SPLIT setting
    subtree: bool = False  # crawl every leaf category under each cat_id
    dry_run: bool = False  # page 1 of each category only: print the plan
    # which listings get a detail call (None: the TMAPI_DETAILS setting)
    details: frozenset[str] | None = None

    @field_validator("details", mode="before")
    @classmethod
    def _detail_kinds(cls, value: object) -> frozenset[str] | None:
        try:
            return None if value is None else parse_detail_kinds(value)
        except ValueError as exc:
            raise PydanticCustomError("details", str(exc)) from None

    @field_validator("subtree", "dry_run", mode="before")
    @classmethod
    def _boolean_word(cls, value: object) -> bool:
        return parse_boolean(value)

    @field_validator("cat_id", mode="before")
    @classmethod
    def _category_ids(cls, value: object) -> tuple[int, ...]:
        ids: list[int] = []
        for part in _split(value):
            text = str(part)
            number = None if isinstance(part, bool) else int_of_digits(text)
            if not number:  # None or 0
                raise PydanticCustomError(
                    "cat_id",
                    "'{part}' is not a category id; give one positive integer "
                    "or several separated by commas",
                    {"part": text},
                )
            if number not in ids:
                ids.append(number)
        return tuple(ids)

    @field_validator("language", mode="before")
    @classmethod
    def _languages(cls, value: object) -> tuple[object, ...]:
        languages = [part for part in _split(value) if isinstance(part, str)]
        unknown = [part for part in languages if part not in LANGUAGES]
        if unknown or not languages:
            raise PydanticCustomError(
                "language",
                "must be one of {allowed} (or several separated by commas)",
                {"allowed": ", ".join(LANGUAGES)},
            )
        return tuple(dict.fromkeys(languages))

    def queries(self) -> list[CategoryQuery]:
        """One query per category and language, in the order given."""
        options = QueryOptions.model_fields.keys()
        shared = {name: getattr(self, name) for name in options}
        return [
            CategoryQuery(cat_id=cat_id, language=language, **shared)
            for cat_id in self.cat_id
            for language in self.language
        ]


ARGUMENT_NAMES = tuple(CrawlArguments.model_fields)

_MESSAGES = {
    "missing": "required: one category id, or several separated by commas",
    "extra_forbidden": "unknown argument; allowed: " + ", ".join(ARGUMENT_NAMES),
}
_EXPECTED = {
    "page_size": "a whole number from 1 to 50",
    "max_pages": "a whole number, 1 or more",
    "price_start": "a number, 0 or more (such as 9.9)",
    "price_end": "a number, 0 or more (such as 9.9)",
    "split": "'price' (slice categories past the result cap into price bands) "
    "or 'none'",
}


class ArgumentError(ValueError):
    """Bad crawl arguments: every problem at once, each naming its argument."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"invalid crawl arguments, nothing was sent:\n{lines}")


def _describe(error: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[str, str]:
    """(argument name, one line naming it, its value and what is allowed)."""
    if not error["loc"]:  # a check across fields: the price range
        return "price_start", f"price_start/price_end: {error['msg']}"
    name = str(error["loc"][0])
    message = _MESSAGES.get(error["type"])
    if message is None and name in _EXPECTED:
        message = f"must be {_EXPECTED[name]}"
    if message is None:
        message = error["msg"].replace("Input should be", "must be")
    if name in given:
        return name, f"{name}={given[name]!r}: {message}"
    return name, f"{name}: {message}"


def parse_arguments(given: Mapping[str, Any]) -> CrawlArguments:
    """Validate spider arguments (strings, or JSON values from a job)."""
    wanted = {k: v for k, v in given.items() if k not in IGNORED_ARGUMENTS}
    try:
        return CrawlArguments.model_validate(wanted)
    except ValidationError as exc:
        order = {name: position for position, name in enumerate(given)}
        described = sorted(
            (_describe(error, given) for error in exc.errors()),
            key=lambda named: order.get(named[0], len(order)),
        )
        problems = [problem for _, problem in described]
        raise ArgumentError(list(dict.fromkeys(problems))) from None


class JobError(ValueError):
    """A job that cannot run: not a JSON object, or bad arguments."""


# the arguments of a crawl that a job cannot take, and why
NOT_IN_JOBS = {
    "subtree": "subtree=true is not taken by a job: crawl the tree with "
    "`scrapy crawl category -a subtree=true` (with REDIS_URL its pages are "
    "shared by the workers), or queue a job per leaf category",
    "dry_run": "dry_run=true is not taken by a job: plan it with "
    "`scrapy crawl category -a dry_run=true`",
}


def parse_job(text: str | bytes) -> CrawlArguments:
    """A job's crawl arguments, or :class:`JobError` saying what is wrong
    (an argument a job cannot take, such as ``subtree``, included)."""
    try:
        job: Any = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobError(f"not JSON ({exc})") from None
    except RecursionError:
        raise JobError("not JSON (nested too deep)") from None
    if not isinstance(job, dict):
        raise JobError("not a JSON object of crawl arguments")
    try:
        arguments = parse_arguments(job)
    except ArgumentError as exc:
        raise JobError("; ".join(exc.problems)) from None
    if refused := [
        why for name, why in NOT_IN_JOBS.items() if getattr(arguments, name)
    ]:
        raise JobError("; ".join(refused))
    return arguments
