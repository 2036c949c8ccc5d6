"""A command run with its stderr on a real terminal (a pseudo-terminal), as a
user's is: what its progress display drew, escape codes taken out."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from pathlib import Path


def on_a_terminal(
    command: list[str], cwd: Path, columns: int = 120, **env: str
) -> tuple[int, str, bytes]:
    """(exit code, what stderr drew, stdout), *env* added to the environment."""
    leader, follower = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(leader, 65536):
                chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    environ = {**os.environ, **env, "COLUMNS": str(columns)}
    result = subprocess.run(
        command, cwd=cwd, env=environ, stderr=follower, stdout=subprocess.PIPE
    )
    os.close(follower)
    reader.join(timeout=30)
    os.close(leader)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    return result.returncode, screen, result.stdout
