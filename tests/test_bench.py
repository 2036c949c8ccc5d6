"""Each benchmark runs at a tiny size: the harness works, its runs are valid.

No timing is asserted here (that is what ``make bench`` is for). A benchmark
raises when one of its measured runs did not do its job (exit code, items
delivered, calls made), so these tests fail if a benchmark measures a broken
crawl or cannot run at all.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bench import capped, cpu, details, fanout, memory, pagesize, scaleout, store
from bench.common import bracketed, paired
from bench.report import render

pytestmark = pytest.mark.timeout(240)

NUMBER = re.compile(r"-?[\d,]+(\.\d+)?")


def assert_measured(section) -> None:
    assert section.rows, section
    for row in section.rows:
        assert NUMBER.match(row.figure), row
        assert NUMBER.match(row.baseline), row
    text = render([section], "tiny", datetime.now(UTC), 1.0)
    assert f"## {section.number}. {section.title}" in text
    assert "| Scrapy |" in text


def test_fanout_benchmark_runs(tmp_path):
    section = fanout.run("tiny", tmp_path)
    assert_measured(section)
    assert [row.met for row in section.rows if row.target != "-"] != []
    # the slow case (1 s a call beyond tiny): first and second run, judged
    slow = [row for row in section.rows if "s a call" in row.measure]
    assert len([row for row in slow if row.met is not None]) == 2, slow


def test_capped_benchmark_runs(tmp_path):
    section = capped.run("tiny", tmp_path)
    assert_measured(section)
    lost = [row for row in section.rows if row.measure.startswith("pages lost")]
    # each 503 timing at the crawl size (one at tiny), and at the slow
    # latency (1 s beyond tiny); the crawler delivers every page
    assert len(lost) == 4 and all(row.figure == "0" for row in lost), lost
    assert sum("s a call" in row.measure for row in lost) == 2, lost


def test_cpu_benchmark_runs(tmp_path):
    assert_measured(cpu.run("tiny", tmp_path))


def test_memory_benchmark_runs(tmp_path):
    section = memory.run("tiny", tmp_path)
    assert_measured(section)
    judged = [row for row in section.rows if row.met is not None]
    assert any("peak RSS" in row.measure and "growth" in row.measure for row in judged)


def test_scaleout_benchmark_runs(tmp_path):
    section = scaleout.run("tiny", tmp_path)
    assert_measured(section)
    # workers on one token against a capped account: a case of its own
    assert any("one token, account cap" in row.measure for row in section.rows)


def test_store_benchmark_runs(tmp_path):
    section = store.run("tiny", tmp_path)
    assert_measured(section)
    assert any("SQLite" in row.measure and row.met is not None for row in section.rows)
    # the worst case (bound by the CPU) and a crawl bound by the API's latency
    assert any("ms a call" in row.measure for row in section.rows)


def test_each_subject_run_is_compared_with_the_baseline_runs_either_side():
    order: list[str] = []
    clock = iter(range(100))

    def run(name: str):
        def one() -> dict[str, float]:
            order.append(name)
            return {"pages/s": float(next(clock))}

        return one

    baselines, subjects = bracketed(2, run("B"), run("S1"), run("S2"))
    assert order == ["B", "S1", "B", "S2", "B", "S1", "B", "S2", "B"]
    assert [b["pages/s"] for b in baselines] == [0, 2, 4, 6, 8]
    (s1, s1_brackets), (s2, s2_brackets) = subjects
    assert [r["pages/s"] for r in s1] == [1, 5]
    assert [b["pages/s"] for b in s1_brackets] == [1, 5]  # (0+2)/2, (4+6)/2
    assert [r["pages/s"] for r in s2] == [3, 7]
    assert [b["pages/s"] for b in s2_brackets] == [3, 7]
    # a machine slowing steadily: the ratio is 1, not tilted by the drift
    assert paired(s1, s1_brackets, "pages/s").median == 1


def test_pagesize_benchmark_runs(tmp_path):
    section = pagesize.run("tiny", tmp_path)
    assert_measured(section)
    # every reading of the page size served: within the calls bound, no item lost
    judged = [row for row in section.rows if row.met is not None]
    assert len(judged) == 8 and all(row.met for row in judged), judged


def test_details_benchmark_runs(tmp_path):
    section = details.run("tiny", tmp_path)
    assert_measured(section)
    # detail calls = listings chosen, in each case (the counts are exact)
    chosen = [row for row in section.rows if row.measure.startswith("detail calls")]
    assert len(chosen) == 4 and all(row.met for row in chosen), chosen
    # the window shared under the cap (one 503 timing at tiny), judged
    shared = [row for row in section.rows if "s a call" in row.measure]
    assert len([row for row in shared if row.met is not None]) == 3, shared
