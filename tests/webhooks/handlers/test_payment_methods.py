"""``payment_method.*`` and ``setup_intent.succeeded`` outcomes other than "applied", through the
real app with signed events: an object of another kind is ``failed`` for good; a method or
intent that names no customer of ours, or a customer Stripe no longer has, is ``ignored`` —
and the stored payment-method view is left as it was."""

from __future__ import annotations

import httpx
import pytest

from revenue_engine.documents import Customer
from revenue_engine.errors import StripeNotFound
from tests.stripe_events import event, stripe_object
from tests.webhooks.handlers.conftest import Stripe, answered


async def our_customer() -> Customer:
    customer = Customer(organization_id="org_a", stripe_customer_id="cus_test_1")
    await customer.insert()
    return customer


async def view_untouched() -> None:
    stored = await Customer.find_one({"stripe_customer_id": "cus_test_1"})
    assert stored is not None
    assert stored.payment_methods == []
    assert stored.payment_methods_seen_at is None


@pytest.mark.parametrize(
    ("type_", "reason"),
    [
        ("payment_method.attached", "not a payment method"),
        ("payment_method.detached", "not a payment method"),
        ("setup_intent.succeeded", "not a setup intent"),
    ],
)
async def test_an_object_of_another_kind_fails_for_good(
    client: httpx.AsyncClient, stripe: Stripe, type_: str, reason: str
) -> None:
    await our_customer()
    payload = event(type_, stripe_object("invoice", customer="cus_test_1"))
    stored = await answered(client, payload, "failed")
    assert stored.last_error == f"MALFORMED_OBJECT: the event's object is {reason}"
    assert stripe.calls == []
    await view_untouched()


async def test_a_detached_method_of_no_customer_we_know_is_ignored(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    """A detached method names its customer only in ``previous_attributes``; without one, the
    customer whose view lists the method is refreshed — here there is none."""
    await our_customer()
    method = stripe_object("payment_method", customer=None)
    stored = await answered(client, event("payment_method.detached", method), "ignored")
    assert stored.last_error == "no organization has this customer"
    assert stripe.calls == []
    await view_untouched()


async def test_a_setup_intent_without_a_customer_is_ignored(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    intent = stripe_object("setup_intent", customer=None)
    stored = await answered(client, event("setup_intent.succeeded", intent), "ignored")
    assert stored.last_error == "a setup intent without a customer"
    assert stripe.calls == []


@pytest.mark.parametrize("type_", ["payment_method.attached", "setup_intent.succeeded"])
async def test_a_customer_stripe_no_longer_has_is_ignored(
    client: httpx.AsyncClient, stripe: Stripe, type_: str
) -> None:
    """Stripe answers 404 for the customer: ``customer.deleted`` removes our document."""
    await our_customer()
    stripe.answers["retrieve_customer_defaults"] = StripeNotFound("customer")
    kind = type_.split(".")[0]
    payload = event(type_, stripe_object(kind, customer="cus_test_1"))
    stored = await answered(client, payload, "ignored")
    assert stored.last_error == "the customer no longer exists at Stripe"
    assert stripe.calls == ["retrieve_customer_defaults"]
    await view_untouched()
