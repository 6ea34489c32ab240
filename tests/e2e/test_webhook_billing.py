"""Billing webhooks through the real app with signed payloads, Stripe (the emulator) as the
source of truth: W5/W6 out-of-order and same-second deliveries, W7 unknown organizations,
close-the-tab checkout, and the audit trail of a webhook-driven transition."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator

from revenue_engine.documents import (
    AuditEntry,
    CheckoutSession,
    Customer,
    Payment,
    Subscription,
    WebhookEvent,
)
from revenue_engine.webhooks.dispatch import MAX_ATTEMPTS
from tests.e2e.conftest import pay
from tests.e2e.ops import (
    CHECKOUT,
    CONFIRM_PI,
    CREATE_CUSTOMER,
    CREATE_PI,
    REFUND,
    STATUS_QUERY,
    VERIFY,
    call,
    only,
    plan_price_at_stripe,
)
from tests.e2e.test_subscriptions import customer_with_card, subscribe
from tests.stripe_events import event, post


@pytest.fixture
def engine(signed_engine: httpx.AsyncClient) -> httpx.AsyncClient:
    """The engine with a webhook secret (``tests.e2e.conftest.signed_engine``)."""
    return signed_engine


def sub_event(type_: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return event(type_, copy.deepcopy(obj), created=created)


async def stored(sub_id: str) -> Subscription:
    doc = await Subscription.find_one({"stripe_subscription_id": sub_id})
    assert doc is not None
    return doc


async def test_w5_updates_out_of_order_end_in_the_latest_truth(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    created = await subscribe(engine)
    sub_id = created["subscription"]["subscriptionId"]
    active = emulator.objects("subscription")[0]
    await stripe_client.v1.subscriptions.cancel_async(sub_id)  # canceled at Stripe (T2)
    canceled = emulator.objects("subscription")[0]
    t1 = active["created"] + 10
    newer = await post(engine, sub_event("customer.subscription.updated", canceled, t1 + 1))
    older = await post(engine, sub_event("customer.subscription.updated", active, t1))
    assert (newer.status_code, older.status_code) == (200, 200)
    assert (await stored(sub_id)).status == "canceled"
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["isActive"]) == ("canceled", False)


async def test_w5_deleted_before_created(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = await customer_with_card(engine, stripe_client, emulator)
    # A subscription made at Stripe directly (say, in the dashboard) for this organization.
    price_id = await plan_price_at_stripe(stripe_client, "Starter", 1900, "starter_month")
    sub = await stripe_client.v1.subscriptions.create_async(
        params={"customer": customer_id, "items": [{"price": price_id}]}
    )
    created_obj = emulator.objects("subscription")[0]
    await stripe_client.v1.subscriptions.cancel_async(sub.id)
    deleted_obj = emulator.objects("subscription")[0]
    assert (
        await post(engine, sub_event("customer.subscription.deleted", deleted_obj, sub.created + 5))
    ).status_code == 200
    assert (
        await post(engine, sub_event("customer.subscription.created", created_obj, sub.created))
    ).status_code == 200
    doc = await stored(sub.id)
    assert (doc.status, doc.organization_id, doc.plan_uid) == ("canceled", "org_a", "starter")


async def test_w5_invoice_paid_before_the_subscription_is_known(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    started = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "pro", "billingInterval": "YEAR"}})
    )
    await pay(started["checkoutUrl"])
    [invoice] = emulator.objects("invoice")
    response = await post(engine, event("invoice.paid", invoice, created=invoice["created"]))
    assert response.json()["status"] == "processed"
    [doc] = await Subscription.find_all().to_list()
    assert (doc.status, doc.plan_uid, doc.organization_id) == ("active", "pro", "org_a")
    [audit] = await AuditEntry.find({"kind": "subscription.created"}).to_list()
    assert (audit.source.value, audit.reference, audit.to_status) == (
        "webhook",
        response.json()["id"],
        "active",
    )


@pytest.mark.parametrize("reverse", [False, True])
async def test_w6_two_events_in_the_same_second_in_either_order(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient, reverse: bool
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    sub_id = (await subscribe(engine))["subscription"]["subscriptionId"]
    first = copy.deepcopy(emulator.objects("subscription")[0])
    await stripe_client.v1.subscriptions.update_async(sub_id, params={"cancel_at_period_end": True})
    second = emulator.objects("subscription")[0]
    same_second = second["created"] + 100
    pair = [
        sub_event("customer.subscription.updated", first, same_second),
        sub_event("customer.subscription.updated", second, same_second),
    ]
    for payload in reversed(pair) if reverse else pair:
        assert (await post(engine, payload)).status_code == 200
    doc = await stored(sub_id)
    assert (doc.status, doc.cancel_at_period_end) == ("active", True)


async def test_w3_concurrent_duplicates_apply_once(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    sub_id = (await subscribe(engine))["subscription"]["subscriptionId"]
    await stripe_client.v1.subscriptions.update_async(sub_id, params={"cancel_at_period_end": True})
    obj = emulator.objects("subscription")[0]
    payload = sub_event("customer.subscription.updated", obj, obj["created"] + 50)
    before = await AuditEntry.find({"stripe_subscription_id": sub_id}).count()
    responses = await asyncio.gather(*(post(engine, payload) for _ in range(10)))
    assert all(r.status_code in (200, 409) for r in responses)
    assert (
        await WebhookEvent.find({"_id": payload["id"]}).count()
        + await WebhookEvent.find({"event_id": payload["id"]}).count()
        == 1
    )
    assert await AuditEntry.find({"stripe_subscription_id": sub_id}).count() == before + 1
    assert (await stored(sub_id)).cancel_at_period_end is True


async def test_w7_unknown_organization_is_retried_then_parked(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    stranger = await stripe_client.v1.customers.create_async(params={"email": "x@example.com"})
    price = await stripe_client.v1.prices.create_async(
        params={
            "currency": "usd",
            "unit_amount": 500,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Other"},
        }
    )
    await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": stranger.id}
    )
    sub = await stripe_client.v1.subscriptions.create_async(
        params={
            "customer": stranger.id,
            "items": [{"price": price.id}],
            "default_payment_method": "pm_card_visa",
        }
    )
    payload = sub_event(
        "customer.subscription.created", emulator.objects("subscription")[0], sub.created
    )
    answers = [(await post(engine, payload)).status_code for _ in range(MAX_ATTEMPTS + 1)]
    assert answers[: MAX_ATTEMPTS - 1] == [503] * (MAX_ATTEMPTS - 1)
    assert answers[-1] == 200
    [row] = await WebhookEvent.find_all().to_list()
    assert row.status.value == "failed"
    assert "organization" in (row.last_error or "")
    assert await Subscription.find_all().count() == 0


async def test_checkout_completed_webhook_marks_the_session_and_subscribes(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    started = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )
    await pay(started["checkoutUrl"])
    [completed] = emulator.events("checkout.session.completed")
    response = await post(engine, completed)
    assert response.json()["status"] == "processed"
    session = await CheckoutSession.find_one({"stripe_session_id": started["sessionId"]})
    assert session is not None
    assert session.status.value == "completed"
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["planUid"]) == ("active", "starter")
    # No verification: the webhook alone makes the card paid at Checkout the default.
    [sub] = emulator.objects("subscription")
    [customer] = emulator.objects("customer")
    assert sub["default_payment_method"] is not None
    assert customer["invoice_settings"]["default_payment_method"] == sub["default_payment_method"]
    doc = await Customer.find_one({"stripe_customer_id": customer["id"]})
    assert doc is not None
    assert doc.default_payment_method == sub["default_payment_method"]


async def test_stripe_down_while_re_reading_is_503_and_nothing_applied(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    sub_id = (await subscribe(engine))["subscription"]["subscriptionId"]
    await stripe_client.v1.subscriptions.cancel_async(sub_id)
    obj = emulator.objects("subscription")[0]
    emulator.inject_fault("503", method="GET", count=10)
    payload = sub_event("customer.subscription.deleted", obj, obj["created"] + 60)
    assert (await post(engine, payload)).status_code == 503
    assert (await stored(sub_id)).status == "active"
    emulator.clear_faults()
    assert (await post(engine, payload)).status_code == 200
    assert (await stored(sub_id)).status == "canceled"


async def test_payment_and_refund_events_keep_payments_true(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    created = only(await call(engine, CREATE_PI, {"input": {"amount": 1200, "currency": "usd"}}))
    pid = created["paymentIntent"]["id"]
    # Paid and partly refunded outside the engine (Stripe.js, the dashboard).
    await stripe_client.v1.payment_intents.confirm_async(
        pid, params={"payment_method": "pm_card_visa"}
    )
    await stripe_client.v1.refunds.create_async(params={"payment_intent": pid, "amount": 200})
    for kind in ("payment_intent.succeeded", "charge.refunded"):
        [raw] = emulator.events(kind)
        assert (await post(engine, raw)).json()["status"] == "processed"
    payment = await Payment.find_one({"stripe_payment_intent_id": pid})
    assert payment is not None
    assert (payment.status, payment.amount_refunded) == ("succeeded", 200)
    # A refund event for a payment the engine never made is not ours.
    other = await stripe_client.v1.payment_intents.create_async(
        params={"amount": 300, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    foreign = [
        e
        for e in emulator.events("payment_intent.succeeded")
        if e["data"]["object"]["id"] == other.id
    ]
    assert (await post(engine, foreign[0])).json()["status"] == "ignored"


async def test_customer_events_update_and_delete_our_customer(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = only(await call(engine, CREATE_CUSTOMER))["customer"]["id"]
    await stripe_client.v1.customers.update_async(customer_id, params={"email": "new@example.com"})
    [updated] = emulator.events("customer.updated")
    assert (await post(engine, updated)).json()["status"] == "processed"
    doc = await Customer.find_one({"stripe_customer_id": customer_id})
    assert doc is not None
    assert doc.email == "new@example.com"
    await stripe_client.v1.customers.delete_async(customer_id)
    [deleted] = emulator.events("customer.deleted")
    assert (await post(engine, deleted)).json()["status"] == "processed"
    assert await Customer.find_one({"stripe_customer_id": customer_id}) is None
    assert await AuditEntry.find({"kind": "customer.deleted", "source": "webhook"}).count() == 1


async def test_refund_totals_follow_stripe_whatever_the_order(
    engine_on_each_store: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    # On the wire server too: a MongoDB-compatible server without ``$max`` failed every refund.
    engine = engine_on_each_store
    pid = only(await call(engine, CREATE_PI, {"input": {"amount": 1000, "currency": "usd"}}))[
        "paymentIntent"
    ]["id"]
    await call(engine, CONFIRM_PI, {"id": pid, "pm": "pm_card_visa"})
    refunded = only(await call(engine, REFUND, {"id": pid, "amount": 100}, admin=True))
    assert refunded["paymentIntent"]["amountRefunded"] == 100
    # The webhook for that same refund arrives afterwards: still 100, not 200.
    [first] = emulator.events("charge.refunded")
    await post(engine, first)
    # A refund made in the dashboard, then ours again: Stripe's running total wins.
    await stripe_client.v1.refunds.create_async(params={"payment_intent": pid, "amount": 250})
    second = emulator.events("charge.refunded")[0]
    await post(engine, second)
    again = only(await call(engine, REFUND, {"id": pid, "amount": 50}, admin=True))
    assert again["paymentIntent"]["amountRefunded"] == 400
    payment = await Payment.find_one({"stripe_payment_intent_id": pid})
    assert payment is not None
    assert payment.amount_refunded == 400
    assert len(payment.refund_ids) == 2  # ours; the dashboard's is counted, not listed


async def test_stripe_rate_limiting_a_re_read_is_retryable(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    sub_id = (await subscribe(engine))["subscription"]["subscriptionId"]
    await stripe_client.v1.subscriptions.cancel_async(sub_id)
    obj = emulator.objects("subscription")[0]
    emulator.inject_fault("429", method="GET", count=10)
    payload = sub_event("customer.subscription.deleted", obj, obj["created"] + 60)
    assert (await post(engine, payload)).status_code == 503
    [row] = await WebhookEvent.find({"event_id": payload["id"]}).to_list()
    assert row.status.value == "processing"  # released, not parked as failed
    emulator.clear_faults()
    assert (await post(engine, payload)).status_code == 200
    assert (await stored(sub_id)).status == "canceled"


async def test_throttle_skips_events_older_than_the_last_applied_one(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    sub_id = (await subscribe(engine))["subscription"]["subscriptionId"]
    obj = emulator.objects("subscription")[0]
    t = obj["created"] + 1000  # Stripe's time only: our wall clock plays no part
    applied = await post(engine, sub_event("customer.subscription.updated", obj, t))
    assert applied.json()["status"] == "processed"
    assert (await stored(sub_id)).last_event_created == t
    await stripe_client.v1.subscriptions.update_async(sub_id, params={"cancel_at_period_end": True})
    changed = emulator.objects("subscription")[0]

    reads = emulator.request_count("GET", f"/v1/subscriptions/{sub_id}*")
    older = await post(engine, sub_event("customer.subscription.updated", changed, t - 1))
    assert older.json()["status"] == "ignored"
    assert emulator.request_count("GET", f"/v1/subscriptions/{sub_id}*") == reads  # no re-read
    [row] = await WebhookEvent.find({"event_id": older.json()["id"]}).to_list()
    assert "later event" in (row.last_error or "")
    assert (await stored(sub_id)).cancel_at_period_end is False

    # The same second as the watermark is not old news (one-second resolution): re-read.
    same = await post(engine, sub_event("customer.subscription.updated", changed, t))
    assert same.json()["status"] == "processed"
    assert emulator.request_count("GET", f"/v1/subscriptions/{sub_id}*") == reads + 1
    assert (await stored(sub_id)).cancel_at_period_end is True


async def pay_by_bank(engine: httpx.AsyncClient, account: str) -> str:
    """Check out the starter plan and pay with a delayed-notification method (ACH Direct
    Debit) on the hosted page; returns the session id."""
    started = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )
    assert (await pay(started["checkoutUrl"], card=account)).status_code == 303
    session_id: str = started["sessionId"]
    return session_id


async def test_bank_debit_verifies_unpaid_and_its_success_event_makes_the_org_active(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    session_id = await pay_by_bank(engine, "pm_usBankAccount_success")
    # Back from Stripe while the debit is processing: Stripe says unpaid, incomplete.
    verified = only(await call(engine, VERIFY, {"id": session_id}))
    assert (verified["status"], verified["paymentStatus"]) == ("complete", "unpaid")
    assert (verified["subscription"]["status"], verified["subscription"]["isActive"]) == (
        "incomplete",
        False,
    )
    [completed] = emulator.events("checkout.session.completed")
    assert (await post(engine, completed)).json()["status"] == "processed"
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["isActive"]) == ("incomplete", False)

    [pi] = emulator.objects("payment_intent")
    emulator.settle_payment(pi["id"])  # the bank pays (days later at Stripe)
    [succeeded] = emulator.events("checkout.session.async_payment_succeeded")
    assert (await post(engine, succeeded)).json()["status"] == "processed"
    session = await CheckoutSession.find_one({"stripe_session_id": session_id})
    assert session is not None
    assert (session.status.value, session.payment_status) == ("completed", "paid")
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["isActive"], status["planUid"]) == (
        "active",
        True,
        "starter",
    )


async def test_checkout_events_out_of_order_leave_the_session_paid(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    session_id = await pay_by_bank(engine, "pm_usBankAccount_success")
    [pi] = emulator.objects("payment_intent")
    emulator.settle_payment(pi["id"])
    # Stripe sent completed (unpaid) first, then async_payment_succeeded (paid); they arrive
    # the other way round.
    [late] = emulator.events("checkout.session.completed")
    [succeeded] = emulator.events("checkout.session.async_payment_succeeded")
    assert late["data"]["object"]["payment_status"] == "unpaid"
    assert late["created"] <= succeeded["created"]
    for payload in (succeeded, late):
        assert (await post(engine, payload)).json()["status"] == "processed"
    session = await CheckoutSession.find_one({"stripe_session_id": session_id})
    assert session is not None
    assert (session.status.value, session.payment_status) == ("completed", "paid")
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["planUid"]) == ("active", "starter")


async def test_verify_after_the_webhook_applied_the_session_changes_nothing(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    started = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )
    await pay(started["checkoutUrl"])
    [completed] = emulator.events("checkout.session.completed")
    assert (await post(engine, completed)).json()["status"] == "processed"
    [before] = await Subscription.find_all().to_list()
    session_before = await CheckoutSession.find_one({"stripe_session_id": started["sessionId"]})
    audits = await AuditEntry.find_all().count()
    writes = emulator.request_count("POST")

    verified = only(await call(engine, VERIFY, {"id": started["sessionId"]}))
    assert (verified["status"], verified["paymentStatus"]) == ("complete", "paid")
    assert verified["subscription"]["subscriptionId"] == before.stripe_subscription_id
    [after] = await Subscription.find_all().to_list()
    assert after.version == before.version
    assert after.model_dump() == before.model_dump()
    assert (
        await CheckoutSession.find_one({"stripe_session_id": started["sessionId"]})
        == session_before
    )
    assert await AuditEntry.find_all().count() == audits
    assert emulator.request_count("POST") == writes


PAYMENT = "query($id: ID!) { paymentIntent(id: $id) { id status failureReason } }"
DAY = 86_400


async def test_checkout_expired_webhook_marks_the_session_expired(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    started = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )
    await stripe_client.v1.checkout.sessions.expire_async(started["sessionId"])
    [expired] = emulator.events("checkout.session.expired")
    assert (await post(engine, expired)).json()["status"] == "processed"
    session = await CheckoutSession.find_one({"stripe_session_id": started["sessionId"]})
    assert session is not None
    assert (session.status.value, session.completed_at) == ("expired", None)
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["hasSubscription"], status["isActive"]) == (False, False)


async def test_checkout_async_payment_failed_grants_nothing(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    session_id = await pay_by_bank(engine, "pm_usBankAccount_accountClosed")
    verified = only(await call(engine, VERIFY, {"id": session_id}))
    assert (verified["paymentStatus"], verified["subscription"]["isActive"]) == ("unpaid", False)
    [pi] = emulator.objects("payment_intent")
    emulator.settle_payment(pi["id"])  # the bank returns the debit: account closed
    for kind in ("invoice.payment_failed", "checkout.session.async_payment_failed"):
        [raw] = emulator.events(kind)
        assert (await post(engine, raw)).json()["status"] == "processed"
    session = await CheckoutSession.find_one({"stripe_session_id": session_id})
    assert session is not None
    # Stripe's state is recorded: completed but never paid, a subscription never activated.
    assert (session.status.value, session.payment_status) == ("completed", "unpaid")
    [sub] = await Subscription.find_all().to_list()
    assert sub.status == "incomplete"
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["isActive"]) == ("incomplete", False)
    assert not any(entitlement["enabled"] for entitlement in status["entitlements"])


async def customer_on_a_clock(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> tuple[str, str, int]:
    """The organization's customer (made through the API) on a new test clock frozen at now."""
    customer_id = str(only(await call(engine, CREATE_CUSTOMER))["customer"]["id"])
    now = int(time.time())
    clock = await stripe_client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": now}
    )
    emulator.attach_test_clock(customer_id, clock.id)
    return customer_id, clock.id, now


