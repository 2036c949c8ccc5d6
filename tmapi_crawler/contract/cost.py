"""What calls cost: ``TMAPI_COST_PER_CALL = "0.002 USD"`` turns counts into money.

Unset by default (TMAPI's prices depend on the plan); when set it must be a
number and a currency, checked before the first call like every setting.
Free of Scrapy so the progress line, the summary and the dry-run plan agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

SETTING = "TMAPI_COST_PER_CALL"
_FORM = re.compile(r"^\s*(?P<amount>[0-9][0-9_.]*)\s*(?P<currency>[A-Za-z]{3})\s*$")


class CostError(ValueError):
    """A price per call that is not a number and a currency."""


@dataclass(frozen=True, slots=True)
class CallCost:
    """The price of one call: an exact amount and a currency code."""

    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, text: object) -> CallCost:
        match = _FORM.match(str(text))
        amount: Decimal | None = None
        if match:
            try:
                amount = Decimal(match["amount"])
            except InvalidOperation:
                amount = None
        if match is None or amount is None or not amount.is_finite():
            raise CostError(
                f"{SETTING}={text!r}: must be a number and a currency, "
                "such as '0.002 USD'"
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
    try:
        cost_from(settings)
    except CostError as exc:
        return [str(exc)]
    return []
