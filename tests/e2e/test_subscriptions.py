"""Direct subscriptions, cancel / resume / change plan, invoices and the portal, end to end."""

from __future__ import annotations

import asyncio

import httpx
import stripe
from stripe_emulator import Emulator

from revenue_engine.documents import AuditEntry, Subscription
from tests.e2e.ops import (
    CANCEL,
    CHANGE,
    CHECKOUT,
    CREATE_CUSTOMER,
    CREATE_SUBSCRIPTION,
    INVOICES,
    PORTAL,
    RESUME,
    STATUS_QUERY,
    call,
    only,
)


async def customer_with_card(
    engine: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    emulator: Emulator,
    decline_code: str | None = None,
) -> str:
    """The org's customer (made through the API) with a default card (set up on Stripe's side,
    as the portal or Stripe.js would); ``decline_code`` makes later charges on it fail."""
    created = only(await call(engine, CREATE_CUSTOMER))
    customer_id: str = created["customer"]["id"]
    pm = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer_id}
    )
    await stripe_client.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    if decline_code:
        emulator.set_card_decline(pm.id, decline_code)
    return customer_id


async def subscribe(engine: httpx.AsyncClient, **extra: object) -> dict[str, object]:
    data = {"planUid": "starter", "billingInterval": "MONTH", **extra}
    return only(await call(engine, CREATE_SUBSCRIPTION, {"input": data}))