async def test_trial_will_end_paused_and_resumed_webhooks_follow_the_subscription(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id, clock_id, now = await customer_on_a_clock(engine, emulator, stripe_client)
    price_id = await plan_price_at_stripe(stripe_client, "Starter", 1900, "starter_month")
    # A trial without a payment method that pauses when it ends (made at Stripe directly).
    sub = await stripe_client.v1.subscriptions.create_async(
        params={
            "customer": customer_id,
            "items": [{"price": price_id}],
            "trial_period_days": 14,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        }
    )

    async def deliver(kind: str) -> dict[str, Any]:
        [raw] = emulator.events(kind)
        assert (await post(engine, raw)).json()["status"] == "processed"
        status: dict[str, Any] = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
        assert (await stored(sub.id)).last_event_created == raw["created"]
        return status

    await stripe_client.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": now + 12 * DAY}
    )
    trialing = await deliver("customer.subscription.trial_will_end")
    assert (trialing["status"], trialing["isActive"], trialing["planUid"]) == (
        "trialing",
        True,
        "starter",
    )
    assert trialing["trialEnd"] is not None

    await stripe_client.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": now + 15 * DAY}
    )
    paused = await deliver("customer.subscription.paused")
    assert (paused["status"], paused["isActive"]) == ("paused", False)

    pm = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer_id}
    )
    await stripe_client.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    await stripe_client.v1.subscriptions.resume_async(sub.id)
    resumed = await deliver("customer.subscription.resumed")
    assert (resumed["status"], resumed["isActive"]) == ("active", True)
    transitions = [
        (a.from_status, a.to_status, a.source.value)
        for a in await AuditEntry.find({"stripe_subscription_id": sub.id}).sort("at").to_list()
    ]
    assert transitions == [
        (None, "trialing", "webhook"),
        ("trialing", "paused", "webhook"),
        ("paused", "active", "webhook"),
    ]


