"""A TMAPI simulator on loopback: the same API, no token spent, no internet.

The demo, the tests and the benchmarks crawl it; users can too, to try the
crawler without spending credit. Start it with ``python -m
tmapi_crawler.simulator`` (or ``tmapi-simulator``) and point the crawler at it
with ``-s TMAPI_BASE_URL=http://127.0.0.1:PORT``.
"""
