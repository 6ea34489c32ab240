"""The closed error table: listed Stripe errors become domain errors, the rest re-raise."""

from __future__ import annotations

import pytest
import stripe

from revenue_engine import errors
from revenue_engine.errors import StripeNotFound
from revenue_engine.gateway import idempotency_key
from revenue_engine.gateway.errors import translate


def test_card_error_keeps_the_decline_code() -> None:
    exc = stripe.CardError(
        "Your card was declined.",
        param=None,
        code="card_declined",
        http_status=402,
        json_body={"error": {"type": "card_error", "decline_code": "insufficient_funds"}},
    )
    domain = translate(exc)
    assert isinstance(domain, errors.PaymentDeclined)
    assert domain.decline_code == "insufficient_funds"


def test_rate_limit_reads_retry_after() -> None:
    exc = stripe.RateLimitError("slow down", http_status=429, headers={"retry-after": "2"})
    domain = translate(exc)
    assert isinstance(domain, errors.RateLimited)
    assert domain.retry_after == 2.0


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (stripe.IdempotencyError("keys", http_status=400), errors.IdempotencyConflict),
        (stripe.APIConnectionError("reset"), errors.ServiceUnavailable),
        (stripe.APIError("boom", http_status=500), errors.ServiceUnavailable),
        (
            stripe.InvalidRequestError(
                "No such customer", "id", code="resource_missing", http_status=404
            ),
            StripeNotFound,
        ),
        (
            stripe.InvalidRequestError(
                "bad amount", "amount", code="parameter_invalid", http_status=400
            ),
            errors.PaymentProviderRejected,
        ),
    ],
)
def test_table(exc: stripe.StripeError, expected: type[errors.DomainError]) -> None:
    assert isinstance(translate(exc), expected)


@pytest.mark.parametrize(
    "exc",
    [
        stripe.AuthenticationError("bad key", http_status=401),
        stripe.PermissionError("no", http_status=403),
    ],
)
def test_unlisted_errors_are_not_translated(exc: stripe.StripeError) -> None:
    assert translate(exc) is None


def test_idempotency_keys_are_derived_not_random() -> None:
    a = idempotency_key("org_1", "customer.create", 0)
    assert a == idempotency_key("org_1", "customer.create", 0)
    assert a != idempotency_key("org_2", "customer.create", 0)
    assert a != idempotency_key("org_1", "customer.create", 1)
    assert a.startswith("re-customer.create-")
    assert len(a) <= 255
