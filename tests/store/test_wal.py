"""The store's log in a job directory (:mod:`tmapi_crawler.store.wal`) and
what the journal keeps of it: real files, cut as a kill cuts them."""

from __future__ import annotations

import json

from tmapi_crawler.resume import journal
from tmapi_crawler.store.wal import LOG_NAME, ObservationLog

ROW = [7, "en", 51, "a title", "12.80", "CNY", None, True, 3, 100,
       "https://detail.1688.com/offer/7.html", "2026-12-07T00:00:00+00:00"]  # fmt: skip


def test_what_lies_past_the_offset_committed_is_read_back(tmp_path):
    log = ObservationLog(tmp_path)
    log.append(ROW)
    committed = log.position
    log.append([8, *ROW[1:]])
    log.append([9, *ROW[1:]])
    assert [row[0] for row in log.read_from(0)] == [7, 8, 9]
    assert [row[0] for row in log.read_from(committed)] == [8, 9]
    assert log.read_from(log.position) == []
    assert log.read_from(committed)[0][1:] == ROW[1:]  # every column as written


def test_a_line_a_kill_cut_is_dropped_when_the_log_opens_again(tmp_path):
    log = ObservationLog(tmp_path)
    log.append(ROW)
    log.close()
    whole = (tmp_path / LOG_NAME).stat().st_size
    with (tmp_path / LOG_NAME).open("ab") as file:
        file.write(json.dumps([8, "en"]).encode()[:5])  # no newline: cut
    again = ObservationLog(tmp_path)
    assert again.position == whole
    assert [row[0] for row in again.read_from(0)] == [7]
    again.append([9, *ROW[1:]])
    assert [row[0] for row in again.read_from(0)] == [7, 9]


def test_a_reset_log_starts_again_empty(tmp_path):
    log = ObservationLog(tmp_path)
    log.append(ROW)
    log.reset()
    assert log.position == 0 and log.read_from(0) == []
    log.append([8, *ROW[1:]])
    assert [row[0] for row in ObservationLog(tmp_path).read_from(0)] == [8]


def test_the_journal_keeps_the_last_offset_and_run_stored(tmp_path):
    path = tmp_path / journal.JOURNAL_NAME
    written = journal.Journal(path)
    written.write("stored", sink="store", upto=120, run="r1")
    written.write("stored", sink="store", upto=360, run="r1")
    written.close()
    state = journal.load(path)
    assert state.stored == {"store": 360} and state.runs_of == {"store": "r1"}
