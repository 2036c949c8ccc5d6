"""What calls cost: ``TMAPI_COST_PER_CALL = "0.002 USD"`` turns counts into money.

Unset by default (TMAPI's prices depend on the plan); when set it must be a
number and a currency, checked before the first call like every setting.
Free of Scrapy so the progress line, the summary and the dry-run plan agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

SETTING = "TMAPI_COST_PER_CALL"
SPEND_SETTING = "TMAPI_MAX_SPEND"
_FORM = re.compile(r"^\s*(?P<amount>[0-9][0-9_.]*)\s*(?P<currency>[A-Za-z]{3})\s*$")


class CostError(ValueError):
    """A price per call that is not a number and a currency."""


@dataclass(frozen=True, slots=True)
class CallCost:
    """The price of one call: an exact amount and a currency code."""

    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, text: object, setting: str = SETTING) -> CallCost:
        match = _FORM.match(str(text))
        amount: Decimal | None = None
        if match:
            try:
                amount = Decimal(match["amount"])
            except InvalidOperation:
                amount = None
        if match is None or amount is None or not amount.is_finite():
            raise CostError(
                f"{setting}={text!r}: must be a number and a currency, "
                f"such as '{'5 USD' if setting == SPEND_SETTING else '0.002 USD'}'"
            )
        return cls(amount, match["currency"].upper())

    def of(self, calls: int) -> Decimal:
        """The cost of *calls* calls, exact."""
        return self.amount * calls

    def as_dict(self, calls: int) -> dict[str, str]:
        """The cost of *calls* calls as the summary and the report write it."""
        return {"amount": str(self.of(calls)), "currency": self.currency}

    def format(self, calls: int) -> str:
        """``0.094 USD``: the cost of *calls* calls, without trailing zeros."""
        total = self.of(calls).normalize()
        text = format(total, "f")
        return f"{text} {self.currency}"


def cost_from(settings: BaseSettings) -> CallCost | None:
    """The price per call from the settings, or None when it is not set."""
    value = settings.get(SETTING)
    if value is None or str(value).strip() == "":
        return None
    return CallCost.parse(value)


def cost_problems(settings: BaseSettings) -> list[str]:
    """Why ``TMAPI_COST_PER_CALL`` cannot be used, if it cannot."""
    return _problems(cost_from, settings)


def _problems(
    read: Callable[[BaseSettings], CallCost | None], settings: BaseSettings
) -> list[str]:
    try:
        read(settings)
    except CostError as exc:
        return [str(exc)]
    return []


def spend_cap_from(settings: BaseSettings) -> CallCost | None:
    """``TMAPI_MAX_SPEND``: the most a run may spend, or None (no cap);
    :class:`CostError` if it cannot be used (not an amount and a currency,
    no ``TMAPI_COST_PER_CALL`` to count it with, another currency)."""
    value = settings.get(SPEND_SETTING)
    if value is None or str(value).strip() == "":
        return None
    cap = CallCost.parse(value, SPEND_SETTING)
    try:
        cost = cost_from(settings)
    except CostError:
        cost = None  # TMAPI_COST_PER_CALL says what is wrong with it
    if cost is None:
        raise CostError(
            f"{SPEND_SETTING}={value!r}: needs {SETTING}, the price of one call "
            f"in {cap.currency}, to count what the calls cost"
        )
    if cost.currency != cap.currency:
        raise CostError(
            f"{SPEND_SETTING}={value!r}: in {cap.currency}, but {SETTING} is in "
            f"{cost.currency}; give both in one currency"
        )
    return cap


def calls_within(cap: CallCost, cost: CallCost) -> int | None:
    """How many calls at *cost* a spend of *cap* pays for (None: no bound,
    calls are free)."""
    if cost.amount <= 0:
        return None
    return int(cap.amount // cost.amount)


def spend_problems(settings: BaseSettings) -> list[str]:
    """Why ``TMAPI_MAX_SPEND`` cannot be used, if it cannot."""
    return _problems(spend_cap_from, settings)
