"""Deployment: the egg on a real scrapyd, a job scheduled over its HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, SENTINEL_TOKEN
from tests.servers import free_port
from tmapi_crawler.simulator.catalog import Catalog

BIN = Path(sys.executable).parent
PROJECT_FILES = ("scrapy.cfg", "setup.py", "pyproject.toml", "README.md")


def api(url: str, data: dict | None = None) -> dict:
    body = urllib.parse.urlencode(data, doseq=True).encode() if data else None
    with urllib.request.urlopen(url, body, timeout=10) as answer:
        return json.load(answer)


@pytest.fixture
def scrapyd(tmp_path):
    """A scrapyd on a free loopback port, its own directories, the token in its
    environment (never in a request)."""
    home, port = tmp_path / "scrapyd", free_port()
    home.mkdir()
    dirs = {name: home / name for name in ("eggs", "logs", "items", "dbs")}
    lines = ["[scrapyd]", "bind_address = 127.0.0.1", f"http_port = {port}"]
    lines += [f"{name}_dir = {path}" for name, path in dirs.items()]
    lines += ["poll_interval = 0.2", "max_proc = 1"]
    (home / "scrapyd.conf").write_text("\n".join(lines) + "\n")
    # the learned limit in scrapyd's home, not the user's cache directory
    env = {**os.environ, "TMAPI_TOKEN": SENTINEL_TOKEN, "XDG_CACHE_HOME": str(home)}
    with (home / "scrapyd.out").open("w") as out:
        process = subprocess.Popen(
            [BIN / "scrapyd"], cwd=home, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(150):
            try:
                api(url + "daemonstatus.json")
                break
            except OSError:
                assert process.poll() is None, (home / "scrapyd.out").read_text()
                time.sleep(0.2)
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_deployed_to_scrapyd_the_spider_delivers_a_category(
    simulator, scrapyd, tmp_path
):
    url, home = scrapyd
    sim = simulator(size="71=130", latency=0.02)
    project = tmp_path / "project"  # a copy: building an egg writes build files
    shutil.copytree(
        ROOT / "tmapi_crawler",
        project / "tmapi_crawler",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, project / name)
    cfg = project / "scrapy.cfg"
    cfg.write_text(cfg.read_text().replace("http://localhost:6800/", url))
    deploy = subprocess.run(
        [BIN / "scrapyd-deploy", "-v", "1"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    project_name = "tmapi_crawler"
    listed = api(url + "listspiders.json?project=" + project_name)
    assert "category" in listed["spiders"]

    job = api(
        url + "schedule.json",
        {
            "project": project_name,
            "spider": "category",
            "cat_id": "71",
            "setting": [
                f"TMAPI_BASE_URL={sim.url}",
                "TMAPI_PROGRESS_INTERVAL=0.2",
                "TMAPI_PAGE_SIZE_PROBE=20",  # DOCUMENTED_PAGES
            ],
        },
    )["jobid"]
    for _ in range(600):
        jobs = api(url + "listjobs.json?project=" + project_name)
        if [j for j in jobs["finished"] if j["id"] == job]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"job {job} did not finish: {jobs}")

    items_file = home / "items" / project_name / "category" / f"{job}.jl"
    items = [json.loads(line) for line in items_file.read_text().splitlines()]
    expected = {p.item_id for p in Catalog(seed=0, sizes={71: 130}).expected(71)}
    assert sorted(i["item_id"] for i in items) == sorted(expected)
    summary = json.loads(items_file.with_name(f"{job}.summary.json").read_text())
    assert summary["complete"] is True and summary["calls"] == len(sim.calls()) == 7
    log = (home / "logs" / project_name / "category" / f"{job}.log").read_text()
    assert "Progress: pages" in log and "Run summary" in log
    for path in home.rglob("*"):  # logs, items, queue database, scrapyd's own log
        if path.is_file():
            assert SENTINEL_TOKEN.encode() not in path.read_bytes(), path
