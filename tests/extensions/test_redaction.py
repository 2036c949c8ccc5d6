"""The token mask skips only records that no handler would print."""

from __future__ import annotations

import io
import logging

from tmapi_crawler.extensions.redaction import SecretRedaction, may_be_emitted

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
        SecretRedaction((TOKEN,))
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


def test_every_secret_is_masked_in_messages_and_tracebacks():
    factory = logging.getLogRecordFactory()
    logger = logging.getLogger("secret_redaction")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        SecretRedaction(("aws-secret-key-0123456789", TOKEN))
        logger.info(
            "settings %r", {"AWS_SECRET_ACCESS_KEY": "aws-secret-key-0123456789"}
        )
        try:
            raise RuntimeError(f"failed with apiToken={TOKEN}")
        except RuntimeError:
            logger.exception("call failed")
        printed = stream.getvalue()
        assert "{'AWS_SECRET_ACCESS_KEY': '***'}" in printed
        assert "RuntimeError: failed with apiToken=***" in printed
        assert TOKEN not in printed and "aws-secret-key" not in printed
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logging.setLogRecordFactory(factory)
