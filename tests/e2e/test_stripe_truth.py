"""Where the stored state may be behind Stripe, the engine asks Stripe: a payment confirmed in
the browser (with its client secret) before its webhook arrived can be refunded and reads as
paid; a customer whose card is its ``default_source`` (the legacy Sources API) has a payment
method for ``createSubscription``; and a price found by lookup key must carry that key, even from
a server that ignores the filter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator
from stripe_emulator.forms import Params
from stripe_emulator.routing import Route, Router

from revenue_engine.documents import BillingInterval, Payment, SubscriptionPlan
from tests.e2e.ops import (
    CHECKOUT,
    CREATE_CUSTOMER,
    CREATE_PI,
    REFUND,
    call,
    only,
    plan_price_at_stripe,
)
from tests.e2e.test_subscriptions import subscribe

ORDER = {"amount": 2500, "currency": "usd", "metadata": []}
LIST_PRICES = ("GET", "/v1/prices")
READ = "query($id: ID!) { paymentIntent(id: $id) { id status amountRefunded } }"


async def paid_in_the_browser(engine: httpx.AsyncClient, stripe_client: stripe.StripeClient) -> str:
    """An intent made through the engine and confirmed at Stripe directly, as Stripe.js does
    with the client secret; no webhook tells the engine."""
    created = only(await call(engine, CREATE_PI, {"input": ORDER}))
    intent_id: str = created["paymentIntent"]["id"]
    await stripe_client.v1.payment_intents.confirm_async(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    stored = await Payment.find_one({"stripe_payment_intent_id": intent_id})
    assert stored is not None
    assert stored.status == "requires_payment_method"
    return intent_id


async def test_a_payment_confirmed_in_the_browser_can_be_refunded_before_its_webhook(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    intent_id = await paid_in_the_browser(engine, stripe_client)
    refunded = only(await call(engine, REFUND, {"id": intent_id, "amount": 1000}, admin=True))
    assert refunded["__typename"] == "PaymentIntentPayload", refunded
    assert (refunded["paymentIntent"]["status"], refunded["paymentIntent"]["amountRefunded"]) == (
        "succeeded",
        1000,
    )
    assert [r["amount"] for r in emulator.objects("refund")] == [1000]


async def test_the_payment_intent_query_reads_stripe_when_the_stored_status_may_be_behind(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    intent_id = await paid_in_the_browser(engine, stripe_client)
    read = (await call(engine, READ, {"id": intent_id}))["paymentIntent"]
    assert read["status"] == "succeeded"
    stored = await Payment.find_one({"stripe_payment_intent_id": intent_id})
    assert stored is not None
    assert stored.status == "succeeded"
    # Final now: no more Stripe reads for it.
    reads = emulator.request_count("GET", f"/v1/payment_intents/{intent_id}")
    await call(engine, READ, {"id": intent_id})
    assert emulator.request_count("GET", f"/v1/payment_intents/{intent_id}") == reads


async def test_the_stored_status_answers_while_stripe_is_down(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    intent_id = await paid_in_the_browser(engine, stripe_client)
    emulator.inject_fault("503", count=20, path=f"/v1/payment_intents/{intent_id}")
    read = (await call(engine, READ, {"id": intent_id}))["paymentIntent"]
    assert read["status"] == "requires_payment_method"
    refund = only(await call(engine, REFUND, {"id": intent_id, "amount": None}, admin=True))
    assert (refund["__typename"], refund["code"]) == ("RetryableError", "UNAVAILABLE")
    assert emulator.objects("refund") == []


async def test_an_unpaid_payment_is_still_not_refunded(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    created = only(await call(engine, CREATE_PI, {"input": ORDER}))
    intent_id = created["paymentIntent"]["id"]
    refund = only(await call(engine, REFUND, {"id": intent_id, "amount": None}, admin=True))
    assert refund["__typename"] == "ValidationError"
    assert emulator.request_count("GET", f"/v1/payment_intents/{intent_id}") == 1  # asked
    assert emulator.objects("refund") == []


async def test_a_default_source_counts_as_a_payment_method(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = only(await call(engine, CREATE_CUSTOMER))["customer"]["id"]
    await stripe_client.v1.customers.update_async(customer_id, params={"source": "tok_visa"})
    [customer] = emulator.objects("customer")
    assert customer["invoice_settings"]["default_payment_method"] is None
    result = await subscribe(engine)
    assert result["__typename"] == "SubscriptionPayload", result
    assert result["subscription"]["status"] == "active"
    [charge] = emulator.objects("charge")
    assert charge["payment_method"] == customer["default_source"]


async def test_a_price_listed_for_another_lookup_key_is_not_linked(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another plan's price at the starter plan's amount and interval (made in the dashboard).
    theirs = await plan_price_at_stripe(stripe_client, "Pro", 1900, "pro_month")
    # A Stripe-compatible server that ignores the lookup_keys filter of a price listing.
    listing = next(r for r in emulator.router.routes if (r.method, r.pattern) == LIST_PRICES)

    def ignoring_the_filter(ctx: Any, params: Params) -> Any:
        params.data.pop("lookup_keys", None)
        return listing.handler(ctx, params)

    routes = [Route(*LIST_PRICES, ignoring_the_filter), *emulator.router.routes]
    monkeypatch.setattr(emulator, "router", Router(routes))
    created = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )
    assert created["__typename"] == "CheckoutPayload"
    plan = await SubscriptionPlan.find_one({"uid": "starter"})
    assert plan is not None
    monthly = plan.price_for(BillingInterval.MONTH)
    assert monthly is not None
    assert monthly.stripe_price_id not in (None, theirs)
    [ours] = [p for p in emulator.objects("price") if p["id"] == monthly.stripe_price_id]
    assert ours["lookup_key"] == "starter_month"
    assert next(p for p in emulator.objects("price") if p["id"] == theirs)["lookup_key"] == (
        "pro_month"
    )
