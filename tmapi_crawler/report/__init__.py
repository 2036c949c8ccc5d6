"""The run report: one self-contained HTML file per run of the catalog store.

- :mod:`.data`: what the report shows, read from the store (and what the
  crawl knows of itself: its summary, its pace, the listings' images);
- :mod:`.plots`: the plots, drawn by matplotlib as inline SVG;
- :mod:`.html`: the page;
- :mod:`.extension`: the Scrapy extension that writes it, and sends the
  alerts (:mod:`tmapi_crawler.alerts`), when a crawl with a store ends.

All but :mod:`.extension` are free of Scrapy: ``tmapi-store report`` writes
the same page on demand.
"""
