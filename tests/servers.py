"""Real servers on free loopback ports for tests: Redis and an S3 endpoint (moto)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import redis

from tmapi_crawler.simulator.process import stop_process

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class ServerProcess:
    """A child process serving on one port; ``stop()`` and ``start()`` again."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> Self:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
            )
        wait_for_port(self.port, self.process)
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RedisServer(ServerProcess):
    """A real ``redis-server`` on a free loopback port (never the machine's 6379).

    Nothing is written to disk (``--save ''``) unless ``appendonly``: then
    every write goes to an append-only file in *directory*, so :meth:`restart`
    keeps the data, as a production Redis does. ``.url`` for clients.
    """

    def __init__(
        self, log: Path, directory: Path | None = None, appendonly: bool = False
    ) -> None:
        super().__init__(log)
        self.directory = directory or log.parent
        self.appendonly = appendonly

    def command(self) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip

    def start(self) -> Self:
        super().start()
        deadline = time.monotonic() + 30
        while True:  # the port opens before an append-only file is loaded
            try:
                self.client().ping()
                return self
            except (redis.BusyLoadingError, redis.ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=5)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop as a restart does (SIGTERM: the append-only file is flushed),
        stay down *down_for* seconds, start again on the same port."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def dump(self) -> bytes:
        """Every key and every value, as bytes, to search for what must not be there."""
        client = self.client()
        parts: list[bytes] = []
        for key in client.scan_iter(count=1000):
            parts.append(key)
            kind = client.type(key)
            if kind == b"string":
                parts.append(client.get(key) or b"")
            elif kind == b"list":
                parts += client.lrange(key, 0, -1)
            elif kind == b"set":
                parts += list(client.smembers(key))
            elif kind == b"zset":
                parts += client.zrange(key, 0, -1)
            elif kind == b"hash":
                for field, value in client.hgetall(key).items():
                    parts += [field, value]
        return b"\n".join(parts)


class S3Server(ServerProcess):
    """moto in server mode: an S3 HTTP endpoint. With ``authenticated_after=N``
    only the first N calls go unchecked; later ones need real IAM keys."""

    def __init__(self, log: Path, authenticated_after: int | None = None) -> None:
        super().__init__(log)
        self.authenticated_after = authenticated_after

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "moto.server",
            "-H",
            LOOPBACK,
            "-p",
            str(self.port),
        ]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        if self.authenticated_after is not None:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.authenticated_after)
        return env

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self, **credentials: str):  # a boto3 S3 client of this endpoint
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=credentials.get("key", "testing"),
            aws_secret_access_key=credentials.get("secret", "testing"),
        )


def s3_settings(endpoint: str, **extra: object) -> dict[str, object]:
    """The Scrapy settings of a crawl whose feeds go to the moto *endpoint*
    (the keys moto takes, as ``S3Server.client``), with *extra* on top."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION_NAME": "us-east-1",
        **extra,
    }
