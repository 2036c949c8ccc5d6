"""Spider arguments: every bad one refused with its name and what is allowed,
whatever is given (property-based: see tests/strategies.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import argument_names, argument_values
from tmapi_crawler.contract.arguments import (
    ARGUMENT_NAMES,
    ArgumentError,
    parse_arguments,
)


def problems_of(**given: str) -> list[str]:
    with pytest.raises(ArgumentError) as raised:
        parse_arguments(given)
    return raised.value.problems


def test_good_arguments_become_one_query_per_category_and_language():
    arguments = parse_arguments(
        {
            "cat_id": "1031922, 7,1031922",
            "language": "en,zh",
            "sort": "price_up",
            "page_size": "50",
            "price_start": "1",
            "price_end": "9.90",
            "free_shipping": "YES",
            "new_arrival": "0",
            "max_pages": "3",
            "_job": "scrapyd-id",
        }
    )
    queries = arguments.queries()
    assert [(q.cat_id, q.language) for q in queries] == [
        (1031922, "en"),
        (1031922, "zh"),
        (7, "en"),
        (7, "zh"),
    ]
    assert queries[0].filters() == {
        "price_start": "1",
        "price_end": "9.9",
        "new_arrival": False,
        "free_shipping": True,
    }
    assert arguments.max_pages == 3


@pytest.mark.parametrize("word", ["true", "1", "yes", "True", "YES"])
def test_true_words(word):
    assert (
        parse_arguments({"cat_id": "1", "is_super_factory": word}).is_super_factory
        is True
    )


@pytest.mark.parametrize("word", ["false", "0", "no", "No"])
def test_false_words(word):
    assert (
        parse_arguments(
            {"cat_id": "1", "support_dropshipping": word}
        ).support_dropshipping
        is False
    )


@pytest.mark.parametrize(
    ("given", "named", "allowed"),
    [
        ({"cat_id": "abc"}, "cat_id='abc'", "positive integer"),
        ({"cat_id": "1,2x"}, "cat_id='1,2x'", "positive integer"),
        ({"cat_id": "0"}, "cat_id='0'", "positive integer"),
        ({"cat_id": "5²"}, "cat_id='5²'", "positive integer"),  # isdigit, not int
        ({"cat_id": "1", "language": "fr"}, "language='fr'", "en, zh, ru, vi, ja, ko"),
        ({"cat_id": "1", "sort": "cheapest"}, "sort='cheapest'", "'price_up'"),
        ({"cat_id": "1", "page_size": "0"}, "page_size='0'", "1 to 50"),
        ({"cat_id": "1", "page_size": "-5"}, "page_size='-5'", "1 to 50"),
        ({"cat_id": "1", "page_size": "51"}, "page_size='51'", "1 to 50"),
        ({"cat_id": "1", "max_pages": "0"}, "max_pages='0'", "1 or more"),
        ({"cat_id": "1", "price_start": "cheap"}, "price_start='cheap'", "a number"),
        ({"cat_id": "1", "price_end": "-1"}, "price_end='-1'", "0 or more"),
        (
            {"cat_id": "1", "free_shipping": "maybe"},
            "free_shipping='maybe'",
            "true, false",
        ),
        ({"cat_id": "1", "colour": "red"}, "colour='red'", "allowed: "),
        (
            {"cat_id": "1", "price_start": "9", "price_end": "2"},
            "price_start/price_end",
            "above price_end",
        ),
        ({}, "cat_id", "required"),
    ],
)
def test_each_bad_argument_is_named_with_what_is_allowed(given, named, allowed):
    problems = problems_of(**given)
    assert len(problems) == 1
    assert problems[0].startswith(named)
    assert allowed in problems[0]


def test_every_bad_argument_is_reported_at_once_in_the_given_order():
    problems = problems_of(cat_id="x", sort="y", language="fr", colour="red")
    assert [p.split("=")[0] for p in problems] == [
        "cat_id",
        "sort",
        "language",
        "colour",
    ]


@pytest.mark.parametrize(("word", "expected"), [("true", True), ("NO", False)])
def test_dry_run_takes_boolean_words(word, expected):
    assert parse_arguments({"cat_id": "1", "dry_run": word}).dry_run is expected
    assert parse_arguments({"cat_id": "1"}).dry_run is False


def test_a_dry_run_word_that_is_not_boolean_is_named():
    with pytest.raises(ArgumentError, match=r"dry_run='maybe': must be one of true"):
        parse_arguments({"cat_id": "1", "dry_run": "maybe"})


# --- hostile arguments: a crawl, or every bad one named --------------------


@given(arguments=st.dictionaries(argument_names, argument_values, max_size=6))
def test_any_arguments_parse_or_name_every_bad_one(arguments):
    """Strings from ``-a`` or JSON values from an enqueued job: either a valid
    crawl, or an ArgumentError whose every line names an argument."""
    try:
        parsed = parse_arguments(arguments)
    except ArgumentError as error:
        assert error.problems
        for problem in error.problems:
            named = [*map(str, arguments), *ARGUMENT_NAMES, "price_start/price_end"]
            assert any(
                problem.startswith((f"{name}=", f"{name}:")) for name in named
            ), problem
        assert "nothing was sent" in str(error)
        return
    assert parsed.cat_id and all(cat_id > 0 for cat_id in parsed.cat_id)
    assert parsed.queries()


@given(cat_id=st.text(max_size=15))
def test_any_category_text_parses_or_names_cat_id(cat_id):
    try:
        parsed = parse_arguments({"cat_id": cat_id})
    except ArgumentError as error:
        assert any(problem.startswith("cat_id") for problem in error.problems)
    else:
        assert all(str(c) in cat_id for c in parsed.cat_id)
