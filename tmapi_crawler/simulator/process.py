"""Run the simulator in a child process: for the demo, the tests and the benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

READY = "TMAPI simulator listening on "


def stop_process(process: subprocess.Popen[Any] | None, timeout: float = 10) -> None:
    """Stop a child server: SIGTERM, then SIGKILL if it is not gone in *timeout* s."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SimulatorProcess:
    """``with SimulatorProcess(latency=0.2) as sim:`` starts a simulator on a free
    loopback port; ``sim.url`` is its base URL and ``sim.calls()`` its request log.

    Keyword arguments become command-line options (``max_concurrency=4`` is
    ``--max-concurrency 4``; a list repeats the option; True is a bare flag).
    """

    def __init__(self, request_log: Path | None = None, **options: Any) -> None:
        if request_log is None:
            request_log = Path(tempfile.mkdtemp(prefix="tmapi-sim-")) / "requests.jsonl"
        self.request_log = request_log
        self.options = options
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "tmapi_crawler.simulator", "--port", "0"]
        argv += ["--request-log", str(self.request_log)]
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            for one in value if isinstance(value, list | tuple) else [value]:
                argv += [flag] if one is True else [flag, str(one)]
        return argv

    def start(self) -> SimulatorProcess:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(READY):
            self.stop()
            error = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"simulator did not start: {line}{error}")
        self.url = line[len(READY) :].strip()
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def calls(self) -> list[dict[str, Any]]:
        """Every call answered so far, from the request log."""
        if not self.request_log.exists():
            return []
        with self.request_log.open(encoding="utf-8") as log:
            return [json.loads(line) for line in log if line.strip()]

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
