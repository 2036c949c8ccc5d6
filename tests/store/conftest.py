"""The store's tests: each on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request, tmp_path):
    """A new, empty store of each database (PostgreSQL: skipped without it)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.sqlite"
    return request.getfixturevalue("postgres")
