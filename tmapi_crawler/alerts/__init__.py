"""Alerts (``TMAPI_ALERTS``): what changed in a run, sent to webhooks.

- :mod:`.rules`: the rules, which changes each matches, its message;
- :mod:`.webhook`: one JSON POST, retried with backoff;
- :mod:`.send`: a run's alerts read from the catalog store and sent, one
  message per rule (the crawl's report extension and ``tmapi-store alerts``).

Free of Scrapy.
"""
