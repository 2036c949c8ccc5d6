"""TMAPI_COST_PER_CALL: a number and a currency, exact."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tmapi_crawler.contract.cost import CallCost, CostError


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [("0.002 USD", "0.002", "USD"), ("1.5eur", "1.5", "EUR"), (" 3 CNY ", "3", "CNY")],
)
def test_a_cost_is_a_number_and_a_currency(text, amount, currency):
    cost = CallCost.parse(text)
    assert (cost.amount, cost.currency) == (Decimal(amount), currency)


@pytest.mark.parametrize("text", ["cheap", "0.002", "USD", "-1 USD", "1.2.3 USD", ""])
def test_anything_else_is_refused_naming_the_setting(text):
    with pytest.raises(CostError, match=r"TMAPI_COST_PER_CALL=.*such as '0.002 USD'"):
        CallCost.parse(text)


def test_costs_are_exact():
    assert CallCost.parse("0.1 USD").format(3) == "0.3 USD"  # not 0.30000000000000004
