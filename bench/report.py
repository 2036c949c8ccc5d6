"""BENCHMARKS.md: the machine, a summary of ratios, and a table per benchmark."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from bench.common import Section


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _redis_version() -> str:
    binary = shutil.which("redis-server")
    if not binary:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return out.stdout.split(" v=")[-1].split()[0] if " v=" in out.stdout else "?"


def machine() -> list[tuple[str, str]]:
    return [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} logical cores"),
        ("RAM", _ram()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", sys.version.split()[0]),
        ("Scrapy", version("scrapy")),
        ("Twisted", version("twisted")),
        ("aiohttp", version("aiohttp")),
        ("redis-server", _redis_version()),
    ]


def _met(value: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "-"}[value]


def render(sections: list[Section], size: str, started: datetime, took: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); every figure is measured "
        "against the bundled simulator on loopback, against a baseline run in "
        "the same invocation, interleaved with it, and quoted as the median "
        "(lowest-highest in brackets).",
        "",
        f"Last run: {started:%Y-%m-%d %H:%M} UTC, size `{size}`, {took / 60:.1f} "
        "min (each benchmark says when it was measured).",
        "",
        "| machine | |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in machine()),
        "",
        "## Summary",
        "",
        "| # | benchmark | measure | crawler | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for section in sections:
        for row in section.targets or ([] if section.pending else section.rows[:1]):
            lines.append(
                f"| {section.number} | {section.title} | {row.measure} | "
                f"{row.figure} | {row.baseline} | {row.ratio} | {row.target} | "
                f"{_met(row.met)} |"
            )
        if section.pending:
            lines.append(
                f"| {section.number} | {section.title} | **pending**: "
                f"{section.pending} | - | - | - | - | - |"
            )
    for section in sections:
        lines += ["", f"## {section.number}. {section.title}", ""]
        if section.pending:
            lines += [f"**Pending:** {section.pending}", ""]
        lines += [f"Measured: {section.measured}", ""]
        lines += [f"Setup: {section.setup}", "", f"Baseline: {section.baseline}", ""]
        if section.rows:
            lines += [
                "| measure | crawler | baseline | ratio | target | met |",
                "| --- | --- | --- | --- | --- | --- |",
                *(
                    f"| {r.measure} | {r.figure} | {r.baseline} | {r.ratio} | "
                    f"{r.target} | {_met(r.met)} |"
                    for r in section.rows
                ),
                "",
            ]
        lines += [f"- {note}" for note in section.notes]
        if section.notes:
            lines.append("")
        lines += ["Reproduce:", "", "```sh", section.reproduce, "```"]
    return "\n".join(lines) + "\n"