async def test_invoice_payment_action_required_re_reads_its_subscription(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    _, clock_id, now = await customer_on_a_clock(engine, emulator, stripe_client)
    started = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )
    # A card that asks for 3D Secure on every payment: the buyer passes it on the page.
    assert (
        await pay(started["checkoutUrl"], card="pm_card_authenticationRequired")
    ).status_code == 303
    verified = only(await call(engine, VERIFY, {"id": started["sessionId"]}))
    assert (verified["paymentStatus"], verified["subscription"]["status"]) == ("paid", "active")
    sub_id = verified["subscription"]["subscriptionId"]

    # The renewal is off-session: Stripe needs the customer (requires_action); only the
    # action-required event is delivered, and it brings the subscription's change with it.
    await stripe_client.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": now + 32 * DAY}
    )
    [payload] = emulator.events("invoice.payment_action_required")
    [at_stripe] = emulator.objects("subscription")
    assert at_stripe["status"] == "past_due"
    assert payload["data"]["object"]["id"] == at_stripe["latest_invoice"]
    response = await post(engine, payload)
    assert response.json()["status"] == "processed"
    doc = await stored(sub_id)
    assert doc.status == "past_due"
    assert doc.last_event_created == payload["created"]
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["latestInvoiceId"]) == (
        "past_due",
        at_stripe["latest_invoice"],
    )
    [audit] = await AuditEntry.find({"reference": payload["id"]}).to_list()
    assert (audit.source.value, audit.from_status, audit.to_status) == (
        "webhook",
        "active",
        "past_due",
    )


