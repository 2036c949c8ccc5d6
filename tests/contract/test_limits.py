"""Where the learned limit is kept, and how (no Scrapy, no crawl)."""

from __future__ import annotations

import json
from pathlib import Path

from tmapi_crawler.contract import limits
from tmapi_crawler.contract.credentials import token_key


def test_the_limits_live_in_the_user_cache_unless_a_job_directory_holds_them():
    home_cache = limits.default_path({})
    assert home_cache == Path.home() / ".cache" / "tmapi-crawler" / "limits.json"
    xdg = limits.default_path({"XDG_CACHE_HOME": "/c"})
    assert xdg == Path("/c/tmapi-crawler/limits.json")
    in_job = limits.default_path({"XDG_CACHE_HOME": "/c"}, jobdir="/jobs/run1")
    assert in_job == Path("/jobs/run1/tmapi-limits.json")


def test_each_account_keeps_its_own_limit_under_a_digest_of_its_token(tmp_path):
    path = tmp_path / "deep" / "limits.json"
    one, other = token_key("token-one-123456"), token_key("token-two-654321")
    assert one != other and len(one) == 32
    assert limits.read_limit(path, one) is None
    limits.write_limit(path, one, 4)
    limits.write_limit(path, other, 12)
    limits.write_limit(path, one, 5)
    assert (limits.read_limit(path, one), limits.read_limit(path, other)) == (5, 12)
    text = path.read_text()
    assert "token-one" not in text and "token-two" not in text
    assert json.loads(text)["version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["limits.json"]  # no leftovers


def test_an_unreadable_file_remembers_nothing_and_is_rewritten(tmp_path):
    path = tmp_path / "limits.json"
    key = token_key("some-token-0000")
    negative = json.dumps({"limits": {key: {"limit": -3}}})
    for broken in ("{not json", '{"limits": [1, 2]}', negative):
        path.write_text(broken)
        assert limits.read_limit(path, key) is None
    limits.write_limit(path, key, 7)
    assert limits.read_limit(path, key) == 7


def test_the_page_size_served_is_kept_beside_the_limit(tmp_path):
    path = tmp_path / "limits.json"
    key = token_key("some-token-0000")
    limits.write_limit(path, key, 4)
    limits.write_limit(path, key, 20, field="page_size")
    limits.write_limit(path, key, 5)
    assert limits.read_limit(path, key) == 5
    assert limits.read_limit(path, key, "page_size") == 20
    assert limits.read_limit(path, token_key("other-token-000"), "page_size") is None
