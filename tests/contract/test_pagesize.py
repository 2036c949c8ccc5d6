"""The page size served, read from page 1 answers (no Scrapy, no crawl)."""

from __future__ import annotations

import pytest

from tmapi_crawler.contract.api import Page, page_from_data
from tmapi_crawler.contract.pagesize import PageSizeLearner, is_refusal, served_size


def answer(items: int, page_size: int, total: int, has_next: bool) -> Page:
    data = {
        "page": 1,
        "page_size": page_size,
        "total_count": total,
        "has_next_page": has_next,
        "items": [{"item_id": n} for n in range(items)],
    }
    return page_from_data(data, 1, 50)


@pytest.mark.parametrize(
    ("reading", "page", "served", "last_page"),
    [
        ("served", answer(50, 50, 2000, True), 50, 40),
        ("clamped quietly", answer(20, 20, 2000, True), 20, 100),
        ("clamped, echoing the size asked", answer(20, 50, 2000, True), 20, 100),
        ("the whole query fit", answer(7, 50, 7, False), None, 1),
        ("the whole query fit, clamped quietly", answer(7, 20, 7, False), 20, 1),
    ],
)
def test_each_reading_of_page_1_plans_in_the_size_served(
    reading, page, served, last_page
):
    assert served_size(page, 50) == served, reading
    assert page.last_page == last_page, reading


def test_an_echoed_size_is_noted_as_a_problem_of_the_page():
    page = answer(20, 50, 2000, True)
    assert page.page_size == 20
    assert page.problems == ("page_size is 50 but 20 are served",)


def test_the_documented_size_is_taken_at_its_word():
    # the documentation's own sample: 3 items shown of a page of 20
    assert answer(3, 20, 2000, True).page_size == 20


def test_the_first_query_probes_and_the_others_wait_for_its_answer():
    learner = PageSizeLearner(probe=50)
    assert learner.next_size() == 50
    assert learner.next_size() is None  # pending: wait
    # clamped: 50 is accepted, 20 served; asking 50 costs nothing more
    assert learner.answered(50, answer(20, 50, 2000, True)) == 50
    assert (learner.next_size(), learner.served) == (50, 20)
    assert learner.answered(50, answer(20, 20, 2000, True)) is None  # nothing new


def test_a_refusal_means_the_documented_size():
    learner = PageSizeLearner(probe=50)
    assert learner.next_size() == 50
    assert is_refusal(50, 422) and not is_refusal(20, 422) and not is_refusal(50, 500)
    assert learner.refused() == 20
    assert (learner.next_size(), learner.served) == (20, 20)


def test_a_query_that_fit_on_page_1_shows_the_size_accepted_not_served():
    learner = PageSizeLearner(probe=50)
    learner.next_size()
    assert learner.answered(50, answer(7, 50, 7, False)) == 50
    assert (learner.next_size(), learner.served) == (50, None)
    learner.answered(50, answer(50, 50, 2000, True))  # a later page 1 shows it
    assert learner.served == 50


def test_a_probe_that_failed_otherwise_passes_the_probe_on():
    learner = PageSizeLearner(probe=50)
    learner.next_size()
    learner.failed()
    assert learner.next_size() == 50


def test_a_remembered_size_is_asked_at_once_and_the_documented_one_never_waits():
    learner = PageSizeLearner(probe=50, known=20)
    assert learner.next_size() == learner.next_size() == 20
    documented = PageSizeLearner(probe=20)
    assert documented.next_size() == documented.next_size() == 20
