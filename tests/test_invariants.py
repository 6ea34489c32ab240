"""Invariants are checked explicitly: they hold under ``python -O`` (which strips ``assert``)
and a broken one is a clear, typed exception rather than an ``AssertionError`` or a silent pass."""

from __future__ import annotations

import pytest

from revenue_engine.documents import WebhookEventStatus
from revenue_engine.invariants import InvariantError, present
from revenue_engine.webhooks import ledger


def test_present_returns_the_value_and_names_what_is_missing() -> None:
    assert present(0, "a count") == 0  # falsy but there
    with pytest.raises(InvariantError, match="the plan of subscription s1 is missing"):
        present(None, "the plan of subscription s1")


async def test_finishing_a_claim_with_a_status_that_is_not_final_is_refused() -> None:
    claim = ledger.Claim("evt_1", "token", WebhookEventStatus.PROCESSING, 1)
    with pytest.raises(ValueError, match="not a finished status"):
        await ledger.finish(claim, WebhookEventStatus.PROCESSING)
    with pytest.raises(ValueError, match="only a failed event"):
        await ledger.finish(claim, WebhookEventStatus.PROCESSED, parked_for_age=True)
