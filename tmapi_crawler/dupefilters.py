"""Scrapy's duplicate-request filter, in a few bytes a request.

Scrapy's ``RFPDupeFilter`` keeps every request fingerprint (20 bytes) as a
``bytes`` object in a ``set``: about 150 bytes a page, 8 bytes per item of a
crawl of 20-item pages, the crawl's largest growth after the seen item ids
(``BENCHMARKS.md``, benchmark 4). :class:`CompactDupeFilter` keeps the first
72 bits of each fingerprint in a :class:`~tmapi_crawler.contract.seen.MemorySeenSet`
(about 9 bytes each; two of ten million requests share 72 bits with a chance
of one in ten million). Fingerprints still come from Scrapy's
``REQUEST_FINGERPRINTER``, and with ``JOBDIR`` the filter is Scrapy's own, so
the job's ``requests.seen`` file is written as Scrapy writes it.

The project's add-on (:mod:`tmapi_crawler.addon`) makes it the
``DUPEFILTER_CLASS`` unless something else chose one (a distributed crawl's
Redis filter, your own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.dupefilters import RFPDupeFilter

from tmapi_crawler.contract.seen import MemorySeenSet

if TYPE_CHECKING:
    from scrapy import Request

FINGERPRINT_BYTES = 9  # 72 bits
FINGERPRINT_BUCKETS = 4093  # 2**72 / 4093 fits the seen-set's 8-byte members


class CompactDupeFilter(RFPDupeFilter):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._compact = MemorySeenSet(FINGERPRINT_BUCKETS, member_bytes=8)

    def request_seen(self, request: Request) -> bool:
        if self.file:  # a job directory: Scrapy's own set and requests.seen file
            return super().request_seen(request)
        fingerprint = self.fingerprinter.fingerprint(request)
        key = int.from_bytes(fingerprint[:FINGERPRINT_BYTES], "big")
        return not self._compact.add(key)
