"""The one-time payment read models: Stripe's own example PaymentIntent, refund and charge parse
into exactly the fields the engine reads, unknown fields are ignored, and what lacks a needed
field is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from revenue_engine.errors import MalformedStripeObject
from revenue_engine.gateway.models.payment import (
    StripeCharge,
    StripePaymentIntent,
    StripeRefund,
    parse_charge,
    parse_payment_intent,
    parse_refund,
)
from tests.stripe_events import stripe_object


def test_stripes_example_payment_intent_parses() -> None:
    intent = StripePaymentIntent.model_validate(stripe_object("payment_intent"))
    assert (intent.id, intent.status) == ("pi_1PgafyB7WZ01zgkWSjxsAJo3", "requires_payment_method")
    assert intent.client_secret == "pi_1PgafyB7WZ01zgkWSjxsAJo3_secret_Dm43xiq1k0ywrRRjDoi8y1gkM"
    # The example's last error says only its type: no reason to store.
    assert intent.last_payment_error is not None
    assert intent.failure_reason is None


def test_stripes_example_refund_and_charge_parse() -> None:
    refund = StripeRefund.model_validate(stripe_object("refund"))
    assert (refund.id, refund.amount, refund.charge) == (
        "re_1Pgc72B7WZ01zgkWqPvrRrPE",
        100,
        "ch_1PgafuB7WZ01zgkWXYmPNZs8",
    )
    charge = StripeCharge.model_validate(stripe_object("charge"))
    assert (charge.id, charge.amount_refunded, charge.payment_intent) == (
        "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        0,
        None,
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            {"message": "Your card was declined.", "decline_code": "generic_decline"},
            "Your card was declined.",
        ),
        ({"decline_code": "insufficient_funds", "code": "card_declined"}, "insufficient_funds"),
        ({"message": None, "decline_code": None}, None),
        ({}, None),
        (None, None),
    ],
)
def test_the_failure_reason_is_the_message_else_the_decline_code(
    error: dict[str, Any] | None, reason: str | None
) -> None:
    intent = parse_payment_intent(stripe_object("payment_intent", last_payment_error=error))
    assert intent.failure_reason == reason


def test_unknown_fields_are_ignored_and_the_models_are_frozen() -> None:
    raw = stripe_object("payment_intent", a_field_of_a_later_api_version={"nested": True})
    raw["last_payment_error"] = {"message": "declined", "another_new_field": 1}
    intent = parse_payment_intent(raw)
    assert "a_field_of_a_later_api_version" not in intent.model_dump()
    assert intent.model_dump()["last_payment_error"] == {
        "decline_code": None,
        "message": "declined",
    }
    with pytest.raises(ValidationError):
        intent.status = "succeeded"  # type: ignore[misc]


def test_expanded_references_are_read_as_their_ids() -> None:
    refund = parse_refund(stripe_object("refund", charge={"id": "ch_expanded", "object": "charge"}))
    assert refund.charge == "ch_expanded"
    charge = parse_charge(
        stripe_object("charge", payment_intent={"id": "pi_expanded", "object": "payment_intent"})
    )
    assert charge.payment_intent == "pi_expanded"
    assert parse_charge(stripe_object("charge", payment_intent="pi_1")).payment_intent == "pi_1"


PARSERS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("payment_intent", parse_payment_intent, "payment intent"),
    ("refund", parse_refund, "refund"),
    ("charge", parse_charge, "charge"),
]


@pytest.mark.parametrize(("kind", "parse", "name"), PARSERS)
@pytest.mark.parametrize("field", ["id", "object"])
def test_a_missing_id_or_kind_is_refused(
    kind: str, parse: Callable[[Any], Any], name: str, field: str
) -> None:
    raw = stripe_object(kind)
    del raw[field]
    with pytest.raises(MalformedStripeObject, match=f"not a Stripe {name} object") as caught:
        parse(raw)
    assert isinstance(caught.value.__cause__, ValidationError)
    assert field in str(caught.value.__cause__)


def test_a_payment_intent_without_a_status_is_refused() -> None:
    raw = stripe_object("payment_intent")
    del raw["status"]
    with pytest.raises(MalformedStripeObject, match="not a Stripe payment intent object"):
        parse_payment_intent(raw)


@pytest.mark.parametrize(("kind", "parse", "name"), PARSERS)
def test_an_object_of_another_kind_is_refused(
    kind: str, parse: Callable[[Any], Any], name: str
) -> None:
    with pytest.raises(MalformedStripeObject, match=f"not a Stripe {name} object"):
        parse(stripe_object("invoice"))


@pytest.mark.parametrize(
    ("kind", "parse", "field", "value"),
    [
        ("refund", parse_refund, "amount", "a lot"),
        ("charge", parse_charge, "amount_refunded", {"total": 1}),
        ("charge", parse_charge, "payment_intent", 7),
        ("payment_intent", parse_payment_intent, "client_secret", ["secret"]),
        ("payment_intent", parse_payment_intent, "last_payment_error", "declined"),
    ],
)
def test_a_mistyped_field_is_refused(
    kind: str, parse: Callable[[Any], Any], field: str, value: Any
) -> None:
    with pytest.raises(MalformedStripeObject):
        parse(stripe_object(kind, **{field: value}))
