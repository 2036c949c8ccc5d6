"""The store's settings, checked before any call."""

from __future__ import annotations

from scrapy.settings import Settings

from tmapi_crawler.store.extension import CatalogStore


def problems(**settings):
    return CatalogStore.preflight(Settings({"TMAPI_STORE_BATCH": 1000, **settings}))


def test_the_store_settings_are_checked(monkeypatch):
    monkeypatch.delenv("TMAPI_STORE", raising=False)
    assert problems() == []
    assert problems(TMAPI_STORE="sqlite:///out/c.sqlite") == []
    [feed] = problems(TMAPI_CHANGES_FEED="out/changes.jsonl")
    assert "TMAPI_CHANGES_FEED needs TMAPI_STORE" in feed
    [batch] = problems(TMAPI_STORE="sqlite:///c.sqlite", TMAPI_STORE_BATCH="0")
    assert "TMAPI_STORE_BATCH='0'" in batch
    [wait] = problems(TMAPI_STORE="sqlite:///c.sqlite", TMAPI_STORE_CLOSE_TIMEOUT="-1")
    assert "TMAPI_STORE_CLOSE_TIMEOUT='-1'" in wait and "0 or more" in wait
    assert (
        problems(TMAPI_STORE="sqlite:///c.sqlite", TMAPI_STORE_CLOSE_TIMEOUT="0") == []
    )
    [shared] = problems(
        TMAPI_STORE="sqlite:///c.sqlite", REDIS_URL="redis://127.0.0.1:9/0"
    )
    assert "REDIS_URL" in shared and "postgresql://" in shared
    assert problems(TMAPI_STORE="postgresql://u@h/db", REDIS_URL="redis://h/0") == []
    monkeypatch.setenv("TMAPI_STORE", "mysql://u@h/db")
    [scheme] = problems()
    assert "expected sqlite:///PATH or postgresql://" in scheme
