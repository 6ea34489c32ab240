"""Promotion codes end to end: through the real app and SDK to the emulator. A valid code gives
its discount on the first invoice (amounts worked out by hand in the comments); every kind of
code that cannot be used answers its typed error with nothing written and nothing sent but the
lookup; double-submits make one Stripe object; webhooks keep the stored discounts true."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator

from revenue_engine.documents import CheckoutSession, Subscription, SubscriptionPlan
from tests.e2e.conftest import pay
from tests.e2e.ops import ERRORS, VERIFY, call, only
from tests.e2e.test_subscriptions import customer_with_card
from tests.stripe_events import event, post

DAY = 86_400
PROMO_ERROR = "... on PromotionCodeError { promotionCode reason }"
DISCOUNTS = """discounts { promotionCode couponId name percentOff amountOff currency duration
  durationInMonths start end }"""
SUB = f"subscription {{ subscriptionId status planUid {DISCOUNTS} }}"
RESULT = f"__typename ... on SubscriptionPayload {{ {SUB} }} {ERRORS} {PROMO_ERROR}"
CREATE = f"""mutation($input: CreateSubscriptionInput!) {{
  createSubscription(input: $input) {{ {RESULT} }} }}"""
CHANGE = f"""mutation($input: ChangePlanInput!) {{
  changeSubscriptionPlan(input: $input) {{ {RESULT} }} }}"""
CHECKOUT = f"""mutation($input: CheckoutInput!) {{ createCheckoutSession(input: $input) {{
  __typename ... on CheckoutPayload {{ sessionId checkoutUrl }} {ERRORS} {PROMO_ERROR} }} }}"""
STATUS = f"query {{ subscriptionStatus {{ status planUid {DISCOUNTS} }} }}"
INVOICES = """query { invoices(first: 10) { nodes { id status subtotal discountAmount total
  amountDue amountPaid } } }"""


@pytest.fixture
def engine(signed_engine: httpx.AsyncClient) -> httpx.AsyncClient:
    """The engine with a webhook secret (``tests.e2e.conftest.signed_engine``)."""
    return signed_engine


async def promotion(
    stripe_client: stripe.StripeClient, code: str, coupon: dict[str, Any], **extra: Any
) -> str:
    """A coupon and a promotion code for it, made at Stripe as in the dashboard."""
    made = await stripe_client.v1.coupons.create_async(params=coupon)  # type: ignore[arg-type]
    params = {"promotion": {"type": "coupon", "coupon": made.id}, "code": code, **extra}
    promo = await stripe_client.v1.promotion_codes.create_async(params=params)  # type: ignore[arg-type]
    return str(promo.id)


async def create(engine: httpx.AsyncClient, org: str = "org_a", **extra: Any) -> dict[str, Any]:
    data = {"planUid": "starter", "billingInterval": "MONTH", **extra}
    return only(await call(engine, CREATE, {"input": data}, org=org))


async def invoices(engine: httpx.AsyncClient, org: str = "org_a") -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = (await call(engine, INVOICES, org=org))["invoices"]["nodes"]
    return nodes


async def times_redeemed(stripe_client: stripe.StripeClient, promo_id: str) -> int:
    return (await stripe_client.v1.promotion_codes.retrieve_async(promo_id)).times_redeemed


async def test_a_code_discounts_the_first_invoice_of_a_direct_subscription(
    engine_on_each_store: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
) -> None:
    engine = engine_on_each_store
    await customer_with_card(engine, stripe_client, emulator)
    promo_id = await promotion(
        stripe_client, "SAVE25", {"percent_off": 25, "duration": "forever", "name": "Quarter off"}
    )
    result = await create(engine, promotionCode="  save25 ")  # any case, spaces dropped
    assert result["__typename"] == "SubscriptionPayload", result
    sub = result["subscription"]
    assert sub["status"] == "active"
    [discount] = sub["discounts"]
    assert {k: discount[k] for k in ("promotionCode", "name", "percentOff", "amountOff")} == {
        "promotionCode": "SAVE25",
        "name": "Quarter off",
        "percentOff": 25.0,
        "amountOff": None,
    }
    assert (discount["duration"], discount["end"]) == ("FOREVER", None)
    # Starter is 19.00 a month; 25% of it is 4.75: 14.25 charged.
    [invoice] = await invoices(engine)
    assert (invoice["subtotal"], invoice["discountAmount"], invoice["total"]) == (1900, 475, 1425)
    assert (invoice["status"], invoice["amountPaid"]) == ("paid", 1425)
    [stripe_sub] = emulator.objects("subscription")
    [discount_id] = stripe_sub["discounts"]
    assert emulator.objects("discount")[0]["promotion_code"] == promo_id
    assert await times_redeemed(stripe_client, promo_id) == 1
    status = (await call(engine, STATUS))["subscriptionStatus"]
    assert status["discounts"] == sub["discounts"]
    [key] = emulator.idempotency_keys("POST", "/v1/subscriptions")
    assert key.startswith("re-subscription.create-")
    assert discount_id.startswith("di_")


async def test_checkout_with_a_code_charges_the_discounted_amount(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    promo_id = await promotion(
        stripe_client,
        "TENOFF",
        {"amount_off": 1000, "currency": "usd", "duration": "repeating", "duration_in_months": 3},
    )
    started = only(
        await call(
            engine,
            CHECKOUT,
            {
                "input": {
                    "planUid": "pro",
                    "billingInterval": "MONTH",
                    "overages": ["bandwidth"],
                    "promotionCode": "TENOFF",
                }
            },
        )
    )
    assert started["__typename"] == "CheckoutPayload", started
    [session] = emulator.objects("checkout.session")
    assert session["discounts"] == [{"coupon": None, "promotion_code": promo_id}]
    # Pro 49.00 + a bandwidth pack 9.00 = 58.00, less 10.00 = 48.00.
    assert (session["amount_subtotal"], session["amount_total"]) == (5800, 4800)
    stored = await CheckoutSession.find_one({"stripe_session_id": started["sessionId"]})
    assert stored is not None
    assert stored.promotion_code_id == promo_id
    assert (await pay(started["checkoutUrl"])).status_code == 303
    verified = only(await call(engine, VERIFY, {"id": started["sessionId"]}))
    assert verified["__typename"] == "VerifyCheckoutPayload"
    status = (await call(engine, STATUS))["subscriptionStatus"]
    [discount] = status["discounts"]
    assert (discount["promotionCode"], discount["amountOff"], discount["currency"]) == (
        "TENOFF",
        1000,
        "usd",
    )
    assert (discount["duration"], discount["durationInMonths"]) == ("REPEATING", 3)
    assert discount["end"] is not None
    [invoice] = await invoices(engine)
    assert (invoice["subtotal"], invoice["discountAmount"], invoice["total"]) == (5800, 1000, 4800)
    assert invoice["amountPaid"] == 4800


async def test_double_submits_make_one_subscription_and_one_session(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    promo_id = await promotion(stripe_client, "TWICE", {"percent_off": 10, "duration": "forever"})
    checkout = {
        "planUid": "pro",
        "billingInterval": "MONTH",
        "promotionCode": "TWICE",
    }
    sessions = [
        only(r)
        for r in await asyncio.gather(
            *(call(engine, CHECKOUT, {"input": checkout}, org="org_b") for _ in range(2))
        )
    ]
    assert [s["__typename"] for s in sessions] == ["CheckoutPayload", "CheckoutPayload"]
    assert sessions[0]["sessionId"] == sessions[1]["sessionId"]
    assert len(emulator.objects("checkout.session")) == 1

    await customer_with_card(engine, stripe_client, emulator)
    results = await asyncio.gather(*(create(engine, promotionCode="TWICE") for _ in range(2)))
    kinds = sorted(str(r["__typename"]) for r in results)
    assert kinds in (
        ["AlreadySubscribedError", "SubscriptionPayload"],
        ["SubscriptionPayload", "SubscriptionPayload"],
    )
    assert len(emulator.objects("subscription")) == 1
    assert await times_redeemed(stripe_client, promo_id) == 1
    assert len(emulator.idempotency_keys("POST", "/v1/subscriptions")) == 1


async def _refusal_case(
    name: str, engine: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> tuple[str, str]:
    """Make the code of one refusal kind; returns (code, expected reason)."""
    if name == "UNKNOWN":
        return "NOSUCHCODE", "UNKNOWN"
    if name == "INACTIVE":
        await promotion(stripe_client, "SLEEPING", {"percent_off": 10}, active=False)
        return "SLEEPING", "INACTIVE"
    if name == "EXHAUSTED":
        coupon = {"percent_off": 10, "max_redemptions": 1}
        promo_id = await promotion(stripe_client, "ONLYONE", coupon)
        # Someone else redeemed its only use.
        other = await stripe_client.v1.customers.create_async(
            params={
                "payment_method": "pm_card_visa",
                "invoice_settings": {"default_payment_method": "pm_card_visa"},
            }  # type: ignore[typeddict-item]
        )
        price = await stripe_client.v1.prices.create_async(
            params={
                "currency": "usd",
                "unit_amount": 100,
                "recurring": {"interval": "month"},
                "product_data": {"name": "x"},
            }
        )
        await stripe_client.v1.subscriptions.create_async(
            params={
                "customer": other.id,
                "items": [{"price": price.id}],
                "discounts": [{"promotion_code": promo_id}],
            }
        )
        return "ONLYONE", "EXHAUSTED"
    if name == "EXPIRED":
        expires_at = int(time.time()) + 1
        await promotion(stripe_client, "GONE", {"percent_off": 10}, expires_at=expires_at)
        # Wait for that second to pass (a moment of time, not a bound on anything).
        await asyncio.sleep(max(0.0, expires_at + 0.05 - time.time()))
        return "GONE", "EXPIRED"
    if name == "NOT_APPLICABLE":
        product = await stripe_client.v1.products.create_async(params={"name": "Other"})
        coupon = {"percent_off": 10, "applies_to": {"products": [product.id]}}
        await promotion(stripe_client, "ELSEWHERE", coupon)
        return "ELSEWHERE", "NOT_APPLICABLE"
    if name == "CURRENCY":
        await promotion(stripe_client, "EUROS", {"amount_off": 100, "currency": "eur"})
        return "EUROS", "NOT_APPLICABLE"
    if name == "MINIMUM_NOT_MET":
        restrictions = {"minimum_amount": 5000, "minimum_amount_currency": "usd"}
        await promotion(stripe_client, "BIGSPEND", {"percent_off": 10}, restrictions=restrictions)
        return "BIGSPEND", "MINIMUM_NOT_MET"
    assert name == "FIRST_TIME_ONLY"
    await promotion(
        stripe_client, "WELCOME", {"percent_off": 10}, restrictions={"first_time_transaction": True}
    )
    return "WELCOME", "FIRST_TIME_ONLY"


@pytest.mark.parametrize(
    "kind",
    [
        "UNKNOWN",
        "INACTIVE",
        "EXHAUSTED",
        "EXPIRED",
        "NOT_APPLICABLE",
        "CURRENCY",
        "MINIMUM_NOT_MET",
        "FIRST_TIME_ONLY",
    ],
)
async def test_a_code_that_cannot_be_used_is_typed_and_changes_nothing(
    kind: str, engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = await customer_with_card(engine, stripe_client, emulator)
    if kind == "FIRST_TIME_ONLY":
        # The customer paid before: a subscription, paid and canceled.
        assert (await create(engine))["__typename"] == "SubscriptionPayload"
        await call(engine, "mutation { cancelSubscription(atPeriodEnd: false) { __typename } }")
    code, reason = await _refusal_case(kind, engine, stripe_client)
    subscriptions = len(emulator.objects("subscription"))
    sessions = len(emulator.objects("checkout.session"))
    writes = emulator.request_count("POST")
    reads = emulator.request_count("GET")
    lookups = emulator.request_count("GET", "/v1/promotion_codes")
    for mutation, data in (
        (CREATE, {"planUid": "starter", "billingInterval": "MONTH"}),
        (CHECKOUT, {"planUid": "starter", "billingInterval": "MONTH"}),
    ):
        result = only(await call(engine, mutation, {"input": {**data, "promotionCode": code}}))
        assert result["__typename"] == "PromotionCodeError", result
        assert (result["code"], result["reason"], result["promotionCode"]) == (
            "INVALID_PROMOTION_CODE",
            reason,
            code,
        )
    assert emulator.request_count("POST") == writes  # nothing sent but the lookup…
    assert emulator.request_count("GET", "/v1/promotion_codes") - lookups == 2
    extra = emulator.request_count("GET") - reads - 2
    assert extra == (2 if kind == "FIRST_TIME_ONLY" else 0)  # …and the paid-invoice check
    assert len(emulator.objects("subscription")) == subscriptions  # nothing written
    assert len(emulator.objects("checkout.session")) == sessions
    assert await CheckoutSession.find({"organization_id": "org_a"}).count() == 0
    live = await Subscription.find({"organization_id": "org_a", "status": "active"}).count()
    assert live == 0
    assert customer_id


async def test_a_code_stripe_could_not_hold_is_invalid_input_before_any_request(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    before = emulator.request_count()
    for code in ("", "two words", "x" * 201, "💸"):
        result = await create(engine, promotionCode=code)
        assert result["__typename"] == "ValidationError"
        assert result["fields"][0]["field"] == "promotionCode"
    assert emulator.request_count() == before


async def test_a_plan_change_with_a_code_discounts_the_new_plan(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = await customer_with_card(engine, stripe_client, emulator)
    clock = await stripe_client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": int(time.time())}
    )
    emulator.attach_test_clock(customer_id, clock.id)
    assert (await create(engine))["__typename"] == "SubscriptionPayload"
    # Pro's product is at Stripe once a purchase has used it; the code is for Pro only.
    await call(
        engine, CHECKOUT, {"input": {"planUid": "pro", "billingInterval": "MONTH"}}, org="org_p"
    )
    pro = await SubscriptionPlan.find_one({"uid": "pro"})
    assert pro is not None
    assert pro.stripe_product_id is not None
    coupon = {
        "percent_off": 50,
        "duration": "forever",
        "applies_to": {"products": [pro.stripe_product_id]},
    }
    promo_id = await promotion(stripe_client, "HALFPRO", coupon)
    change = {"planUid": "starter", "billingInterval": "MONTH", "promotionCode": "HALFPRO"}
    refused = only(await call(engine, CHANGE, {"input": {**change, "planUid": "enterprise"}}))
    assert (refused["__typename"], refused["reason"]) == ("PromotionCodeError", "NOT_APPLICABLE")
    same = only(await call(engine, CHANGE, {"input": change}))  # the code is not for Starter
    assert (same["__typename"], same["reason"]) == ("PromotionCodeError", "NOT_APPLICABLE")
    [stripe_sub] = emulator.objects("subscription")
    assert stripe_sub["discounts"] == []

    changed = only(
        await call(
            engine, CHANGE, {"input": {**change, "planUid": "pro", "prorationBehavior": "NONE"}}
        )
    )
    assert changed["__typename"] == "SubscriptionPayload", changed
    assert changed["subscription"]["planUid"] == "pro"
    assert [d["promotionCode"] for d in changed["subscription"]["discounts"]] == ["HALFPRO"]
    assert await times_redeemed(stripe_client, promo_id) == 1
    # The next renewal bills Pro at half: 49.00 / 2 = 24.50.
    period_end = emulator.objects("subscription")[0]["items"]["data"][0]["current_period_end"]
    await stripe_client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": period_end + 60}
    )
    renewal = (await invoices(engine))[0]
    assert (renewal["subtotal"], renewal["discountAmount"], renewal["total"]) == (4900, 2450, 2450)
    assert renewal["amountPaid"] == 2450
    again = only(await call(engine, CHANGE, {"input": {**change, "planUid": "pro"}}))
    assert again["__typename"] == "ValidationError"  # already applied: nothing to change


async def test_double_submitted_changes_with_a_code_make_one_stripe_change(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    assert (await create(engine))["__typename"] == "SubscriptionPayload"
    promo_id = await promotion(stripe_client, "TWINS", {"percent_off": 10, "duration": "forever"})
    updates = "/v1/subscriptions/sub_*"

    async def twice(change: dict[str, str]) -> int:
        """Sends the change twice at once; the Stripe updates it made. The twin may answer
        that the change is already made."""
        before = len(emulator.idempotency_keys("POST", updates))
        both = await asyncio.gather(*(call(engine, CHANGE, {"input": change}) for _ in range(2)))
        kinds = sorted(str(only(r)["__typename"]) for r in both)
        assert kinds in (
            ["SubscriptionPayload", "SubscriptionPayload"],
            ["SubscriptionPayload", "ValidationError"],
        )
        return len(emulator.idempotency_keys("POST", updates)) - before

    # A plan change with a code: one update at Stripe, one redemption.
    change = {"planUid": "pro", "billingInterval": "MONTH", "promotionCode": "TWINS"}
    assert await twice(change) == 1
    assert await times_redeemed(stripe_client, promo_id) == 1
    [stripe_sub] = emulator.objects("subscription")
    assert len(stripe_sub["discounts"]) == 1
    assert len(emulator.events("customer.discount.created")) == 1

    # A code alone on the current plan, twice at once: one update, one redemption.
    other = await promotion(stripe_client, "ALONE", {"percent_off": 20, "duration": "once"})
    assert await twice({**change, "promotionCode": "ALONE"}) == 1
    assert await times_redeemed(stripe_client, other) == 1
    status = (await call(engine, STATUS))["subscriptionStatus"]
    assert [d["promotionCode"] for d in status["discounts"]] == ["ALONE"]


@pytest.mark.parametrize("kind", ["UNKNOWN", "INACTIVE", "EXPIRED", "NOT_APPLICABLE"])
@pytest.mark.parametrize("plan", ["pro", "starter"])  # a plan change, or the code alone
async def test_a_change_with_a_code_that_cannot_be_used_writes_and_sends_nothing(
    kind: str,
    plan: str,
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    assert (await create(engine))["__typename"] == "SubscriptionPayload"
    code, reason = await _refusal_case(kind, engine, stripe_client)
    [at_stripe] = emulator.objects("subscription")
    stored = await Subscription.find_one({"organization_id": "org_a"})
    assert stored is not None
    writes = emulator.request_count("POST")
    change = {"planUid": plan, "billingInterval": "MONTH", "promotionCode": code}
    result = only(await call(engine, CHANGE, {"input": change}))
    assert (result["__typename"], result["reason"], result["promotionCode"]) == (
        "PromotionCodeError",
        reason,
        code,
    )
    assert emulator.request_count("POST") == writes
    assert emulator.objects("subscription") == [at_stripe]
    after = await Subscription.find_one({"organization_id": "org_a"})
    assert after is not None
    assert after.model_dump() == stored.model_dump()


async def test_the_current_plan_with_a_code_only_applies_the_code(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    assert (await create(engine))["__typename"] == "SubscriptionPayload"
    await promotion(
        stripe_client,
        "LOYAL",
        {"percent_off": 20, "duration": "repeating", "duration_in_months": 3},
    )
    before = emulator.request_count("POST")
    result = only(
        await call(
            engine,
            CHANGE,
            {"input": {"planUid": "starter", "billingInterval": "MONTH", "promotionCode": "LOYAL"}},
        )
    )
    assert result["__typename"] == "SubscriptionPayload", result
    [discount] = result["subscription"]["discounts"]
    assert (discount["duration"], discount["durationInMonths"]) == ("REPEATING", 3)
    assert discount["end"] is not None
    assert emulator.request_count("POST") - before == 1  # the discount, and no item change
    [stripe_sub] = emulator.objects("subscription")
    assert stripe_sub["items"]["data"][0]["price"]["unit_amount"] == 1900
    assert len(emulator.objects("invoiceitem")) == 0  # nothing prorated


async def test_a_discount_removed_at_stripe_leaves_the_stored_view_by_webhook(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await promotion(stripe_client, "FORNOW", {"percent_off": 15, "duration": "forever"})
    created = await create(engine, promotionCode="FORNOW")
    sub_id = created["subscription"]["subscriptionId"]
    assert len(created["subscription"]["discounts"]) == 1
    await stripe_client.v1.subscriptions.update_async(sub_id, params={"discounts": ""})
    [deleted] = emulator.events("customer.discount.deleted")
    answer = await post(
        engine,
        event("customer.discount.deleted", deleted["data"]["object"], created=deleted["created"]),
    )
    assert answer.status_code == 200
    status = (await call(engine, STATUS))["subscriptionStatus"]
    assert status["discounts"] == []
    doc = await Subscription.find_one({"stripe_subscription_id": sub_id})
    assert doc is not None
    assert doc.discounts == []
    customer_level = dict(deleted["data"]["object"], subscription=None)
    ignored = await post(engine, event("customer.discount.created", customer_level))
    assert ignored.status_code == 200
