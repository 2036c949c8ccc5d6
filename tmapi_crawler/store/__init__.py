"""The catalog store (``TMAPI_STORE``): items, their history, what changed.

- :mod:`.changes`: what one observation means against what the store held
  (``new``, ``price``, ``back``), and whether a category query's crawl can
  tell what is ``gone``; plain data, free of Scrapy;
- :mod:`.schema`: the tables, their migrations (``schema_version``);
- :mod:`.db`: the store itself over SQLite (``sqlite3``) or PostgreSQL
  (psycopg 3): batched writes, changes, reads;
- :mod:`.extension`: the Scrapy extension that feeds it during a crawl;
- :mod:`.feed`: the changes feed (``TMAPI_CHANGES_FEED``), through Scrapy's
  feed storages and exporters;
- :mod:`.__main__`: ``tmapi-store``, to read it back.
"""
