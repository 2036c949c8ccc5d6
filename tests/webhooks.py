"""A real webhook receiver on loopback for the alerts' tests: an HTTP server
in a thread of the test's process that keeps every JSON body POSTed to it,
or answers every POST with an error (a webhook that fails)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.servers import LOOPBACK


class WebhookReceiver:
    def __init__(self, status: int = 200, fail_first: int = 0) -> None:
        self.status = status
        self.fail_first = fail_first  # POSTs answered 503 before *status*
        self.bodies: list[dict[str, Any]] = []
        self.posts = 0  # every POST, answered or failed
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts += 1
                status = (
                    503 if receiver.posts <= receiver.fail_first else receiver.status
                )
                if status < 300:
                    receiver.bodies.append(json.loads(data))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}/hook/secret-path"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
