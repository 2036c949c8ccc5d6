"""The pre-flight checks, in process: each component that reads settings of
its own says what is wrong with them, before any call; the crawl command and
the spider ask every enabled component (``tmapi_crawler.preflight``)."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from tests.crawlers import project_crawler, project_settings
from tmapi_crawler import preflight
from tmapi_crawler.contract.operator_settings import max_calls
from tmapi_crawler.exceptions import CrawlRefused
from tmapi_crawler.spiders.category import CategorySpider
from tmapi_crawler.spiders.category_jobs import CategoryJobsSpider


class PickyPipeline:
    """A user's own component with a setting of its own."""

    @staticmethod
    def preflight(settings: Settings) -> list[str]:
        value = settings.get("PICKY_LEVEL")
        return (
            [] if value in ("low", "high") else [f"PICKY_LEVEL={value!r}: low or high"]
        )


def settings_of(**values: object) -> Settings:
    settings = Settings()
    settings.setdict(project_settings(**values), priority="project")
    return settings


def test_each_enabled_component_reports_its_own_settings(monkeypatch):
    monkeypatch.delenv("TMAPI_TOKEN", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = settings_of(
        TMAPI_TOKEN_PLACEMENT="cookie",  # the download handler's
        TMAPI_MAX_CALLS="lots",  # the call budget's
        TMAPI_COST_PER_CALL="cheap",  # the progress display's and the summary's
        REDIS_URL="http://127.0.0.1:1",  # the Redis scheduler's (wired by the add-on)
        FEEDS={"out/items.xml2": {}},  # the default feed's
        ITEM_PIPELINES={f"{__name__}.PickyPipeline": 900},
    )
    problems = preflight.problems(settings, CategorySpider, {"cat_id": "1,x"})
    text = "\n".join(problems)
    assert problems[0].startswith("invalid crawl arguments")  # the spider's first
    for expected in (
        "No TMAPI token",
        "TMAPI_TOKEN_PLACEMENT='cookie'",
        "TMAPI_MAX_CALLS='lots'",
        "TMAPI_COST_PER_CALL='cheap'",
        "REDIS_URL='http://127.0.0.1:1'",
        "format 'xml2' is unknown",
        "PICKY_LEVEL=None: low or high",
    ):
        assert expected in text, text
    assert text.count("TMAPI_COST_PER_CALL") == 1  # asked of two components, said once


def test_a_disabled_component_is_not_asked(monkeypatch):
    monkeypatch.setenv("TMAPI_TOKEN", "a-token-of-length")
    settings = settings_of(
        TMAPI_MAX_CALLS="lots",
        DOWNLOADER_MIDDLEWARES={
            "tmapi_crawler.downloadermiddlewares.budget.CallBudget": None
        },
    )
    assert preflight.problems(settings, CategorySpider, {"cat_id": "1"}) == []


def test_the_spider_refuses_to_start_when_built_by_another_runner(monkeypatch):
    monkeypatch.delenv("TMAPI_TOKEN", raising=False)
    crawler = project_crawler(CategorySpider)
    with pytest.raises(CrawlRefused, match="No TMAPI token"):
        crawler._create_spider(cat_id="1")


def test_the_jobs_spider_takes_no_arguments_and_needs_redis(monkeypatch):
    monkeypatch.setenv("TMAPI_TOKEN", "a-token-of-length")
    monkeypatch.delenv("REDIS_URL", raising=False)
    problems = preflight.problems(settings_of(), CategoryJobsSpider, {"cat_id": "1"})
    assert problems[0].startswith("category_jobs takes no arguments (got cat_id)")
    assert "category_jobs needs Redis" in problems[1]


def test_the_error_contract_and_the_base_url_are_checked_before_any_call(monkeypatch):
    monkeypatch.setenv("TMAPI_TOKEN", "a-token-of-length")
    settings = settings_of(
        TMAPI_BASE_URL="api.tmapi.top",
        TMAPI_MAX_RETRIES='{"temporary": -1}',
        TMAPI_MAX_RETRIES_PER_PAGE="eight",
        TMAPI_CONCURRENCY_START=0,
        TMAPI_BACKOFF_BASE="1s",
        TMAPI_ADAPTIVE_CONCURRENCY="sometimes",
    )
    problems = preflight.problems(settings, CategorySpider, {"cat_id": "1"})
    assert [p.split("=")[0] for p in problems] == [
        "TMAPI_BASE_URL",
        "TMAPI_MAX_RETRIES",
        "TMAPI_MAX_RETRIES_PER_PAGE",
        "TMAPI_CONCURRENCY_START",
        "TMAPI_BACKOFF_BASE",
        "TMAPI_ADAPTIVE_CONCURRENCY",
    ]
    good = settings_of(TMAPI_MAX_RETRIES='{"499": 5, "network": 0}')
    assert preflight.problems(good, CategorySpider, {"cat_id": "1"}) == []


def cmdline_settings(values: dict[str, str]) -> Settings:
    """The project's settings with *values* given on the command line, wired
    as a crawler would have them."""
    settings = Settings()
    settings.setmodule("tmapi_crawler.settings", priority="project")
    settings.setdict(values, priority="cmdline")
    return preflight.wired(settings)


def operator_setting_problems(settings: Settings) -> list[str]:
    return preflight.setting_problems(settings)


def test_operator_settings_are_checked_together(monkeypatch):
    monkeypatch.setenv("TMAPI_TOKEN", "a-token")  # the token check is not this test's
    good = cmdline_settings({"TMAPI_MAX_CALLS": "100", "TMAPI_PROGRESS": "off"})
    assert operator_setting_problems(good) == []
    assert max_calls(good) == 100
    superscript = cmdline_settings({"TMAPI_MAX_CALLS": "10²"})  # str.isdigit says yes
    assert operator_setting_problems(superscript) == [
        "TMAPI_MAX_CALLS='10²': must be a whole number of calls, 1 or more"
    ]
    bad = cmdline_settings(
        {
            "TMAPI_MAX_CALLS": "1e3",
            "TMAPI_PROGRESS_INTERVAL": "0",
            "TMAPI_SUMMARY": "maybe",
        }
    )
    problems = operator_setting_problems(bad)
    # each component reports its own settings, in the order they are wired
    assert [p.split("=")[0] for p in problems] == [
        "TMAPI_MAX_CALLS",
        "TMAPI_PROGRESS_INTERVAL",
        "TMAPI_SUMMARY",
    ]


@pytest.mark.parametrize(
    ("base_url", "allow", "refused"),
    [
        ("https://api.tmapi.io", None, False),
        ("http://api.tmapi.top", None, True),
        ("http://api.tmapi.top", "true", False),
        ("http://127.0.0.1:8000", None, False),
        ("http://127.8.9.1:8000/prefix", None, False),
        ("http://[::1]:8000", None, False),
        ("http://localhost:8000", None, False),
        ("http://10.0.0.5:8000", None, True),
        ("http://localhost.example.com", None, True),
    ],
)
def test_plain_http_beyond_loopback_is_refused_unless_allowed_by_name(
    monkeypatch, base_url, allow, refused
):
    monkeypatch.setenv("TMAPI_TOKEN", "a-token-of-length")
    extra = {} if allow is None else {"TMAPI_ALLOW_PLAIN_HTTP": allow}
    settings = settings_of(TMAPI_BASE_URL=base_url, **extra)
    problems = preflight.problems(settings, CategorySpider, {"cat_id": "1"})
    if not refused:
        assert problems == []
        return
    (problem,) = problems
    assert problem.startswith(f"TMAPI_BASE_URL={base_url!r}: plain http://")
    assert "token" in problem and "TMAPI_ALLOW_PLAIN_HTTP" in problem


def test_the_default_base_url_is_https():
    settings = settings_of()
    assert settings.get("TMAPI_BASE_URL") == "https://api.tmapi.io"
