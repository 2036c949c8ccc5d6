"""What every benchmark shares: processes timed by the kernel, the simulator's
request log as the clock, paired runs and their medians, and result tables.

Figures come from the simulator's request log (first call's arrival to the
last call's answer), not from the client's wall time, so interpreter start-up
and shutdown are not counted for either side. Baseline and subject run
interleaved (baseline, subject, baseline, subject...) to share the noise of a
busy machine, or each subject's run between two baseline runs and compared
with their mean (:func:`bracketed`); each figure is the median of the runs,
each ratio the median of the per-pair ratios, with its spread (lowest to
highest).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_TOKEN = "bench-token-0000"  # any non-empty token is accepted by the simulator
# The baseline spider asks the API's documented 20 items a page: the crawler
# asks the same, so both fetch the same pages (benchmark 7 measures the page
# size the crawler learns by default).
SAME_PAGES = {"TMAPI_PAGE_SIZE_PROBE": 20}


@dataclass(frozen=True)
class ProcessRun:
    """A child process as the kernel saw it."""

    returncode: int
    output: str
    wall: float  # seconds
    cpu: float  # user + system seconds
    max_rss: int  # peak resident set, bytes


def run_process(
    argv: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str | None] | None = None,
    timeout: float = 900,
    log: Path | None = None,
) -> ProcessRun:
    """Run *argv* to the end; peak RSS and CPU time come from ``wait4``, so
    they are this child's alone (its own children are not counted). *env* adds
    to the environment (None removes a variable)."""
    # a single-process crawl unless told otherwise, whatever the shell has set
    given: dict[str, str | None] = {
        **os.environ,
        "TMAPI_TOKEN": BENCH_TOKEN,
        "REDIS_URL": None,
        # nothing remembered from another run (the learned limit) unless told
        "XDG_CACHE_HOME": tempfile.mkdtemp(prefix="tmapi-bench-cache-"),
        **(env or {}),
    }
    merged = {name: value for name, value in given.items() if value is not None}
    log = log or Path(os.devnull)
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            argv, cwd=cwd or ROOT, env=merged, stdout=sink, stderr=subprocess.STDOUT
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    output = log.read_text("utf-8", "replace") if log.name != os.devnull else ""
    return ProcessRun(
        returncode=process.returncode,
        output=output,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_rss=usage.ru_maxrss * 1024,
    )


def crawl_argv(
    output: Path,
    arguments: dict[str, Any],
    settings: dict[str, Any],
    spider: str = "category",
) -> list[str]:
    """``scrapy crawl category``, exactly as a user runs it."""
    argv = [sys.executable, "-m", "scrapy", "crawl", spider, "-O", str(output)]
    for name, value in arguments.items():
        argv += ["-a", f"{name}={value}"]
    for name, value in settings.items():
        argv += ["-s", f"{name}={value}"]
    return argv


def baseline_argv(
    output: Path | None,
    base_url: str,
    cat_ids: object,
    follow: str,
    concurrency: int,
    *extra: str,
) -> list[str]:
    """``scrapy runspider`` of bench/baseline_spider.py: the plain spider a user
    would write, ``follow=next`` (has_next_page only) or ``follow=all``; *extra*
    are more ``-a``/``-s`` options; *output* None: no feed."""
    feed = [] if output is None else ["-O", str(output)]
    return [
        sys.executable, "-m", "scrapy", "runspider",
        str(ROOT / "bench" / "baseline_spider.py"), *feed,
        "-a", f"base_url={base_url}", "-a", f"cat_id={cat_ids}",
        "-a", f"follow={follow}",
        "-s", f"CONCURRENT_REQUESTS={concurrency}",
        "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
        "-s", "FEED_EXPORT_ENCODING=utf-8",
        *extra,
    ]  # fmt: skip


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


class CallLog:
    """The simulator's request log, read in slices: the calls of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        """Forget every call so far: the next :meth:`since_mark` starts here."""
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since_mark(self) -> list[dict[str, Any]]:
        """The calls logged since the mark; a last line the simulator is still
        writing (no newline yet: a reader polls while it logs) is left out."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as log:
            log.seek(self.offset)
            return [
                json.loads(line)
                for line in log
                if line.endswith(b"\n") and line.strip()
            ]


def span(calls: list[dict[str, Any]]) -> float:
    """Seconds from the first call's arrival to the last call's answer."""
    if not calls:
        raise RuntimeError("no call reached the simulator")
    return max(c["t"] + c["dt"] for c in calls) - min(c["t"] for c in calls)


def ok_pages(calls: list[dict[str, Any]]) -> int:
    """Distinct pages answered with items (a page fetched twice counts once)."""
    return len({(c["cat_id"], c["page"]) for c in calls if c["outcome"] == "ok"})


def share(calls: list[dict[str, Any]], status: int) -> float:
    return sum(1 for c in calls if c["status"] == status) / max(1, len(calls))


def check(condition: bool, message: str, run: ProcessRun | None = None) -> None:
    """A measured run that did not do its job is no figure: stop loudly."""
    if not condition:
        tail = run.output[-3000:] if run else ""
        raise RuntimeError(f"benchmark run invalid: {message}\n{tail}")


def interleaved(
    repeat: int, *runs: Callable[[], dict[str, float]]
) -> list[list[dict[str, float]]]:
    """Run each callable once per round, in order, for *repeat* rounds; the
    result is one list of figures per callable."""
    results: list[list[dict[str, float]]] = [[] for _ in runs]
    for _ in range(repeat):
        for index, run in enumerate(runs):
            results[index].append(run())
    return results


def bracketed(
    repeat: int,
    baseline: Callable[[], dict[str, float]],
    *subjects: Callable[[], dict[str, float]],
) -> tuple[
    list[dict[str, float]], list[tuple[list[dict[str, float]], list[dict[str, float]]]]
]:
    """Every subject's run between two baseline runs (B S1 B S2 B S1 B ...),
    for *repeat* rounds: the baseline runs, and for each subject its runs and
    its brackets (for each run, the mean of the baseline runs either side), so
    that a drift of the machine's speed over a minute falls on both sides of a
    ratio, where a round's one baseline run would tilt every ratio of it."""
    baselines = [baseline()]
    runs: list[list[dict[str, float]]] = [[] for _ in subjects]
    brackets: list[list[dict[str, float]]] = [[] for _ in subjects]
    for _ in range(repeat):
        for index, subject in enumerate(subjects):
            runs[index].append(subject())
            before, after = baselines[-1], baseline()
            baselines.append(after)
            shared = before.keys() & after.keys()
            brackets[index].append(
                {key: (before[key] + after[key]) / 2 for key in shared}
            )
    return baselines, list(zip(runs, brackets, strict=True))


