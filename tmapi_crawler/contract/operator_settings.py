"""The operator's settings (progress, summary, budget, cost), checked before any call.

Each reader returns the value a component uses or raises :class:`SettingError`
naming the setting and what it accepts; the component that reads a setting
reports its message in the pre-flight check (:func:`problems_of`,
:mod:`tmapi_crawler.preflight`), so a typo in ``-s TMAPI_MAX_CALLS=1O0``
stops the run before it spends anything. Free of Scrapy: *settings* is
anything with ``get`` (Scrapy's settings, a dict).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from tmapi_crawler import settings as defaults
from tmapi_crawler.contract.api import int_of_digits

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

_SWITCH_WORDS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}


class SettingError(ValueError):
    """A setting whose value cannot be used."""


def switch(settings: BaseSettings, name: str) -> bool:
    """An on/off setting: true/false/1/0/yes/no/on/off, or a real bool; left
    empty, its default (``tmapi_crawler.settings``)."""
    value = settings.get(name)
    if value is None or value == "":
        return bool(getattr(defaults, name))
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in _SWITCH_WORDS:
        raise SettingError(
            f"{name}={value!r}: must be one of true, false, 1, 0, yes, no, on, off"
        )
    return _SWITCH_WORDS[word]


def progress_interval(settings: BaseSettings) -> float:
    """Seconds between two progress log lines (TMAPI_PROGRESS_INTERVAL)."""
    value = settings.get("TMAPI_PROGRESS_INTERVAL")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise SettingError(
            f"TMAPI_PROGRESS_INTERVAL={value!r}: must be a number of seconds above 0"
        )
    return seconds


def count(settings: BaseSettings, name: str, minimum: int = 0) -> int:
    """A whole-number setting, *minimum* or more."""
    value = settings.get(name)
    number = None if isinstance(value, bool) else int_of_digits(str(value).strip())
    if number is None or number < minimum:
        raise SettingError(
            f"{name}={value!r}: must be a whole number, {minimum} or more"
        )
    return number


def seconds(settings: BaseSettings, name: str) -> float:
    """A duration setting: a number of seconds, 0 or more."""
    value = settings.get(name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not 0 <= number < float("inf"):
        raise SettingError(f"{name}={value!r}: must be a number of seconds, 0 or more")
    return number


def retry_limits(settings: BaseSettings, name: str) -> dict[str, int]:
    """``{reason: retries}``: a reason is a code ("499"), a kind ("temporary")
    or "network"; each limit a whole number, 0 or more."""
    value = settings.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    limits = value if isinstance(value, Mapping) else None
    if limits is None or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for v in limits.values()
    ):
        raise SettingError(
            f"{name}={settings.get(name)!r}: must be a JSON object of reasons "
            'and whole numbers of retries, such as {"temporary": 3, "499": 5}'
        )
    return {str(reason): limit for reason, limit in limits.items()}


def max_calls(settings: BaseSettings, name: str = "TMAPI_MAX_CALLS") -> int | None:
    """The most calls this run may send (TMAPI_MAX_CALLS, or the cap *name*
    sets), or None for no cap."""
    value = settings.get(name)
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    number = None if isinstance(value, bool) else int_of_digits(text)
    if number is None or number < 1:
        raise SettingError(
            f"{name}={value!r}: must be a whole number of calls, 1 or more"
        )
    return number


def problems_of(*readers: Callable[[], object]) -> list[str]:
    """The message of each reader that raises :class:`SettingError`."""
    problems = []
    for read in readers:
        try:
            read()
        except SettingError as exc:
            problems.append(str(exc))
    return problems
