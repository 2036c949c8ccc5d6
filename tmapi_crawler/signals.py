"""The crawler's own signals, sent with ``crawler.signals.send_catch_log``.

=====================  ========================================================
``request_settled``    a request will not be sent again and has no answer to
                       parse: it failed for good or lay past the last page
                       (arguments: ``request``, ``outcome``: ``"failed"`` or
                       ``"past_end"``)
``page_answered``      the error contract read a page of the items endpoint
                       (arguments: ``request``, ``page``: the parsed
                       :class:`~tmapi_crawler.contract.api.Page`)
=====================  ========================================================
"""

request_settled = object()
page_answered = object()
