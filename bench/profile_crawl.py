"""Profile the crawler on benchmark 3's workload (pyinstrument, the ``bench``
extra): ``python -m bench.profile_crawl [CATEGORIES] [OUTPUT.txt]``.

Prints where a zero-latency crawl spends its CPU (frames under 3% hidden,
library frames shown), so what dominates can be told apart: the crawler's own
code, Scrapy's item path, the reactor, JSON.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, run_process
from bench.cpu import FIRST_CAT, ITEMS_PER_CAT, warm
from tmapi_crawler.simulator.process import SimulatorProcess


def main() -> None:
    categories = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    report = Path(sys.argv[2] if len(sys.argv) > 2 else "crawl-profile.txt")
    cat_ids = list(range(FIRST_CAT, FIRST_CAT + categories))
    workdir = Path(tempfile.mkdtemp(prefix="tmapi-profile-"))
    with SimulatorProcess(
        request_log=workdir / "simulator.jsonl",
        size=[f"{c}={ITEMS_PER_CAT}" for c in cat_ids],
    ) as sim:
        warm(sim.url, cat_ids)
        argv = [
            sys.executable, "-m", "pyinstrument", "-r", "text",
            "-p", "show_all", "-p", "processor_options.filter_threshold=0.03",
            "-o", str(report.resolve()),
            "-m", "scrapy", "crawl", "category", "-O", str(workdir / "items.jsonl"),
            "-a", f"cat_id={','.join(map(str, cat_ids))}",
            "-s", f"TMAPI_BASE_URL={sim.url}", "-s", "CONCURRENT_REQUESTS=16",
            "-s", "TMAPI_PAGE_SIZE_PROBE=20",  # bench.common.SAME_PAGES
        ]  # fmt: skip
        run = run_process(argv, cwd=ROOT, log=workdir / "crawl.log")
    if run.returncode != 0:
        raise SystemExit(f"the profiled crawl failed:\n{run.output[-3000:]}")
    print(f"profile of {categories * 100} pages written to {report}")


if __name__ == "__main__":
    main()
