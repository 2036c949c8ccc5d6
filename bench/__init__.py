"""Benchmarks of tmapi-crawler against the bundled simulator (``python -m bench``)."""
