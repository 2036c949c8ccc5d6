"""Every reason a crawl cannot start, found before any paid call.

A component that reads settings of its own says what is wrong with them: a
class attribute ``preflight(settings) -> list[str]`` (a classmethod or a
staticmethod), one message per problem, each naming the setting and what it
accepts. :func:`problems` asks every component the settings enable (download
handlers, downloader and spider middlewares, extensions, item pipelines, the
scheduler, the duplicate filter and the add-ons' parts), after the project's
add-on has wired them, and the spider about its arguments
(``argument_problems(settings, arguments)``). The ``crawl`` command runs it
before the crawler exists; the spider runs it again when built by any other
runner (scrapyd, ``CrawlerProcess``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

COMPONENT_LISTS = (
    "DOWNLOADER_MIDDLEWARES",
    "SPIDER_MIDDLEWARES",
    "EXTENSIONS",
    "ITEM_PIPELINES",
)
COMPONENTS = ("SCHEDULER", "DUPEFILTER_CLASS")


def _load(path: Any) -> Any:
    try:
        return load_object(path) if isinstance(path, str) else path
    except (ImportError, NameError, AttributeError, ValueError):
        return None  # Scrapy says so, in its own words, when it loads it


def wired(settings: BaseSettings) -> BaseSettings:
    """A copy of *settings* with the add-ons applied, as the crawler will have
    them (Scrapy's ``AddonManager`` needs a crawler; the add-ons here do not)."""
    copy = settings.copy()
    for path in build_component_list(copy["ADDONS"]):
        addon = _load(path)
        try:
            update = addon().update_settings
        except (TypeError, AttributeError):  # needs a crawler, or updates nothing
            continue
        update(copy)
    return copy


def components(settings: BaseSettings) -> Iterator[Any]:
    """Every component class *settings* enable, each once."""
    seen: set[int] = set()
    candidates: list[Any] = []
    for name in COMPONENT_LISTS:
        enabled = settings.getwithbase(name).items()
        candidates += [path for path, order in enabled if order is not None]
    candidates += list(settings.getdict("DOWNLOAD_HANDLERS").values())
    candidates += [settings.get(name) for name in COMPONENTS]
    candidates += list(settings.getdict("ADDONS"))
    for path in candidates:
        component = _load(path)
        if component is None or id(component) in seen:
            continue
        seen.add(id(component))
        yield component
        for part in getattr(component, "PARTS", ()):
            if id(part) not in seen:
                seen.add(id(part))
                yield part


def setting_problems(settings: BaseSettings) -> list[str]:
    """What the enabled components find wrong with their settings; *settings*
    as the crawler has them (:func:`wired`)."""
    found: list[str] = []
    for component in components(settings):
        check = getattr(component, "preflight", None)
        if check is not None:
            found += [p for p in check(settings) if p not in found]
    return found


def problems(
    settings: BaseSettings,
    spidercls: type,
    arguments: Mapping[str, Any],
    *,
    already_wired: bool = False,
) -> list[str]:
    """Every reason the crawl cannot start, one message each: the spider's
    arguments first, then the settings, component by component."""
    if not already_wired:
        settings = wired(settings)
    found: list[str] = []
    check_arguments = getattr(spidercls, "argument_problems", None)
    if check_arguments is not None:
        found += check_arguments(settings, arguments)
    return found + [p for p in setting_problems(settings) if p not in found]
