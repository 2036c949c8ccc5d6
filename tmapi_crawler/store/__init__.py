"""The catalog store (``TMAPI_STORE``): items, their history, what changed.

- :mod:`.changes`: what one observation means against what the store held
  (``new``, ``price``, ``back``), and whether a category query's crawl can
  tell what is ``gone``; plain data, free of Scrapy;
- :mod:`.schema`: the tables, their migrations (``schema_version``);
- :mod:`.connection`, :mod:`.writes`, :mod:`.reads`: the store's
  connection (transactions, migrations), its batched writes and the changes
  they make, its reads;
- :mod:`.base`: the store itself, whatever its database: those three, and
  its runs;
- :mod:`.sqlite`, :mod:`.postgresql`: its two databases, SQLite (``sqlite3``)
  and PostgreSQL (psycopg 3);
- :mod:`.db`: one way to open either, from a ``TMAPI_STORE`` URI;
- :mod:`.extension`: the Scrapy extension that feeds it during a crawl;
  :mod:`.closing`: that extension's close (the rest written, the run
  judged, a rescue file for what the store did not take);
- :mod:`.feed`: the changes feed (``TMAPI_CHANGES_FEED``), through Scrapy's
  feed storages and exporters;
- :mod:`.__main__`: ``tmapi-store``, to read it back.
"""
