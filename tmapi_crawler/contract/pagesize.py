"""The page size the API really serves, learned. Free of Scrapy.

TMAPI documents 20 items a page and no maximum for the category endpoint;
integrators ask 50. Every call is billed, so the crawler asks the largest
page it may be served (``TMAPI_PAGE_SIZE_PROBE``, 50) on page 1 of the first
query of a token, and reads what came back:

* served: 50 items and ``has_next_page``: pages of 50 (2,000 items, 40 calls);
* clamped quietly: 20 items, ``page_size`` 20: pages of 20 (planned so);
* clamped, echoing the size asked: 20 items, ``page_size`` 50 and more pages
  to come: the items counted are the size served (:func:`api.page_from_data`
  reads it so for every page), and the query is planned in pages of 20;
* refused with 422: the documented 20, and page 1 is asked again at 20 (one
  call spent, the category does not fail).

Where it clamps, the size asked stays the size probed: asking more costs
nothing there, and every query of a crawl and of its later runs (a job
resumed, another worker) asks one size, so a query is one request whichever
run sends it; each query is planned in the size its page 1 shows is served.
A page 1 that holds the whole query shows only that the size was accepted.
The size to ask is kept per token beside the learned limit of calls in
flight (:mod:`tmapi_crawler.contract.limits`).

While the first answer is pending, the other queries the spider starts wait
for it (one call's latency, no call): sent at once at the size probed, each
would cost a refused call if the API refuses it; sent at 20, each category
would be crawled in pages of 20 where 50 may be served.
"""

from __future__ import annotations

from dataclasses import dataclass

from tmapi_crawler.contract.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

REFUSED_CODE = 422  # "Parameter error": the size asked is not served


def served_size(page: Page, asked: int) -> int | None:
    """The page size a page 1 answer to a query asked at *asked* shows the
    API serves, or None when the whole query fit (it shows nothing)."""
    if page.page_size < asked or page.has_next_page:
        return min(page.page_size, asked)
    return None


@dataclass
class PageSizeLearner:
    """What page size to ask of a new query, and what the answers taught.

    The size asked is the largest the API accepted (the probe's, unless a 422
    refused it): where it clamps, asking more costs nothing, and every query
    of a crawl and of its later runs asks the same size, so a query is the
    same request whichever run or worker sends it. The size served is what
    page 1 answers show; each query is planned in it.
    """

    probe: int = MAX_PAGE_SIZE  # asked while nothing is known
    known: int | None = None  # the size to ask of every new query, once known
    served: int | None = None  # the size page 1 answers show is served
    pending: bool = False  # a page 1 at the probe size awaits its answer

    def next_size(self) -> int | None:
        """The size to ask of a new query's page 1; None: wait for the
        pending answer (the caller that gets the probe size sends it)."""
        if self.known is not None:
            return self.known
        if self.probe <= DEFAULT_PAGE_SIZE:
            return self.probe  # the documented size: served in every reading
        if self.pending:
            return None
        self.pending = True
        return self.probe

    def answered(self, asked: int, page: Page) -> int | None:
        """A page 1 asked at *asked* was answered: the size to ask, if it is
        newly known (to be kept), else None. :attr:`served` says what it
        showed (unchanged when the whole query fit on the page)."""
        if (reading := served_size(page, asked)) is not None:
            self.served = reading
        self.pending = False
        if self.known is not None:
            return None
        self.known = asked
        return asked

    def refused(self) -> int:
        """A page 1 was refused (422) at a size above the documented one:
        the documented size from now on."""
        self.pending = False
        self.known = self.served = DEFAULT_PAGE_SIZE
        return DEFAULT_PAGE_SIZE

    def failed(self) -> None:
        """The probe failed for another reason: the next query probes."""
        if self.known is None:
            self.pending = False


def is_refusal(asked: int, code: int | None) -> bool:
    """Whether a page 1 failure means the size asked is not served."""
    return code == REFUSED_CODE and asked > DEFAULT_PAGE_SIZE