async def test_payment_intent_failed_and_canceled_webhooks_keep_payments_true(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    created = only(await call(engine, CREATE_PI, {"input": {"amount": 900, "currency": "usd"}}))
    pid = created["paymentIntent"]["id"]
    # Confirmed with a declined card outside the engine (Stripe.js).
    with pytest.raises(stripe.CardError):
        await stripe_client.v1.payment_intents.confirm_async(
            pid, params={"payment_method": "pm_card_chargeDeclined"}
        )
    [failed] = emulator.events("payment_intent.payment_failed")
    assert (await post(engine, failed)).json()["status"] == "processed"
    seen = (await call(engine, PAYMENT, {"id": pid}))["paymentIntent"]
    assert seen["status"] == "requires_payment_method"
    assert seen["failureReason"]

    await stripe_client.v1.payment_intents.cancel_async(pid)
    [canceled] = emulator.events("payment_intent.canceled")
    assert (await post(engine, canceled)).json()["status"] == "processed"
    payment = await Payment.find_one({"stripe_payment_intent_id": pid})
    assert payment is not None
    assert payment.status == "canceled"
    assert (await call(engine, PAYMENT, {"id": pid}))["paymentIntent"]["status"] == "canceled"
    [row] = await WebhookEvent.find({"event_id": canceled["id"]}).to_list()
    assert row.status.value == "processed"
