"""The in-memory seen-set and the distinct ids of the coverage report."""

from __future__ import annotations

import random
import tracemalloc

from tmapi_crawler.contract.seen import DistinctIds, MemorySeenSet


def some_ids(count: int, seed: int = 1) -> list[int]:
    return random.Random(seed).sample(range(500_000_000_000, 10**12), count)


def test_memory_seen_set_says_whether_an_id_is_new():
    seen = MemorySeenSet()
    ids = some_ids(20_000)
    assert all(seen.add(i) for i in ids)
    assert not any(seen.add(i) for i in ids)
    assert len(seen) == len(ids)
    assert all(i in seen for i in ids)
    assert not any(i in seen for i in some_ids(1000, seed=2) if i not in set(ids))


def test_memory_seen_set_takes_ids_too_large_for_its_buckets():
    seen = MemorySeenSet(buckets=7)
    huge = [2**40, 2**63 + 5, 7 * 2**32, 1]
    assert all(seen.add(i) for i in huge)
    assert not any(seen.add(i) for i in huge)
    assert len(seen) == 4


def test_a_small_seen_set_keeps_whole_ids_in_its_few_buckets():
    seen = MemorySeenSet(buckets=61, member_bytes=8)
    ids = [*some_ids(5000), 2**60 + 1, 1]
    assert all(seen.add(i) for i in ids)
    assert not any(seen.add(i) for i in ids)
    assert len(seen) == len(ids) and all(i in seen for i in ids)
    assert not seen._overflow  # 8-byte members: every id fits


def test_distinct_ids_count_an_id_once_however_the_api_wrote_it():
    distinct = DistinctIds()
    distinct.update([991188728585, "991188728585", " 991188728585 ", 5])
    distinct.update([None, "abc", None, True, "abc", "5²"])  # broken ids, as text
    assert len(distinct) == 6  # two ids, and None, "abc", True, "5²"
    distinct.update(some_ids(3000))
    assert len(distinct) == 3006


def test_distinct_ids_are_compact():
    """The coverage report counts every category's distinct ids: a few KB per
    category and 8 bytes per id, where a set of the ids as text cost ~100."""
    ids = some_ids(100_000)
    tracemalloc.start()
    distinct = DistinctIds()
    distinct.update(ids)
    compact, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    as_text = {str(i) for i in ids}
    plain, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(distinct) == len(as_text) == 100_000
    assert compact / len(ids) < 12
    assert plain / compact > 8
