"""``python -m bench``: run the benchmarks and write BENCHMARKS.md.

``--size tiny`` only checks that each benchmark runs (what ``make test``
does); ``quick`` gives rough figures in a few minutes; ``full`` (the default)
is what BENCHMARKS.md quotes. ``--only 1,3`` picks benchmarks; the others
keep the figures of the last run (kept beside it in ``BENCHMARKS.json``), so
one benchmark can be measured again without the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import ROOT, Row, Section
from bench.report import render

MODULES = {
    1: "bench.fanout",
    2: "bench.capped",
    3: "bench.cpu",
    4: "bench.memory",
    5: "bench.scaleout",
    6: "bench.store",
    7: "bench.pagesize",
    8: "bench.details",
}


def run_one(number: int, size: str, workdir: Path, repeat: int | None) -> Section:
    module = importlib.import_module(MODULES[number])
    started = time.monotonic()
    when = datetime.now(UTC)
    section: Section = module.run(size, workdir, repeat)
    took = time.monotonic() - started
    section.measured = f"{when:%Y-%m-%d %H:%M} UTC, size `{size}`, {took:.0f} s"
    print(f"benchmark {number} took {took:.0f} s", flush=True)
    return section


def load_sections(path: Path) -> dict[int, Section]:
    """The sections of the last run, by number (none if there was none)."""
    if not path.exists():
        return {}
    sections = {}
    for data in json.loads(path.read_text("utf-8")):
        rows = [Row(**row) for row in data.pop("rows")]
        sections[data["number"]] = Section(**data, rows=rows)
    return sections


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
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tmapi-bench-") as tmp:
        for number in numbers:
            workdir = Path(tmp) / str(number)
            workdir.mkdir()
            try:
                sections.append(run_one(number, args.size, workdir, args.repeat))
            except Exception as exc:  # the others' figures are still written
                traceback.print_exc()
                failed.append(f"benchmark {number} failed: {exc}")
    write(sections, args.output, args.size, started, time.monotonic() - clock)
    if failed:
        raise SystemExit("\n".join(failed))


def write(
    sections: list[Section], output: Path, size: str, started: datetime, took: float
) -> None:
    """BENCHMARKS.md and .json: these sections, the last figures of the others."""
    kept = output.with_suffix(".json")
    merged = {**load_sections(kept), **{s.number: s for s in sections}}
    ordered = [merged[number] for number in sorted(merged)]
    kept.write_text(
        json.dumps([dataclasses.asdict(s) for s in ordered], indent=1), "utf-8"
    )
    text = render(ordered, size, started, took)
    output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
