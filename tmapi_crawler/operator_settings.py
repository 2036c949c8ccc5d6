"""The operator's settings (progress, summary, budget, cost), checked before any call.

Each reader returns the value a component uses or raises :class:`SettingError`
naming the setting and what it accepts; :func:`operator_setting_problems`
collects every such message for the spider's pre-flight check, so a typo in
``-s TMAPI_MAX_CALLS=1O0`` stops the run before it spends anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tmapi_crawler.api import int_of_digits
from tmapi_crawler.cost import cost_problems

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

_SWITCH_WORDS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}


class SettingError(ValueError):
    """A setting whose value cannot be used."""


def switch(settings: BaseSettings, name: str, default: bool) -> bool:
    """An on/off setting: true/false/1/0/yes/no/on/off, or a real bool."""
    value = settings.get(name)
    if value is None or value == "":
        return default
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
    value = settings.get("TMAPI_PROGRESS_INTERVAL", 10)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise SettingError(
            f"TMAPI_PROGRESS_INTERVAL={value!r}: must be a number of seconds above 0"
        )
    return seconds


def max_calls(settings: BaseSettings) -> int | None:
    """The most calls this run may send (TMAPI_MAX_CALLS), or None for no cap."""
    value = settings.get("TMAPI_MAX_CALLS")
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    number = None if isinstance(value, bool) else int_of_digits(text)
    if number is None or number < 1:
        raise SettingError(
            f"TMAPI_MAX_CALLS={value!r}: must be a whole number of calls, 1 or more"
        )
    return number


def operator_setting_problems(settings: BaseSettings) -> list[str]:
    """Every operator setting that cannot be used, one message each."""
    problems = cost_problems(settings)
    checks = (
        lambda: switch(settings, "TMAPI_PROGRESS", True),
        lambda: switch(settings, "TMAPI_SUMMARY", True),
        lambda: progress_interval(settings),
        lambda: max_calls(settings),
    )
    for check in checks:
        try:
            check()
        except SettingError as exc:
            problems.append(str(exc))
    return problems
