"""Which pages follow which answer: pure decisions, no network."""

from __future__ import annotations

import sys

import pytest

from tmapi_crawler.contract.api import CategoryQuery, Page
from tmapi_crawler.contract.pagination import CategoryProgress, PageSet, pages_to_follow


def page(
    no: int, total: int | None, has_next: bool, size: int = 20, items: int = 1
) -> Page:
    return Page(no, size, total, has_next, [{"item_id": i} for i in range(items)])


def test_page_one_plans_every_page_total_count_promises():
    assert pages_to_follow(1, 1, page(1, 2000, True)) == range(2, 101)
    assert pages_to_follow(1, 1, page(1, 45, True)) == range(2, 4)


def test_max_pages_caps_the_plan():
    assert pages_to_follow(1, 1, page(1, 2000, True), max_pages=5) == range(2, 6)
    assert pages_to_follow(1, 1, page(1, 2000, True), max_pages=1) == range(0)


def test_a_single_page_category_plans_nothing():
    assert pages_to_follow(1, 1, page(1, 7, False)) == range(0)


def test_pages_inside_the_plan_add_nothing():
    assert pages_to_follow(37, 100, page(37, 2000, True)) == range(0)


def test_the_last_planned_page_that_still_has_a_next_page_is_followed():
    assert pages_to_follow(3, 3, page(3, 45, True)) == range(4, 5)
    assert pages_to_follow(4, 4, page(4, 45, True), max_pages=4) == range(0)


def test_has_next_page_true_with_a_total_count_of_one_page_is_still_followed():
    assert pages_to_follow(1, 1, page(1, 20, True)) == range(2, 3)


def test_a_page_saying_it_is_the_last_ends_the_category_early():
    progress = CategoryProgress(CategoryQuery(cat_id=1))
    progress.record(4, page(4, 200, False))
    assert progress.end == 4
    assert progress.past_end(5) and not progress.past_end(4)


def test_an_empty_page_that_says_more_follow_ends_the_walk():
    """An API that keeps saying has_next_page on empty pages is not followed for
    ever: the frontier page being empty ends the category."""
    assert pages_to_follow(3, 3, page(3, 45, True, items=0)) == range(0)
    assert pages_to_follow(3, 3, page(3, 45, True, items=20)) == range(4, 5)
    # page 1 still plans what total_count promises, at least page 2
    assert pages_to_follow(1, 1, page(1, 0, True, items=0)) == range(2, 3)


def test_a_page_set_holds_each_page_once_in_a_few_bytes():
    pages = PageSet([3, 1, 3])
    for page in (100, 2, 100, 9):
        pages.add(page)
    assert len(pages) == 5
    assert list(pages) == [1, 2, 3, 9, 100]
    assert 9 in pages and 4 not in pages and 1000 not in pages and -1 not in pages
    full = PageSet(range(1, 101))
    assert len(full) == 100 and list(full) == list(range(1, 101))
    assert sys.getsizeof(full._bits) < 100 < sys.getsizeof(set(range(1, 101))) / 50
    with pytest.raises(ValueError):
        pages.add(-1)
