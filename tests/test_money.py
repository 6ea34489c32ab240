"""The engine's money rules and the emulator's own copies of them say the same as Stripe."""

from __future__ import annotations

from stripe_emulator import reference

from revenue_engine import money


def test_the_engine_and_the_emulator_agree_on_stripes_money_rules() -> None:
    assert set(reference.CURRENCIES) == money.CURRENCIES
    assert money.THREE_DECIMAL == reference.THREE_DECIMAL
    assert money.MIN_CHARGE == reference.MINIMUM_AMOUNT
    assert money.MAX_AMOUNT == reference.MAXIMUM_AMOUNT
    assert money.MAX_CHARGE == reference.MAXIMUM_AMOUNTS
    for code in money.CURRENCIES:
        assert money.min_amount(code) == reference.minimum_amount(code), code
        assert money.max_amount(code) == reference.maximum_amount(code), code
