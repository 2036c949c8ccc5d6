"""``python -m bench``: run the benchmarks and write BENCHMARKS.md.

``--size tiny`` only checks that each benchmark runs (what ``make test``
does); ``quick`` gives rough figures in a few minutes; ``full`` (the default)
is what BENCHMARKS.md quotes. ``--only 1,3`` picks benchmarks.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import ROOT, Section
from bench.report import render

MODULES = {
    1: "bench.fanout",
    2: "bench.capped",
    3: "bench.cpu",
    4: "bench.memory",
    5: "bench.scaleout",
}


def run_one(number: int, size: str, workdir: Path, repeat: int | None) -> Section:
    module = importlib.import_module(MODULES[number])
    started = time.monotonic()
    section: Section = module.run(size, workdir, repeat)
    print(f"benchmark {number} took {time.monotonic() - started:.0f} s", flush=True)
    return section


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", choices=("tiny", "quick", "full"), default="full")
    parser.add_argument("--quick", action="store_const", const="quick", dest="size")
    parser.add_argument("--only", default="", help="comma-separated numbers")
    parser.add_argument("--repeat", type=int, help="runs per figure")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    numbers = [int(n) for n in args.only.split(",") if n] or sorted(MODULES)
    started, clock = datetime.now(UTC), time.monotonic()
    sections = []
    with tempfile.TemporaryDirectory(prefix="tmapi-bench-") as tmp:
        for number in numbers:
            workdir = Path(tmp) / str(number)
            workdir.mkdir()
            try:
                sections.append(run_one(number, args.size, workdir, args.repeat))
            except Exception as exc:
                traceback.print_exc()
                raise SystemExit(f"benchmark {number} failed: {exc}") from exc
    text = render(sections, args.size, started, time.monotonic() - clock)
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
