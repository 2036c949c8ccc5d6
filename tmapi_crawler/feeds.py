"""Where items go when the user names no feed.

:class:`DefaultFeed` is a Scrapy add-on: unless ``-o``/``-O`` or ``FEEDS``
name a feed, it adds ``TMAPI_DEFAULT_FEED`` (one JSON Lines file per run under
``out/``, named after the spider and the start time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


class DefaultFeed:
    def update_settings(self, settings: BaseSettings) -> None:
        default = settings.get("TMAPI_DEFAULT_FEED")
        if default and not settings.getdict("FEEDS"):
            settings.set("FEEDS", {default: {"format": "jsonlines"}}, priority="addon")
