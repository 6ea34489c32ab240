"""The one-time payment handlers on Stripe's answers as the read models see them: a
PaymentIntent's status and failure reason are stored as Stripe answers them; an intent Stripe
answers in a shape the engine cannot read, or a refunded charge that is not one, fails for good
and leaves the payment as it was."""

from __future__ import annotations

import httpx

from revenue_engine.documents import Payment
from tests.stripe_events import event, stripe_object
from tests.webhooks.handlers.conftest import Stripe, answered

INTENT = "pi_handlers_1"


async def payment() -> Payment:
    document = Payment(
        stripe_payment_intent_id=INTENT,
        organization_id="org_a",
        stripe_customer_id="cus_test_1",
        amount=1000,
        currency="usd",
        status="requires_confirmation",
        fingerprint="f" * 32,
    )
    await document.insert()
    return document


async def stored() -> Payment:
    found = await Payment.find_one({"stripe_payment_intent_id": INTENT})
    assert found is not None
    return found


async def test_a_failed_attempt_is_stored_with_its_decline_code(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    await payment()
    declined = {"code": "card_declined", "decline_code": "insufficient_funds", "type": "card_error"}
    stripe.answers["retrieve_payment_intent"] = stripe_object(
        "payment_intent", id=INTENT, status="requires_payment_method", last_payment_error=declined
    )
    payload = event("payment_intent.payment_failed", stripe_object("payment_intent", id=INTENT))
    await answered(client, payload, "processed")
    found = await stored()
    assert (found.status, found.failure_reason) == ("requires_payment_method", "insufficient_funds")
    assert stripe.calls == ["retrieve_payment_intent"]


async def test_an_intent_stripe_answers_without_a_status_fails_for_good(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    await payment()
    unreadable = stripe_object("payment_intent", id=INTENT)
    del unreadable["status"]
    stripe.answers["retrieve_payment_intent"] = unreadable
    payload = event("payment_intent.succeeded", stripe_object("payment_intent", id=INTENT))
    row = await answered(client, payload, "failed")
    assert row.last_error == "MALFORMED_OBJECT: not a Stripe payment intent object"
    found = await stored()
    assert (found.status, found.failure_reason) == ("requires_confirmation", None)


async def test_a_refunded_charge_is_read_with_its_intent_expanded(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    await payment()
    charge = stripe_object(
        "charge", payment_intent={"id": INTENT, "object": "payment_intent"}, amount_refunded=300
    )
    await answered(client, event("charge.refunded", charge), "processed")
    assert (await stored()).amount_refunded == 300
    assert stripe.calls == []


async def test_a_refunded_charge_of_an_unreadable_total_fails_for_good(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    await payment()
    charge = stripe_object("charge", payment_intent=INTENT, amount_refunded="three hundred")
    row = await answered(client, event("charge.refunded", charge), "failed")
    assert row.last_error == "MALFORMED_OBJECT: not a Stripe charge object"
    assert (await stored()).amount_refunded == 0
    assert stripe.calls == []
