"""Bytes per id of an in-process seen-set, in a fresh process:
``python -m bench.seen_bytes memory|set COUNT`` prints ``{"bytes_per_id": ...}``.

The ids (random 12-digit, as 1688's) are made first; then the process's
resident memory is read before and after the set takes them, each as a fresh
int object (as an id parsed from JSON is). A fresh process per figure, so no
freed memory of an earlier set is reused and hides the cost.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

from tmapi_crawler.contract.seen import MemorySeenSet

LOW, SPAN = 500_000_000_000, 500_000_000_000


def random_ids(count: int, seed: int = 7) -> list[int]:
    """*count* random 12-digit ids (a handful may repeat: ~count²/1e12)."""
    bits = random.Random(seed).getrandbits
    return [LOW + bits(39) % SPAN for _ in range(count)]


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make(kind: str) -> Any:
    return set() if kind == "set" else MemorySeenSet()


def main() -> None:
    kind, count = sys.argv[1], int(sys.argv[2])
    ids = random_ids(count)
    seen = make(kind)
    before = resident_bytes()
    for item_id in ids:
        seen.add(item_id + 1)  # a new int object, as an id parsed from JSON is
    used = resident_bytes() - before
    print(json.dumps({"bytes_per_id": used / len(seen), "ids": len(seen)}))


if __name__ == "__main__":
    main()
