"""Stop, kill, resume: the job journal's components, with ``-s JOBDIR=DIR``.

A crawl with ``-s JOBDIR=DIR`` loses no page. Scrapy's job
directory resumes a crawl stopped cleanly (Ctrl-C, SIGTERM), but its request
queue is written only at a clean close and requests already handed to the
downloader are not in it. Here the job directory also holds a journal
(:mod:`tmapi_crawler.resume.journal`): every request queued, handed to the
downloader (leased) and settled (its items written to the feed and the
requests its callback gave journaled, or failed for good). A run started
with a job directory that has a journal:

* reschedules every request queued and not settled, once (``dont_filter``),
  whatever stopped the last run (:mod:`.scheduler`); Scrapy's own queue is
  dropped and ``requests.seen`` rebuilt from the journal, so both agree with
  it even after a SIGKILL. Only requests that were in flight are sent a
  second time;
* drops the items of those in-flight pages that already reached the feed
  (:mod:`.pipeline`), read from the feed file itself, and tells item
  pipelines that dedupe (signal ``items_delivered_before``) every item the feed
  holds, so the dedupe state always agrees with what was written;
* appends to the feed files of the first run, after removing a line a kill
  cut short (:mod:`.extension`);
* says what it resumes at the start and what is left at the end.

The project's add-on (:mod:`tmapi_crawler.addon`) wires these in when
``JOBDIR`` is set.
"""