@dataclass(frozen=True)
class Spread:
    """The median of some figures and their range."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        values = list(values)
        return cls(statistics.median(values), min(values), max(values), len(values))

    def show(self, digits: int = 3) -> str:
        if self.n == 1 or self.low == self.high:
            return _fmt(self.median, digits)
        return (
            f"{_fmt(self.median, digits)} "
            f"({_fmt(self.low, digits)}-{_fmt(self.high, digits)})"
        )


def _fmt(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def median_of(runs: list[dict[str, float]], key: str) -> Spread:
    return Spread.of(run[key] for run in runs)


def paired(
    subject: list[dict[str, float]],
    baseline: list[dict[str, float]],
    key: str,
    *,
    invert: bool = False,
) -> Spread:
    """Median of per-pair ratios subject/baseline (baseline/subject if *invert*:
    for figures where less is better, such as seconds or bytes)."""
    ratios = [
        (b[key] / s[key]) if invert else (s[key] / b[key])
        for s, b in zip(subject, baseline, strict=True)
    ]
    return Spread.of(ratios)


@dataclass
class Row:
    """One line of a benchmark's table."""

    measure: str
    figure: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: bool | None = None  # None: no target on this row

    @classmethod
    def compared(
        cls,
        measure: str,
        subject: list[dict[str, float]],
        baseline: list[dict[str, float]],
        key: str,
        *,
        invert: bool = False,
        pairs: list[dict[str, float]] | None = None,
    ) -> Row:
        """A row of medians and their paired ratio, with no target; *pairs*:
        what each subject run is compared with (:func:`bracketed`'s brackets),
        if not the baseline run of its round."""
        return cls(
            measure,
            median_of(subject, key).show(),
            median_of(baseline, key).show(),
            paired(subject, pairs or baseline, key, invert=invert).show(),
        )


@dataclass
class Section:
    """One benchmark's results: its table, notes and how to reproduce it."""

    number: int
    title: str
    setup: str
    baseline: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reproduce: str = ""
    pending: str = ""  # why it could not be measured (yet)
    measured: str = ""  # when, at which size, how long it took

    @property
    def targets(self) -> list[Row]:
        return [row for row in self.rows if row.met is not None]

    @property
    def met(self) -> bool | None:
        if self.pending or not self.targets:
            return None
        return all(row.met for row in self.targets)
