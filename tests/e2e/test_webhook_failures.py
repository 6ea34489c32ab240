"""The permanent-failure paths of the billing webhook handlers, through the real app with
signed payloads and Stripe (the emulator) as the source of truth: an event whose object is not
what its type says, or names an object Stripe does not have, is answered 200 ``failed`` (Stripe
stops retrying), recorded with its reason for a replay, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from stripe_emulator import Emulator

from revenue_engine.documents import Customer, Payment, Subscription, WebhookEvent
from revenue_engine.documents.webhook_event import WebhookEventStatus
from tests.stripe_events import event, post, stripe_object


@pytest.fixture
def engine(signed_engine: httpx.AsyncClient) -> httpx.AsyncClient:
    """The engine with a webhook secret (``tests.e2e.conftest.signed_engine``)."""
    return signed_engine


async def failed_with(engine: httpx.AsyncClient, payload: dict[str, Any], reason: str) -> None:
    response = await post(engine, payload)
    assert response.status_code == 200, response.text
    row = await WebhookEvent.find_one({"event_id": payload["id"]})
    assert row is not None
    assert row.status is WebhookEventStatus.FAILED
    assert reason in (row.last_error or ""), row.last_error
    # Nothing of the billing state was written.
    assert await Subscription.find_all().count() == 0
    assert await Payment.find_all().count() == 0
    assert await Customer.find_all().count() == 0


@pytest.mark.parametrize(
    ("type_", "kind", "reason"),
    [
        ("customer.subscription.updated", "invoice", "not a subscription"),
        ("invoice.paid", "subscription", "not an invoice"),
        ("checkout.session.completed", "invoice", "not a checkout session"),
        ("payment_intent.succeeded", "invoice", "not a payment intent"),
        ("charge.refunded", "invoice", "not a charge"),
        ("customer.updated", "invoice", "not a customer"),
    ],
)
async def test_an_object_of_another_kind_fails_for_good(
    engine: httpx.AsyncClient, emulator: Emulator, type_: str, kind: str, reason: str
) -> None:
    await failed_with(engine, event(type_, stripe_object(kind)), reason)
    # The object was judged as sent: Stripe was not asked to re-read anything.
    assert emulator.request_count() == 0


async def test_a_subscription_stripe_does_not_have_fails_for_good(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    gone = stripe_object("subscription", id="sub_1NotAtStripe00000000000")
    await failed_with(engine, event("customer.subscription.updated", gone), "does not exist")
    # The reason names the object, in Stripe's words.
    await failed_with(
        engine, event("customer.subscription.updated", gone), "sub_1NotAtStripe00000000000"
    )
    # It was re-read once (Stripe is the truth), and answered 404.
    assert emulator.request_count("GET", "/v1/subscriptions/sub_1NotAtStripe*") >= 1


async def test_an_invoice_of_a_subscription_stripe_does_not_have_fails_for_good(
    engine: httpx.AsyncClient,
) -> None:
    invoice = stripe_object("invoice")
    invoice["parent"] = {
        "type": "subscription_details",
        "subscription_details": {"subscription": "sub_1NotAtStripe00000000001", "metadata": {}},
        "quote_details": None,
    }
    await failed_with(engine, event("invoice.paid", invoice), "does not exist")