async def test_direct_subscription_needs_a_payment_method(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    result = await subscribe(engine)
    assert (result["__typename"], result["code"]) == ("BillingStateError", "NO_PAYMENT_METHOD")
    assert emulator.objects("subscription") == []


async def test_direct_subscription_with_a_declined_card_is_typed(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator, "insufficient_funds")
    result = await subscribe(engine)
    assert result["__typename"] == "PaymentDeclinedError"
    assert result["code"] == "PAYMENT_DECLINED"
    assert result["declineCode"] == "insufficient_funds"
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert status["isActive"] is False
    assert await Subscription.find({"status": "active"}).count() == 0


async def test_cancel_resume_and_cancel_now(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    # A pack (a licensed price): the emulator's metered prices are proven in their own tests.
    created = await subscribe(engine, planUid="pro", overages=["bandwidth"])
    assert created["__typename"] == "SubscriptionPayload"
    sub = created["subscription"]
    assert (sub["status"], sub["planUid"], sub["overages"]) == ("active", "pro", ["bandwidth"])

    ending = only(await call(engine, CANCEL, {"end": True}))["subscription"]
    assert ending["cancelAtPeriodEnd"] is True
    assert ending["status"] == "active"
    [stripe_sub] = emulator.objects("subscription")
    assert stripe_sub["cancel_at_period_end"] is True

    resumed = only(await call(engine, RESUME))["subscription"]
    assert resumed["cancelAtPeriodEnd"] is False
    again = only(await call(engine, RESUME))
    assert again["code"] == "NOT_SCHEDULED_TO_CANCEL"

    # A second cancel-at-period-end after resuming is a new intent: Stripe must see it.
    ending = only(await call(engine, CANCEL, {"end": True}))["subscription"]
    assert ending["cancelAtPeriodEnd"] is True
    assert emulator.objects("subscription")[0]["cancel_at_period_end"] is True

    canceled = only(await call(engine, CANCEL, {"end": False}))["subscription"]
    assert canceled["status"] == "canceled"
    assert canceled["isActive"] is False
    assert canceled["entitlements"] == []
    nothing = only(await call(engine, CANCEL, {"end": False}))
    assert nothing["code"] == "NO_SUBSCRIPTION"
    sources = {
        a.source.value for a in await AuditEntry.find({"kind": "subscription.updated"}).to_list()
    }
    assert sources == {"mutation"}


async def test_change_plan_with_proration_invoices_the_difference(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await subscribe(engine)
    before = (await call(engine, INVOICES, {"first": 10}))["invoices"]["nodes"]
    assert len(before) == 1
    assert before[0]["status"] == "paid"
    assert before[0]["hostedInvoiceUrl"]
    assert before[0]["invoicePdf"]

    changed = only(
        await call(
            engine,
            CHANGE,
            {
                "input": {
                    "planUid": "pro",
                    "billingInterval": "MONTH",
                    "overages": ["bandwidth"],
                    "prorationBehavior": "ALWAYS_INVOICE",
                }
            },
        )
    )
    assert changed["__typename"] == "SubscriptionPayload", changed
    sub = changed["subscription"]
    assert (sub["planUid"], sub["overages"], sub["status"]) == ("pro", ["bandwidth"], "active")
    assert {"key": "seats", "enabled": True, "limit": 15} in sub["entitlements"]
    # The pack raises the limit it is a pack of: 500 GB + 100 GB.
    assert {"key": "bandwidth_gb", "enabled": True, "limit": 600} in sub["entitlements"]
    [stripe_sub] = emulator.objects("subscription")
    assert sorted(i["price"]["lookup_key"] for i in stripe_sub["items"]["data"]) == [
        "pro_bandwidth_month",
        "pro_month",
    ]
    after = (await call(engine, INVOICES, {"first": 10}))["invoices"]["nodes"]
    assert len(after) == 2
    assert after[0]["amountDue"] > 0

    same = only(
        await call(engine, CHANGE, {"input": {"planUid": "pro", "billingInterval": "MONTH"}})
    )
    assert same["__typename"] == "ValidationError"


async def test_double_submitted_cancel_makes_one_stripe_update(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await subscribe(engine)
    before = emulator.request_count("POST", "/v1/subscriptions/sub_*")
    results = await asyncio.gather(*(call(engine, CANCEL, {"end": True}) for _ in range(2)))
    assert all(only(r)["__typename"] == "SubscriptionPayload" for r in results)
    keys = emulator.idempotency_keys("POST", "/v1/subscriptions/sub_*")
    assert emulator.request_count("POST", "/v1/subscriptions/sub_*") - before == 2
    assert len(keys) == 1  # both submits carried the same derived key


async def test_billing_portal_url(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    missing = only(await call(engine, PORTAL))
    assert missing["code"] == "NOT_FOUND"
    await customer_with_card(engine, stripe_client, emulator)
    portal = only(await call(engine, PORTAL))
    assert portal["__typename"] == "PortalPayload"
    [session] = emulator.objects("billing_portal.session")
    assert portal["url"] == session["url"]
    assert session["return_url"] == "http://testserver/account"
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(portal["url"])).status_code == 200


async def test_after_a_decline_a_new_card_can_subscribe(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = await customer_with_card(engine, stripe_client, emulator, "card_declined")
    declined = await subscribe(engine)
    assert declined["__typename"] == "PaymentDeclinedError"
    pm = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer_id}
    )
    await stripe_client.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    created = await subscribe(engine)
    assert created["__typename"] == "SubscriptionPayload", created
    assert len(emulator.objects("subscription")) == 1


async def test_two_different_direct_subscriptions_at_once_make_one(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    results = await asyncio.gather(subscribe(engine), subscribe(engine, planUid="pro"))
    assert sorted(str(r["__typename"]) for r in results) == [
        "AlreadySubscribedError",
        "SubscriptionPayload",
    ]
    assert len(emulator.objects("subscription")) == 1


async def test_direct_subscription_expires_an_open_checkout_session(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    started = only(
        await call(
            engine,
            CHECKOUT,
            {"input": {"planUid": "pro", "billingInterval": "MONTH"}},
        )
    )
    assert started["__typename"] == "CheckoutPayload"
    assert (await subscribe(engine))["__typename"] == "SubscriptionPayload"
    [session] = emulator.objects("checkout.session")
    assert session["status"] == "expired"
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(str(started["checkoutUrl"]))).status_code == 410
    assert len(emulator.objects("subscription")) == 1


async def test_double_submitted_resume_makes_one_stripe_update(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await subscribe(engine)
    await call(engine, CANCEL, {"end": True})
    before = emulator.idempotency_keys("POST", "/v1/subscriptions/sub_*")
    results = [only(r) for r in await asyncio.gather(*(call(engine, RESUME) for _ in range(2)))]
    new_keys = emulator.idempotency_keys("POST", "/v1/subscriptions/sub_*") - before
    assert len(new_keys) == 1
    resumed = [r for r in results if r["__typename"] == "SubscriptionPayload"]
    assert resumed
    assert all(r["subscription"]["cancelAtPeriodEnd"] is False for r in resumed)
    # One that read the subscription after the first had resumed it is told so.
    assert all(
        r["__typename"] == "SubscriptionPayload" or r["code"] == "NOT_SCHEDULED_TO_CANCEL"
        for r in results
    )
    [sub] = emulator.objects("subscription")
    assert sub["cancel_at_period_end"] is False
    [doc] = await Subscription.find_all().to_list()
    assert doc.cancel_at_period_end is False


async def test_double_submitted_cancel_now_cancels_once(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    sub_id = (await subscribe(engine))["subscription"]["subscriptionId"]  # type: ignore[index]
    results = [
        only(r)
        for r in await asyncio.gather(*(call(engine, CANCEL, {"end": False}) for _ in range(2)))
    ]
    assert len(emulator.idempotency_keys("DELETE", "/v1/subscriptions/sub_*")) == 1
    canceled = [r for r in results if r["__typename"] == "SubscriptionPayload"]
    assert canceled
    assert all(
        (r["subscription"]["subscriptionId"], r["subscription"]["status"]) == (sub_id, "canceled")
        for r in canceled
    )
    assert all(
        r["__typename"] == "SubscriptionPayload" or r["code"] == "NO_SUBSCRIPTION" for r in results
    )
    [sub] = emulator.objects("subscription")
    assert sub["status"] == "canceled"
    assert len(emulator.objects("invoice")) == 1
    audits = await AuditEntry.find({"to_status": "canceled"}).count()
    assert audits == 1


async def test_double_submitted_portal_makes_one_session(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    first, second = (
        only(r) for r in await asyncio.gather(call(engine, PORTAL), call(engine, PORTAL))
    )
    assert first == second
    [session] = emulator.objects("billing_portal.session")
    assert first["url"] == session["url"]


async def test_invoice_cursors_page_and_one_that_is_no_invoice_id_never_reaches_stripe(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await subscribe(engine)
    change = {"planUid": "pro", "billingInterval": "MONTH", "prorationBehavior": "ALWAYS_INVOICE"}
    await call(engine, CHANGE, {"input": change})
    query = """query($after: String) { invoices(first: 1, after: $after) {
        pageInfo { hasNextPage endCursor } nodes { id } } }"""
    first = (await call(engine, query))["invoices"]
    assert first["pageInfo"]["hasNextPage"]
    second = (await call(engine, query, {"after": first["pageInfo"]["endCursor"]}))["invoices"]
    assert second["nodes"][0]["id"] != first["nodes"][0]["id"]

    # A 64 KB cursor made a URL no server reads: "Stripe unreachable" after the SDK's retries.
    def requests() -> int:  # to Stripe, less the readiness probe's reads
        return emulator.request_count() - emulator.request_count("GET", "/v1/events*")

    before = requests()
    for cursor in ("in_" + "a" * 65_000, "sub_123", "in_../x", ""):
        response = await engine.post(
            "/graphql",
            json={"query": query, "variables": {"after": cursor}},
            headers={"x-organization-id": "org_a", "x-customer-email": "org_a@example.com"},
        )
        [error] = response.json()["errors"]
        # As for an invoice id Stripe does not know.
        assert error["extensions"]["code"] == "NOT_FOUND", error
        assert error["message"] == "stripe object 'starting_after' was not found"
    assert requests() == before
