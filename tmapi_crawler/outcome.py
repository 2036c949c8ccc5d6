"""How a crawl ended, as the process exit code scripts and schedulers read.

=====  ==========================================================
 0     complete: every planned page delivered, every feed stored
 1     the crawl could not run (an error while starting)
 2     refused before any call: bad argument, missing token
 3     incomplete: some pages (or category tree calls) failed for good
 4     stopped before the end (bad token, no balance, budget,
       Ctrl-C): resumable
 5     items not delivered: a feed could not be stored
=====  ==========================================================

When several apply, the highest code wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMPLETE, NOT_STARTED, REFUSED, INCOMPLETE, STOPPED, NOT_STORED = 0, 1, 2, 3, 4, 5


def exit_code(stats: Mapping[str, Any]) -> int:
    """The exit code for a finished crawl's stats."""
    code = COMPLETE
    if stats.get("tmapi/pages/failed") or stats.get("tmapi/tree/failed"):
        code = INCOMPLETE
    if stats.get("finish_reason", "finished") != "finished":
        code = STOPPED
    if any(key.startswith("feedexport/failed_count") for key in stats):
        code = NOT_STORED
    return code
