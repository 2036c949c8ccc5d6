"""The pre-flight checks: every component reports its own settings, together."""

from __future__ import annotations

from scrapy.settings import Settings

from tmapi_crawler import preflight
from tmapi_crawler.contract.operator_settings import max_calls


def project_settings(values: dict[str, str]) -> Settings:
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
    good = project_settings({"TMAPI_MAX_CALLS": "100", "TMAPI_PROGRESS": "off"})
    assert operator_setting_problems(good) == []
    assert max_calls(good) == 100
    superscript = project_settings({"TMAPI_MAX_CALLS": "10²"})  # str.isdigit says yes
    assert operator_setting_problems(superscript) == [
        "TMAPI_MAX_CALLS='10²': must be a whole number of calls, 1 or more"
    ]
    bad = project_settings(
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
