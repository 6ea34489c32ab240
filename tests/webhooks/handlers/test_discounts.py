"""``customer.discount.*`` outcomes other than "applied", through the real app with signed
events: an object that is not a discount is ``failed`` for good, a discount on the customer
itself is ``ignored`` (no subscription to update), and a subscription Stripe answers unreadable
is ``failed`` — none of them writing a subscription."""

from __future__ import annotations

import httpx

from revenue_engine.documents import Subscription
from tests.stripe_events import event, stripe_object
from tests.stripe_fixtures import subscription
from tests.webhooks.handlers.conftest import Stripe, answered


async def test_an_object_that_is_not_a_discount_fails_for_good(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    payload = event("customer.discount.created", stripe_object("coupon"))
    stored = await answered(client, payload, "failed")
    assert stored.last_error == "MALFORMED_OBJECT: the event's object is not a discount"
    assert stripe.calls == []
    assert await Subscription.find_all().count() == 0


async def test_a_discount_on_the_customer_is_ignored(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    payload = event("customer.discount.updated", stripe_object("discount", subscription=None))
    stored = await answered(client, payload, "ignored")
    assert stored.last_error == "a customer-level discount: no subscription to update"
    assert stripe.calls == []


async def test_a_discount_whose_subscription_stripe_answers_unreadable_fails_for_good(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    stripe.answers["retrieve_subscription"] = subscription(sub_id="sub_discounted", customer="")
    discount = stripe_object("discount", subscription={"id": "sub_discounted"})
    stored = await answered(client, event("customer.discount.deleted", discount), "failed")
    assert stored.last_error == "MALFORMED_OBJECT: subscription sub_discounted has no customer"
    assert stripe.calls == ["retrieve_subscription"]
    assert await Subscription.find_all().count() == 0
