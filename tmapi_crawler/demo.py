"""``make demo``: crawl one category of the bundled simulator into ``out/``.

Starts the simulator on a free loopback port, runs ``scrapy crawl category``
against it with a demo token (the simulator spends no credit), stops the
simulator, and prints where the items are and how many there are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tmapi_crawler.simulator.process import SimulatorProcess

CATEGORY = "1031922"  # the documentation's example category
OUT = Path("out")


def main() -> int:
    OUT.mkdir(exist_ok=True)
    before = set(OUT.glob("*.jsonl"))
    with SimulatorProcess(latency=0.2) as simulator:
        print(f"simulator: {simulator.url} (200 ms per call, like the real API)")
        command = [
            sys.executable, "-m", "scrapy", "crawl", "category",
            "-a", f"cat_id={CATEGORY}",
            "-s", f"TMAPI_BASE_URL={simulator.url}",
        ]  # fmt: skip
        env = {**os.environ, "TMAPI_TOKEN": "demo-token"}
        result = subprocess.run(command, env=env, check=False)
        calls = len(simulator.calls())
    written = sorted(set(OUT.glob("*.jsonl")) - before)
    if result.returncode != 0 or not written:
        print(f"demo crawl failed (exit code {result.returncode})", file=sys.stderr)
        return result.returncode or 1
    for path in written:
        with path.open(encoding="utf-8") as lines:
            count = sum(1 for _ in lines)
        print(f"\n{count} items of category {CATEGORY} in {path} ({calls} API calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
