"""Shared fixtures: a real simulator process and real ``scrapy crawl`` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tmapi_crawler.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parents[1]
SENTINEL_TOKEN = "tok-SENTINEL-5f3a9c"


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Any]:
    """``simulator(**options)`` starts a simulator; all are stopped at teardown."""
    started: list[SimulatorProcess] = []

    def start(**options: Any) -> SimulatorProcess:
        log = tmp_path / f"simulator-{len(started)}.jsonl"
        started.append(SimulatorProcess(request_log=log, **options).start())
        return started[-1]

    yield start
    for process in started:
        process.stop()


@dataclass
class CrawlResult:
    returncode: int
    log: str
    output: Path

    @property
    def items(self) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        with self.output.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]


def run_crawl(
    workdir: Path,
    base_url: str,
    arguments: dict[str, Any],
    settings: dict[str, Any] | None = None,
    token: str | None = SENTINEL_TOKEN,
    output_name: str = "items.jsonl",
    timeout: float = 240,
) -> CrawlResult:
    """``scrapy crawl category`` in a child process, as a user runs it."""
    output = workdir / output_name
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-O", str(output)]
    for name, value in arguments.items():
        command += ["-a", f"{name}={value}"]
    for name, value in {"TMAPI_BASE_URL": base_url, **(settings or {})}.items():
        command += ["-s", f"{name}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "TMAPI_TOKEN"}
    if token is not None:
        env["TMAPI_TOKEN"] = token
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CrawlResult(result.returncode, result.stdout + result.stderr, output)


@pytest.fixture
def crawl(tmp_path: Path) -> Any:
    """``crawl(url, {"cat_id": 5}, settings)`` runs one crawl to completion."""

    def run(
        base_url: str,
        arguments: dict[str, Any],
        settings: dict[str, Any] | None = None,
        **options: Any,
    ) -> CrawlResult:
        return run_crawl(tmp_path, base_url, arguments, settings, **options)

    return run
