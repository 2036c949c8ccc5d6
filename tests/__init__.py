"""The tests mirror the package tree: ``tests/contract/test_answer.py`` tests
``tmapi_crawler/contract/answer.py``, ``tests/downloadermiddlewares/`` the
downloader middlewares, and so on; ``tests/test_preflight.py`` a top-level
module. A component is tested in-process there, with the project's settings
and add-on (``tests/crawlers.py``).

``tests/crawls/`` holds the end-to-end tests: real ``scrapy crawl``
processes against the simulator (and Redis, moto's S3, scrapyd), each a
whole crawl that goes through most components at once, named by what a user
checks (errors, exports, operating a crawl, resume, dedupe, ...).

``make test`` runs them all in 2 processes; ``pytest tests/contract`` the
quick ones alone.
"""
