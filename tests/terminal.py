"""A command run with its stderr on a real terminal (a pseudo-terminal), as a
user's is: what its progress display drew, escape codes taken out."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from pathlib import Path


def on_a_terminal(command: list[str], cwd: Path) -> tuple[int, str, bytes]:
    """(exit code, what stderr drew, stdout)."""
    leader, follower = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(leader, 65536):
                chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run(
        command, cwd=cwd, env=env, stderr=follower, stdout=subprocess.PIPE
    )
    os.close(follower)
    reader.join(timeout=30)
    os.close(leader)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    return result.returncode, screen, result.stdout
