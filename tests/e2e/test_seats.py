"""Seats of a per-seat plan (the demo's Business: $15 a seat a month, 5 to 500 seats) through
the real app, SDK and emulator: bought at Checkout and with createSubscription, changed with
updateSeats (double-submits make one Stripe change, bad quantities send nothing), and the
``seats`` entitlement following the quantity Stripe holds, webhooks included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from revenue_engine.documents import AuditEntry, CheckoutSession, Subscription
from revenue_engine.settings import Settings
from tests.e2e.conftest import engine_settings, pay
from tests.e2e.ops import CHECKOUT, ERRORS, STATUS, VERIFY, call, only
from tests.e2e.test_subscriptions import customer_with_card, subscribe
from tests.stripe_events import SECRET, event, post

BUSINESS = {"planUid": "business", "billingInterval": "MONTH"}
SEATS_STATUS = f"query {{ subscriptionStatus {{ seats {STATUS} }} }}"
UPDATE_SEATS = f"""mutation($quantity: Int!, $proration: ProrationBehavior! = CREATE_PRORATIONS) {{
  updateSeats(quantity: $quantity, prorationBehavior: $proration) {{ __typename
  ... on SubscriptionPayload {{ subscription {{ seats {STATUS} }} }} {ERRORS} }} }}"""
CREATE = f"""mutation($input: CreateSubscriptionInput!) {{ createSubscription(input: $input) {{
  __typename ... on SubscriptionPayload {{ subscription {{ seats {STATUS} }} }} {ERRORS} }} }}"""


def seats_entitlement(status: dict[str, Any]) -> int | None:
    found = [e["limit"] for e in status["entitlements"] if e["key"] == "seats"]
    return found[0] if found else None


def stripe_quantity(emulator: Emulator) -> int:
    [sub] = [s for s in emulator.objects("subscription") if s["status"] != "canceled"]
    return int(sub["items"]["data"][0]["quantity"])


async def seats_subscription(engine: httpx.AsyncClient, seats: int = 5) -> dict[str, Any]:
    created = only(await call(engine, CREATE, {"input": {**BUSINESS, "seats": seats}}))
    assert created["__typename"] == "SubscriptionPayload", created
    subscription: dict[str, Any] = created["subscription"]
    return subscription


async def line_items(stripe_client: stripe.StripeClient, session_id: str) -> list[tuple[int, int]]:
    page = await stripe_client.v1.checkout.sessions.line_items.list_async(session_id)
    return [(int(li.quantity or 0), li.amount_total) for li in page.data]


async def test_checkout_buys_the_seats_asked_for(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    started = only(await call(engine, CHECKOUT, {"input": {**BUSINESS, "seats": 7}}))
    assert started["__typename"] == "CheckoutPayload", started
    assert await line_items(stripe_client, started["sessionId"]) == [(7, 10500)]
    stored = await CheckoutSession.find_one({"stripe_session_id": started["sessionId"]})
    assert stored is not None
    assert stored.seats == 7
    assert (await pay(started["checkoutUrl"])).status_code == 303
    verified = only(await call(engine, VERIFY, {"id": started["sessionId"]}))
    sub = verified["subscription"]
    assert (sub["status"], sub["planUid"]) == ("active", "business")
    status = (await call(engine, SEATS_STATUS))["subscriptionStatus"]
    assert (status["seats"], seats_entitlement(status)) == (7, 7)
    assert stripe_quantity(emulator) == 7
    [invoice] = emulator.objects("invoice")
    assert (invoice["amount_paid"], invoice["lines"]["data"][0]["quantity"]) == (10500, 7)


async def test_checkout_without_seats_buys_the_plans_least(
    engine: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    started = only(await call(engine, CHECKOUT, {"input": BUSINESS}))
    assert started["__typename"] == "CheckoutPayload", started
    assert await line_items(stripe_client, started["sessionId"]) == [(5, 7500)]
    # The same purchase with other seats is another session (the first is expired).
    again = only(await call(engine, CHECKOUT, {"input": {**BUSINESS, "seats": 6}}))
    assert again["sessionId"] != started["sessionId"]
    same = only(await call(engine, CHECKOUT, {"input": {**BUSINESS, "seats": 6}}))
    assert same["sessionId"] == again["sessionId"]


async def test_a_double_submitted_checkout_with_seats_makes_one_session(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    order = {"input": {**BUSINESS, "seats": 8}}
    both = await asyncio.gather(*(call(engine, CHECKOUT, order) for _ in range(2)))
    first, second = (only(r) for r in both)
    assert (first["__typename"], second["__typename"]) == ("CheckoutPayload", "CheckoutPayload")
    assert first["sessionId"] == second["sessionId"]
    assert len(emulator.objects("checkout.session")) == 1
    assert await line_items(stripe_client, first["sessionId"]) == [(8, 12000)]
    assert await CheckoutSession.find_all().count() == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"seats": 4}, "plan 'business' is sold from 5 seats"),
        ({"seats": 501}, "plan 'business' is sold up to 500 seats"),
        ({"seats": 0}, "seats must be between 1 and 10000"),
        ({"seats": -3}, "seats must be between 1 and 10000"),
        ({"planUid": "pro", "seats": 3}, "plan 'pro' is not priced per seat"),
    ],
)
async def test_checkout_refuses_seats_the_plan_does_not_sell(
    engine: httpx.AsyncClient, emulator: Emulator, extra: dict[str, Any], message: str
) -> None:
    result = only(await call(engine, CHECKOUT, {"input": {**BUSINESS, **extra}}))
    assert result["__typename"] == "ValidationError"
    assert result["fields"] == [{"field": "seats", "message": message}]
    assert emulator.request_count() == 0  # nothing reached Stripe
    assert await CheckoutSession.find_all().count() == 0


async def test_create_subscription_with_seats(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    refused = only(await call(engine, CREATE, {"input": {**BUSINESS, "seats": 2}}))
    assert refused["__typename"] == "ValidationError"
    assert emulator.objects("subscription") == []
    sub = await seats_subscription(engine, seats=6)
    assert (sub["seats"], seats_entitlement(sub)) == (6, 6)
    assert stripe_quantity(emulator) == 6
    [invoice] = emulator.objects("invoice")
    assert invoice["amount_paid"] == 9000


async def test_update_seats_changes_the_quantity_at_stripe(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await seats_subscription(engine, seats=5)
    result = only(await call(engine, UPDATE_SEATS, {"quantity": 8}))
    assert result["__typename"] == "SubscriptionPayload", result
    sub = result["subscription"]
    assert (sub["seats"], seats_entitlement(sub)) == (8, 8)
    assert stripe_quantity(emulator) == 8
    # create_prorations: the credit for 5 seats and the charge for 8 wait for the renewal.
    pending = [ii for ii in emulator.objects("invoiceitem") if ii["invoice"] is None]
    assert sorted(ii["quantity"] for ii in pending) == [5, 8]
    assert len(emulator.objects("invoice")) == 1
    audit = await AuditEntry.find({"kind": "subscription.updated"}).to_list()
    assert [a.changes["seats"] for a in audit if "seats" in a.changes] == [8]

    fewer = only(await call(engine, UPDATE_SEATS, {"quantity": 6, "proration": "ALWAYS_INVOICE"}))
    assert fewer["subscription"]["seats"] == 6
    latest = emulator.objects("invoice")[0]
    assert latest["billing_reason"] == "subscription_update"
    assert sorted(line["quantity"] for line in latest["lines"]["data"]) == [5, 6, 8, 8]

    quiet = only(await call(engine, UPDATE_SEATS, {"quantity": 9, "proration": "NONE"}))
    assert quiet["subscription"]["seats"] == 9
    assert len(emulator.objects("invoice")) == 2  # nothing billed for it


async def test_a_double_submit_makes_one_stripe_change(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await seats_subscription(engine, seats=5)
    emulator.requests.clear()
    first, second = await asyncio.gather(
        call(engine, UPDATE_SEATS, {"quantity": 12}), call(engine, UPDATE_SEATS, {"quantity": 12})
    )
    for answer in (first, second):
        assert only(answer)["subscription"]["seats"] == 12
    keys = emulator.idempotency_keys("POST", "/v1/subscriptions/sub_*")
    assert len(keys) == 1  # one intent, whatever the SDK retried or replayed
    pending = [ii for ii in emulator.objects("invoiceitem") if ii["invoice"] is None]
    assert len(pending) == 2  # one credit and one charge, not two of each
    # Submitted again once applied: the seats are held, nothing is sent.
    sent = emulator.request_count("POST")
    again = only(await call(engine, UPDATE_SEATS, {"quantity": 12}))
    assert again["subscription"]["seats"] == 12
    assert emulator.request_count("POST") == sent


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (4, "plan 'business' is sold from 5 seats"),
        (501, "plan 'business' is sold up to 500 seats"),
        (0, "seats must be between 1 and 10000"),
        (-1, "seats must be between 1 and 10000"),
        (2**31 - 1, "seats must be between 1 and 10000"),
    ],
)
async def test_bad_quantities_are_typed_and_send_nothing(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    quantity: int,
    message: str,
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await seats_subscription(engine, seats=5)
    before = await Subscription.find_one({})
    assert before is not None
    sent = emulator.request_count("POST")
    result = only(await call(engine, UPDATE_SEATS, {"quantity": quantity}))
    assert result["__typename"] == "ValidationError"
    assert result["fields"] == [{"field": "quantity", "message": message}]
    assert emulator.request_count("POST") == sent
    after = await Subscription.find_one({})
    assert after is not None
    assert (after.version, after.seats) == (before.version, 5)


async def test_seats_of_a_plan_not_priced_per_seat_are_refused(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    nothing = only(await call(engine, UPDATE_SEATS, {"quantity": 3}))
    assert nothing["code"] == "NO_SUBSCRIPTION"
    await customer_with_card(engine, stripe_client, emulator)
    await subscribe(engine)  # starter: 3 seats included, not sold per seat
    sent = emulator.request_count("POST")
    result = only(await call(engine, UPDATE_SEATS, {"quantity": 4}))
    assert (result["__typename"], result["code"]) == ("BillingStateError", "NOT_PER_SEAT")
    assert emulator.request_count("POST") == sent
    status = (await call(engine, SEATS_STATUS))["subscriptionStatus"]
    assert (status["seats"], seats_entitlement(status)) == (None, 3)


async def test_a_plan_change_keeps_or_sets_the_seats(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    change = f"""mutation($input: ChangePlanInput!) {{ changeSubscriptionPlan(input: $input) {{
      __typename ... on SubscriptionPayload {{ subscription {{ seats {STATUS} }} }} {ERRORS} }} }}"""
    await customer_with_card(engine, stripe_client, emulator)
    await subscribe(engine)  # starter
    moved = only(await call(engine, change, {"input": BUSINESS}))
    assert moved["subscription"]["seats"] == 5  # the plan's least
    assert stripe_quantity(emulator) == 5
    more = only(await call(engine, change, {"input": {**BUSINESS, "seats": 9}}))
    assert more["subscription"]["seats"] == 9
    yearly = only(await call(engine, change, {"input": {**BUSINESS, "billingInterval": "YEAR"}}))
    assert (yearly["subscription"]["seats"], yearly["subscription"]["billingInterval"]) == (
        9,
        "YEAR",
    )
    back = only(
        await call(engine, change, {"input": {"planUid": "pro", "billingInterval": "YEAR"}})
    )
    assert (back["subscription"]["seats"], seats_entitlement(back["subscription"])) == (None, 15)
    assert stripe_quantity(emulator) == 1
    refused = only(
        await call(
            engine, change, {"input": {"planUid": "starter", "billingInterval": "YEAR", "seats": 2}}
        )
    )
    assert refused["fields"] == [
        {"field": "seats", "message": "plan 'starter' is not priced per seat"}
    ]


@pytest.fixture
async def engine_with_webhooks(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, stripe_webhook_secrets=[SECRET])
    )
    return client


async def test_webhooks_keep_the_seats_true(
    engine_with_webhooks: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
) -> None:
    engine = engine_with_webhooks
    await customer_with_card(engine, stripe_client, emulator)
    sub = await seats_subscription(engine, seats=5)
    [stripe_sub] = emulator.objects("subscription")
    item = stripe_sub["items"]["data"][0]["id"]
    # Changed at Stripe by someone else (the dashboard, the portal): the event says so.
    await stripe_client.v1.subscriptions.update_async(
        str(sub["subscriptionId"]), params={"items": [{"id": item, "quantity": 11}]}
    )
    [updated] = emulator.objects("subscription")
    delivered = await post(
        engine,
        event("customer.subscription.updated", updated, created=int(updated["created"]) + 5),
    )
    assert delivered.status_code == 200
    status = (await call(engine, SEATS_STATUS))["subscriptionStatus"]
    assert (status["seats"], seats_entitlement(status)) == (11, 11)
    stored = await Subscription.find_one({})
    assert stored is not None
    assert stored.items[0].quantity == 11
