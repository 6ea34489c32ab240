"""previewSubscriptionChange through the real app, SDK and emulator: a seat, plan, add-on and
interval change each previewed, the amounts checked against hand arithmetic, nothing written.

The customer lives on a test clock frozen at 1 March 2030; the preview is taken 10 days into
the 31-day period, so 21/31 of it is left. Every proration is the whole amount (unit amount x
quantity) times 21/31, rounded once to the cent: Business is $15 a seat, Starter $19, Pro $49,
Pro's bandwidth pack $9, Starter yearly $190.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import stripe
from stripe_emulator import Emulator

from revenue_engine.documents import (
    AuditEntry,
    CheckoutSession,
    Customer,
    Subscription,
    SubscriptionPlan,
)
from tests.e2e.ops import CREATE_CUSTOMER, ERRORS, call, only
from tests.e2e.test_promotion_codes import promotion

START = datetime(2030, 3, 1, tzinfo=UTC)
END = datetime(2030, 4, 1, tzinfo=UTC)
TEN_DAYS_IN = datetime(2030, 3, 11, tzinfo=UTC)

PREVIEW = f"""query($input: PreviewChangeInput!) {{ previewSubscriptionChange(input: $input) {{
  __typename ... on SubscriptionChangePreview {{ planUid billingInterval overages seats
    prorationBehavior prorationDate amountDueNow prorationAmount
    nextInvoice {{ date currency subtotal discountAmount total amountDue
      lines {{ description amount quantity periodStart periodEnd proration }} }} }}
  {ERRORS} ... on PromotionCodeError {{ reason }} }} }}"""
UPDATE_SEATS = """mutation($quantity: Int!) { updateSeats(quantity: $quantity) { __typename } }"""


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def on_a_clock(
    engine: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    emulator: Emulator,
    **purchase: Any,
) -> None:
    """The organization's customer on a test clock at 1 March 2030 with a card, subscribed
    directly to ``purchase``, and the clock moved 10 days on."""
    created = only(await call(engine, CREATE_CUSTOMER))
    customer_id = created["customer"]["id"]
    clock = await stripe_client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": int(START.timestamp())}
    )
    emulator.attach_test_clock(customer_id, clock.id)
    pm = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer_id}
    )
    await stripe_client.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    subscribe = """mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input)
      { __typename } }"""
    result = only(
        await call(engine, subscribe, {"input": {"billingInterval": "MONTH", **purchase}})
    )
    assert result["__typename"] == "SubscriptionPayload", result
    await stripe_client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": int(TEN_DAYS_IN.timestamp())}
    )


async def preview(engine: httpx.AsyncClient, **change: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await call(engine, PREVIEW, {"input": change}))[
        "previewSubscriptionChange"
    ]
    return result


def lines(result: dict[str, Any]) -> list[tuple[int, int | None, bool]]:
    return sorted(
        (line["amount"], line["quantity"], line["proration"])
        for line in result["nextInvoice"]["lines"]
    )


async def written() -> dict[str, Any]:
    """What the engine has stored of the organization's billing."""
    subs = await Subscription.find_all().to_list()
    plans = await SubscriptionPlan.find_all().to_list()
    return {
        "subscriptions": [(s.version, s.model_dump(exclude={"id"})) for s in subs],
        "audit": await AuditEntry.find_all().count(),
        "checkouts": await CheckoutSession.find_all().count(),
        "customers": await Customer.find_all().count(),
        "plans": [p.model_dump(exclude={"id"}) for p in plans],
    }


def stripe_state(emulator: Emulator) -> dict[str, Any]:
    kinds = ("subscription", "invoice", "invoiceitem", "price", "product", "customer", "event")
    return {kind: emulator.objects(kind) for kind in kinds}


