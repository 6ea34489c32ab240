"""The one table of what a handler's error makes of a delivery, and the one table of the
answer each outcome gets."""

from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect

from revenue_engine import errors
from revenue_engine.webhooks.dispatch import Outcome
from revenue_engine.webhooks.endpoint import ANSWERS
from revenue_engine.webhooks.errors import (
    OUTCOMES,
    CatalogMismatch,
    IgnoredEvent,
    MalformedObject,
    TransientWebhookError,
    Verdict,
    outcome_of,
)


@pytest.mark.parametrize(
    ("exc", "verdict", "reason"),
    [
        (IgnoredEvent("older than applied"), Verdict.IGNORED, "older than applied"),
        (MalformedObject("no items"), Verdict.FAILED, "MALFORMED_OBJECT: no items"),
        (CatalogMismatch("amount differs"), Verdict.FAILED, "CATALOG_MISMATCH: amount differs"),
        (
            errors.MalformedStripeObject("subscription sub_1 has no customer"),
            Verdict.FAILED,
            "MALFORMED_OBJECT: subscription sub_1 has no customer",
        ),
        (
            errors.StripeNotFound("id"),
            Verdict.FAILED,
            "NOT_FOUND: an object the event refers to does not exist at Stripe "
            "(stripe object 'id' was not found)",
        ),
        (TransientWebhookError("key sk_live_abc123 down"), Verdict.RETRY, "key *** down"),
        (
            errors.UnknownOrganization("no organization has cus_1"),
            Verdict.RETRY,
            "UnknownOrganization: no organization has cus_1",
        ),
        (
            errors.ServiceUnavailable("Stripe down"),
            Verdict.RETRY,
            "ServiceUnavailable: Stripe down",
        ),
        (errors.RateLimited("slow down"), Verdict.RETRY, "RateLimited: slow down"),
        (errors.Busy("busy"), Verdict.RETRY, "Busy: busy"),  # a RateLimited: its row
        (AutoReconnect("reset"), Verdict.RETRY, "AutoReconnect: reset"),
        (TimeoutError(), Verdict.RETRY, "TimeoutError"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_each_error_takes_the_row_of_its_nearest_class(
    exc: BaseException, verdict: Verdict, reason: str
) -> None:
    assert outcome_of(exc) == (verdict, reason)


@pytest.mark.parametrize(
    "exc", [KeyError("items"), errors.PaymentProviderRejected("no", "x"), errors.NotFound("a", "b")]
)
def test_an_error_without_a_row_is_a_handler_bug(exc: Exception) -> None:
    """A plain ``NotFound`` is not Stripe's: only ``StripeNotFound`` has a row."""
    assert outcome_of(exc) is None


def test_each_row_is_reached_by_its_own_class() -> None:
    assert len({row.exception for row in OUTCOMES}) == len(OUTCOMES)


def test_every_outcome_has_one_answer() -> None:
    assert set(ANSWERS) == set(Outcome)
    assert {outcome for outcome, (status, _) in ANSWERS.items() if status != 200} == {
        Outcome.BUSY,
        Outcome.RETRY,
    }
    assert ANSWERS[Outcome.RETRY][0] == 503
    assert ANSWERS[Outcome.BUSY][0] == 409
