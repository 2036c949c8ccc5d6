"""The crawler's own signals, sent with ``crawler.signals.send_catch_log``.

The ledger (:mod:`tmapi_crawler.extensions.ledger`) keeps the crawl's state
from them; other components listen where they care.

=====================  ========================================================
``page_requested``     the spider made a page request (argument: ``request``)
``answer_read``        the error contract read an answer of any endpoint
                       (arguments: ``request``, ``endpoint``: its
                       :class:`~tmapi_crawler.contract.endpoints.Endpoint`,
                       ``answer``: what the endpoint's parser made of it, a
                       :class:`~tmapi_crawler.contract.api.Page` for a page)
``page_parsed``        the spider has asked for every page this answer adds
                       (arguments: ``request``, ``page``, ``plan``: the price
                       bands it was split into, a ``Gap``, or None;
                       ``followed``: the page numbers it added)
``request_settled``    a request will not be sent again and has no answer to
                       parse: it failed for good or lay past the last page
                       (arguments: ``request``, ``outcome``: ``"failed"`` or
                       ``"past_end"``, ``reason``: why it failed)
``items_delivered_``   a resumed job read back what its feeds already hold
``before``             (argument: ``items``, a batch of dicts as written)
=====================  ========================================================
"""

page_requested = object()
answer_read = object()
page_parsed = object()
request_settled = object()
items_delivered_before = object()