async def test_a_seat_change_preview_writes_nothing_and_bills_what_the_change_does(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await on_a_clock(engine, stripe_client, emulator, planUid="business", seats=5)
    stored, at_stripe = await written(), stripe_state(emulator)
    emulator.requests.clear()

    result = await preview(engine, seats=8)
    assert result["__typename"] == "SubscriptionChangePreview", result
    assert (result["planUid"], result["billingInterval"], result["seats"]) == (
        "business",
        "MONTH",
        8,
    )
    assert result["prorationDate"] == iso(TEN_DAYS_IN)
    # 7,500 x 21/31 = 5,080.65 credited; 12,000 x 21/31 = 8,129.03 charged; then 8 seats.
    assert lines(result) == [(-5081, 5, True), (8129, 8, True), (12000, 8, False)]
    assert (result["prorationAmount"], result["amountDueNow"]) == (3048, 0)
    invoice = result["nextInvoice"]
    assert (invoice["date"], invoice["currency"]) == (iso(END), "usd")
    assert (invoice["subtotal"], invoice["total"], invoice["amountDue"]) == (15048, 15048, 15048)
    credit = next(line for line in invoice["lines"] if line["amount"] < 0)
    assert credit["description"] == "Unused time on 5 \u00d7 Business after 11 Mar 2030"
    assert (credit["periodStart"], credit["periodEnd"]) == (iso(TEN_DAYS_IN), iso(END))

    # Nothing written: no store document, no Stripe object or event; only reads and the
    # preview itself reached Stripe.
    assert await written() == stored
    assert stripe_state(emulator) == at_stripe
    assert emulator.requests.summary()["counts"] == {
        "GET /v1/test_helpers/test_clocks/"
        + emulator.objects("test_helpers.test_clock")[0]["id"]: 1,
        "POST /v1/invoices/create_preview": 1,
    }

    # Made now, the change creates exactly the prorations previewed.
    assert only(await call(engine, UPDATE_SEATS, {"quantity": 8}))["__typename"] == (
        "SubscriptionPayload"
    )
    pending = [ii for ii in emulator.objects("invoiceitem") if ii["invoice"] is None]
    assert sorted((ii["amount"], ii["quantity"], True) for ii in pending) == [
        line for line in lines(result) if line[2]
    ]


async def test_always_invoice_previews_what_is_charged_now(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await on_a_clock(engine, stripe_client, emulator, planUid="business", seats=5)
    result = await preview(engine, seats=8, prorationBehavior="ALWAYS_INVOICE")
    assert lines(result) == [(-5081, 5, True), (8129, 8, True)]
    assert (result["amountDueNow"], result["prorationAmount"]) == (3048, 3048)
    assert result["nextInvoice"]["date"] == iso(TEN_DAYS_IN)


async def test_a_plan_change_preview(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await on_a_clock(engine, stripe_client, emulator, planUid="starter")
    result = await preview(engine, planUid="pro")
    assert (result["planUid"], result["seats"], result["overages"]) == ("pro", None, [])
    # 1,900 x 21/31 = 1,287.10 credited; 4,900 x 21/31 = 3,319.35 charged; then 4,900.
    assert lines(result) == [(-1287, 1, True), (3319, 1, True), (4900, 1, False)]
    assert (result["prorationAmount"], result["amountDueNow"]) == (2032, 0)
    assert result["nextInvoice"]["total"] == 6932

    # The first preview of a plan nobody bought made its Stripe prices (the catalog, as a
    # purchase would); a second preview writes nothing at all.
    stored, at_stripe = await written(), stripe_state(emulator)
    again = await preview(engine, planUid="pro")
    assert lines(again) == lines(result)
    assert (await written(), stripe_state(emulator)) == (stored, at_stripe)
    assert [s.plan_uid for s in await Subscription.find_all().to_list()] == ["starter"]


async def test_an_add_on_preview(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await on_a_clock(engine, stripe_client, emulator, planUid="pro")
    result = await preview(engine, overages=["bandwidth"])
    assert result["overages"] == ["bandwidth"]
    # The pack from now on: 900 x 21/31 = 609.68; the plan's own item is unchanged.
    assert lines(result) == [(610, 1, True), (900, 1, False), (4900, 1, False)]
    assert result["nextInvoice"]["total"] == 6410


async def test_an_interval_change_preview_is_charged_now(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await on_a_clock(engine, stripe_client, emulator, planUid="starter")
    result = await preview(engine, billingInterval="YEAR")
    # A new interval starts a new period now: the unused month credited, the year billed.
    assert lines(result) == [(-1287, 1, True), (19000, 1, False)]
    assert (result["amountDueNow"], result["prorationAmount"]) == (17713, -1287)
    assert result["nextInvoice"]["date"] == iso(TEN_DAYS_IN)


async def test_bad_previews_are_typed_and_send_nothing(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    nothing = await preview(engine, seats=6)
    assert nothing["code"] == "NO_SUBSCRIPTION"
    await on_a_clock(engine, stripe_client, emulator, planUid="business", seats=5)
    emulator.requests.clear()
    stored = await written()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"seats": 4}, "ValidationError", "VALIDATION"),
        ({"seats": 501}, "ValidationError", "VALIDATION"),
        ({"seats": 5}, "ValidationError", "VALIDATION"),  # nothing to change
        ({}, "ValidationError", "VALIDATION"),
        ({"planUid": "nope"}, "NotFoundError", "NOT_FOUND"),
        ({"planUid": "pro", "seats": 3}, "ValidationError", "VALIDATION"),
        ({"overages": ["unknown"]}, "ValidationError", "VALIDATION"),
    ]
    for change, typename, code in cases:
        result = await preview(engine, **change)
        assert (result["__typename"], result["code"]) == (typename, code), (change, result)
    assert emulator.request_count() == 0
    assert await written() == stored


async def test_seats_of_a_plan_not_sold_per_seat_are_not_previewed(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await on_a_clock(engine, stripe_client, emulator, planUid="starter")
    emulator.requests.clear()
    result = await preview(engine, seats=4)
    assert (result["__typename"], result["code"]) == ("BillingStateError", "NOT_PER_SEAT")
    assert emulator.request_count() == 0


async def test_nothing_billed_next_is_a_typed_answer(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await on_a_clock(engine, stripe_client, emulator, planUid="business", seats=5)
    cancel = "mutation { cancelSubscription(atPeriodEnd: true) { __typename } }"
    assert only(await call(engine, cancel))["__typename"] == "SubscriptionPayload"
    # Ending at the period end with nothing metered, the subscription issues no next invoice:
    # Stripe answers `invoice_upcoming_none`, and the engine says so.
    result = await preview(engine, seats=6)
    assert result["__typename"] == "ProviderRejectedError", result
    assert result["message"].startswith("No upcoming invoices for customer")
    assert stripe_quantity_is(emulator, 5)


def stripe_quantity_is(emulator: Emulator, quantity: int) -> bool:
    [sub] = emulator.objects("subscription")
    return bool(sub["items"]["data"][0]["quantity"] == quantity)


async def test_a_discount_shows_in_the_preview(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await promotion(stripe_client, "QUARTER", {"percent_off": 25, "duration": "forever"})
    await on_a_clock(engine, stripe_client, emulator, planUid="starter", promotionCode="QUARTER")
    result = await preview(engine, planUid="pro")
    # As without the code: 1,287 credited, 3,319 charged (prorations are not discounted), then
    # the renewal at 4,900 less 25 % (1,225): a total of 6,932 - 1,225.
    assert lines(result) == [(-1287, 1, True), (3319, 1, True), (4900, 1, False)]
    assert result["nextInvoice"]["subtotal"] == 6932
    assert result["nextInvoice"]["total"] == 6932 - 1225


async def test_a_code_given_to_the_preview_shows_its_discount_and_is_not_redeemed(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    promo_id = await promotion(stripe_client, "HALF", {"percent_off": 50, "duration": "once"})
    await on_a_clock(engine, stripe_client, emulator, planUid="starter")
    await preview(engine, planUid="pro")  # Pro's prices are made at Stripe once (see above)
    stored, at_stripe = await written(), stripe_state(emulator)
    result = await preview(engine, planUid="starter", promotionCode="HALF")
    assert result["__typename"] == "SubscriptionChangePreview", result
    # Only the code changes: the renewal of 1,900 at half price.
    assert lines(result) == [(1900, 1, False)]
    invoice = result["nextInvoice"]
    assert (invoice["subtotal"], invoice["discountAmount"], invoice["total"]) == (1900, 950, 950)
    changed = await preview(engine, planUid="pro", promotionCode="HALF")
    # The plan change's next invoice: 2,032 of prorations (not discounted) and the renewal
    # of 4,900 at half price.
    assert changed["nextInvoice"]["subtotal"] == 6932
    assert changed["nextInvoice"]["discountAmount"] == 2450
    assert (await written(), stripe_state(emulator)) == (stored, at_stripe)
    promo = await stripe_client.v1.promotion_codes.retrieve_async(promo_id)
    assert promo.times_redeemed == 0
    unknown = await preview(engine, planUid="pro", promotionCode="NOPE")
    assert (unknown["__typename"], unknown["reason"]) == ("PromotionCodeError", "UNKNOWN")
