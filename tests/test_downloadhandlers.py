"""The token handler wraps whichever download handler a crawl would use."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from tmapi_crawler import downloadhandlers
from tmapi_crawler.downloadhandlers import TOKEN_HANDLER, TokenDownloadHandler
from tmapi_crawler.preflight import wired

AIOHTTP = "scrapy.core.downloader.handlers._aiohttp.AiohttpDownloadHandler"
HTTPX = "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler"


class OwnTokenHandler(TokenDownloadHandler):
    pass


def crawl_settings(**given: object) -> Settings:
    settings = Settings()
    settings.setmodule("tmapi_crawler.settings", priority="project")
    for name, value in given.items():
        settings.set(name, value, priority="cmdline")
    return wired(settings)


def test_without_a_choice_the_token_handler_sends_through_scrapys_own():
    settings = crawl_settings()
    assert settings.getdict("DOWNLOAD_HANDLERS")["http"] == TOKEN_HANDLER
    assert settings.getdict("DOWNLOAD_HANDLERS")["https"] == TOKEN_HANDLER
    assert settings.getdict("TMAPI_DOWNLOAD_HANDLERS") == {}


@pytest.mark.parametrize("given", [{"http": AIOHTTP}, f'{{"http": "{AIOHTTP}"}}'])
def test_a_handler_you_choose_is_wrapped_not_replaced(given):
    settings = crawl_settings(DOWNLOAD_HANDLERS=given)
    assert settings.getdict("DOWNLOAD_HANDLERS")["http"] == TOKEN_HANDLER
    assert settings.getdict("DOWNLOAD_HANDLERS")["https"] == TOKEN_HANDLER
    assert settings.getdict("TMAPI_DOWNLOAD_HANDLERS") == {"http": AIOHTTP}


def test_the_wrapped_handler_you_name_wins_over_a_moved_one():
    settings = crawl_settings(
        DOWNLOAD_HANDLERS={"http": AIOHTTP}, TMAPI_DOWNLOAD_HANDLERS={"http": HTTPX}
    )
    assert settings.getdict("TMAPI_DOWNLOAD_HANDLERS") == {"http": HTTPX}


def test_a_scheme_switched_off_or_an_own_token_handler_is_kept():
    own = f"{__name__}.OwnTokenHandler"
    settings = crawl_settings(DOWNLOAD_HANDLERS={"http": None, "https": own})
    handlers = settings.getdict("DOWNLOAD_HANDLERS")
    assert handlers["http"] is None
    assert handlers["https"] == own
    assert settings.getdict("TMAPI_DOWNLOAD_HANDLERS") == {}


def test_a_wrapped_handler_that_cannot_load_is_a_preflight_problem():
    settings = crawl_settings(
        DOWNLOAD_HANDLERS={"http": "no.such.Handler"}, TMAPI_TOKEN="t" * 12
    )
    found = downloadhandlers.handler_problems(settings)
    assert len(found) == 1
    assert "TMAPI_DOWNLOAD_HANDLERS['http']='no.such.Handler'" in found[0]
