"""The token mask skips only records that no handler would print."""

from __future__ import annotations

import io
import logging

from tmapi_crawler.auth import TokenRedaction, may_be_emitted

TOKEN = "tok-REDACT-7c1e2f"


def test_records_a_handler_takes_are_masked_the_others_are_left_alone():
    factory = logging.getLogRecordFactory()
    parent = logging.getLogger("bench_redaction")
    child = logging.getLogger("bench_redaction.child")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    parent.addHandler(handler)
    parent.setLevel(logging.DEBUG)
    parent.propagate = False  # pytest's own capture handler takes every level
    try:
        TokenRedaction(TOKEN)
        debug = child.makeRecord(child.name, logging.DEBUG, "", 0, TOKEN, (), None)
        info = child.makeRecord(child.name, logging.INFO, "", 0, TOKEN, (), None)
        assert not may_be_emitted(debug)  # no handler at DEBUG: never printed
        assert may_be_emitted(info)
        child.info("sent %s", f"https://x/?apiToken={TOKEN}")
        handler.setLevel(logging.DEBUG)
        child.debug("sent %s", f"https://x/?apiToken={TOKEN}")
        printed = stream.getvalue()
        assert printed.count("apiToken=***") == 2
        assert TOKEN not in printed
    finally:
        parent.removeHandler(handler)
        parent.propagate = True
        logging.setLogRecordFactory(factory)
