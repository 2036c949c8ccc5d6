"""The job journal and the partial-line repair: pure file logic."""

from __future__ import annotations

import json

from tmapi_crawler.feeds.feedfile import read_items
from tmapi_crawler.resume import journal


def test_the_journal_says_what_is_pending_and_what_was_in_flight(tmp_path):
    path = tmp_path / journal.JOURNAL_NAME
    log = journal.Journal(path)
    log.start_run(1)
    for fp in ("a", "b", "c"):
        log.write("queued", fp=fp, request={"url": fp})
    log.write("leased", fp="a")
    log.write("leased", fp="b")
    log.write("settled", fp="a", items=20, end=False, outcome="done")
    log.close()
    with path.open("ab") as file:  # a kill in the middle of a line
        file.write(b'{"e":"settled","fp":"b","it')
    state = journal.load(path)
    assert state.runs == 1
    assert set(state.pending) == {"b", "c"}
    assert state.in_flight == {"b"}
    assert state.items_delivered == 20
    assert state.damaged_lines == 1
    # the next run's journal starts after the cut line, not glued to it
    journal.Journal(path).write("settled", fp="b", items=3)
    state = journal.load(path)
    assert set(state.pending) == {"c"} and state.damaged_lines == 0


def test_a_partial_last_line_is_cut_and_whole_lines_kept(tmp_path):
    path = tmp_path / "items.jsonl"
    whole = b"".join(json.dumps({"item_id": i}).encode() + b"\n" for i in range(3))
    path.write_bytes(whole + b'{"item_id": 3, "tit')
    assert [i["item_id"] for i in read_items(path)] == [0, 1, 2]
    assert journal.drop_partial_last_line(path) == len(b'{"item_id": 3, "tit')
    assert path.read_bytes() == whole
    assert journal.drop_partial_last_line(path) == 0  # nothing to repair


def test_a_file_with_no_whole_line_is_emptied(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(b"x" * 200_000)  # longer than one read chunk
    assert journal.drop_partial_last_line(path) == 200_000
    assert path.read_bytes() == b""
    assert journal.drop_partial_last_line(tmp_path / "missing.jsonl") == 0
