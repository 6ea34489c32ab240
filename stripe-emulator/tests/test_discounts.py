"""Coupons, promotion codes and the discounts they make: Stripe's redemption rules, and what a
discount takes off an invoice (every amount below is worked out by hand in its comment)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, as_dict, make_customer, make_plan
from stripe_emulator import Emulator
from stripe_emulator.discounts import allocate
from test_shapes import shape_problems

pytestmark = [SDK_HTTPX_WARNING]

DAY = 86400
FIXTURES = Path(__file__).parent / "fixtures" / "stripe" / "fixtures3.json"


async def _coupon(client: stripe.StripeClient, **params: Any) -> stripe.Coupon:
    return await client.v1.coupons.create_async(params=params)  # type: ignore[arg-type]


async def _code(client: stripe.StripeClient, coupon: str, **params: Any) -> stripe.PromotionCode:
    params = {"promotion": {"type": "coupon", "coupon": coupon}, **params}
    return await client.v1.promotion_codes.create_async(params=params)  # type: ignore[arg-type]


async def _subscribe(
    client: stripe.StripeClient, customer: str, *prices: str, **params: Any
) -> stripe.Subscription:
    params = {"customer": customer, "items": [{"price": p} for p in prices], **params}
    return await client.v1.subscriptions.create_async(params=params)  # type: ignore[arg-type]


async def _invoice(client: stripe.StripeClient, invoice_id: str) -> dict[str, Any]:
    return as_dict(await client.v1.invoices.retrieve_async(invoice_id))


def _refused(exc: pytest.ExceptionInfo[stripe.InvalidRequestError]) -> tuple[int | None, str]:
    return exc.value.http_status, str(exc.value.user_message)


# --- coupons -------------------------------------------------------------------------------
async def test_coupons_take_stripes_parameters_and_refuse_bad_ones(
    client: stripe.StripeClient,
) -> None:
    coupon = await _coupon(
        client, id="SPRING", percent_off=25.5, duration="repeating", duration_in_months=3
    )
    assert (coupon.id, coupon.percent_off, coupon.amount_off, coupon.currency) == (
        "SPRING",
        25.5,
        None,
        None,
    )
    assert (coupon.duration, coupon.duration_in_months, coupon.valid) == ("repeating", 3, True)
    assert "applies_to" not in as_dict(coupon)  # includable: only when expanded
    off = await _coupon(client, amount_off=500, currency="USD")
    assert (off.amount_off, off.currency, off.duration, len(off.id)) == (500, "usd", "once", 8)
    bad: list[dict[str, Any]] = [
        {"duration": "once"},  # neither percent_off nor amount_off
        {"percent_off": 10, "amount_off": 100, "currency": "usd"},
        {"percent_off": 0},
        {"percent_off": 100.5},
        {"amount_off": 100},  # no currency
        {"percent_off": 10, "currency": "usd"},
        {"percent_off": 10, "duration": "repeating"},  # no duration_in_months
        {"percent_off": 10, "duration": "once", "duration_in_months": 2},
        {"percent_off": 10, "redeem_by": 1},
        {"percent_off": 10, "applies_to": {"products": ["prod_missing"]}},
        {"percent_off": 10, "currency_options": {"eur": {"amount_off": 1}}},
        {"id": "SPRING", "percent_off": 10},  # exists
    ]
    for params in bad:
        with pytest.raises(stripe.InvalidRequestError):
            await _coupon(client, **params)
    listed = await client.v1.coupons.list_async()
    assert sorted(c.id for c in listed.data) == sorted(["SPRING", off.id])
    renamed = await client.v1.coupons.update_async("SPRING", params={"name": "Spring sale"})
    assert renamed.name == "Spring sale"
    gone = await client.v1.coupons.delete_async(off.id)
    assert (gone.id, gone.deleted) == (off.id, True)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.coupons.retrieve_async(off.id)
    assert missing.value.http_status == 404


async def test_applies_to_is_returned_when_expanded(client: stripe.StripeClient) -> None:
    price = await make_plan(client)
    coupon = await _coupon(client, percent_off=10, applies_to={"products": [price.product]})
    again = await client.v1.coupons.retrieve_async(coupon.id, params={"expand": ["applies_to"]})
    assert as_dict(again)["applies_to"] == {"products": [price.product]}


# --- promotion codes -----------------------------------------------------------------------
async def test_promotion_codes_are_listed_by_code_regardless_of_case(
    client: stripe.StripeClient,
) -> None:
    coupon = await _coupon(client, percent_off=20, duration="forever")
    promo = await _code(client, coupon.id, code="Launch20", max_redemptions=5)
    assert promo.id.startswith("promo_")
    assert as_dict(promo)["promotion"] == {"coupon": coupon.id, "type": "coupon"}
    assert (promo.active, promo.times_redeemed, promo.max_redemptions) == (True, 0, 5)
    assert as_dict(promo)["restrictions"] == {
        "first_time_transaction": False,
        "minimum_amount": None,
        "minimum_amount_currency": None,
    }
    found = await client.v1.promotion_codes.list_async(
        params={"code": "launch20", "expand": ["data.promotion.coupon"]}
    )
    assert [p.id for p in found.data] == [promo.id]
    assert as_dict(found.data[0])["promotion"]["coupon"]["percent_off"] == 20
    # One active code per spelling: a second is refused, an inactive one may share it.
    with pytest.raises(stripe.InvalidRequestError):
        await _code(client, coupon.id, code="LAUNCH20")
    retired = await _code(client, coupon.id, code="LAUNCH20", active=False)
    both = await client.v1.promotion_codes.list_async(params={"code": "LAUNCH20"})
    assert {p.id for p in both.data} == {promo.id, retired.id}
    active = await client.v1.promotion_codes.list_async(params={"code": "launch20", "active": True})
    assert [p.id for p in active.data] == [promo.id]
    with pytest.raises(stripe.InvalidRequestError):  # reactivating would make two active
        await client.v1.promotion_codes.update_async(retired.id, params={"active": True})
    off = await client.v1.promotion_codes.update_async(promo.id, params={"active": False})
    assert off.active is False
    for params in (
        {"code": "no spaces"},
        {"max_redemptions": 0},
        {"expires_at": 1},
        {"restrictions": {"minimum_amount": 1000}},  # no currency
        {"restrictions": {"minimum_amount_currency": "usd"}},
    ):
        with pytest.raises(stripe.InvalidRequestError):
            await _code(client, coupon.id, **params)


async def test_a_codes_limits_cannot_exceed_its_coupons(client: stripe.StripeClient) -> None:
    coupon = await _coupon(client, percent_off=10, max_redemptions=2)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await _code(client, coupon.id, max_redemptions=3)
    assert exc.value.param == "max_redemptions"


# --- discount arithmetic -------------------------------------------------------------------
async def test_a_percent_code_discounts_the_first_invoice(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client)
    price = await make_plan(client, amount=2000)
    coupon = await _coupon(client, percent_off=20, duration="forever")
    promo = await _code(client, coupon.id, code="TWENTY")
    sub = await _subscribe(client, customer.id, price.id, discounts=[{"promotion_code": promo.id}])
    assert sub.status == "active"
    [discount_id] = as_dict(sub)["discounts"]
    invoice = await _invoice(client, str(sub.latest_invoice))
    # 20% of 20.00 is 4.00: 20.00 - 4.00 = 16.00 charged.
    assert (invoice["subtotal"], invoice["total"], invoice["amount_paid"]) == (2000, 1600, 1600)
    assert invoice["discounts"] == [discount_id]
    assert invoice["total_discount_amounts"] == [{"amount": 400, "discount": discount_id}]
    [line] = invoice["lines"]["data"]
    assert (line["amount"], line["discount_amounts"]) == (
        2000,
        [{"amount": 400, "discount": discount_id}],
    )
    expanded = await client.v1.subscriptions.retrieve_async(
        sub.id, params={"expand": ["discounts.source.coupon", "discounts.promotion_code"]}
    )
    [discount] = as_dict(expanded)["discounts"]
    assert discount["source"]["coupon"]["percent_off"] == 20
    assert discount["promotion_code"]["code"] == "TWENTY"
    assert (discount["subscription"], discount["customer"], discount["end"]) == (
        sub.id,
        customer.id,
        None,
    )
    assert (await client.v1.promotion_codes.retrieve_async(promo.id)).times_redeemed == 1
    assert (await client.v1.coupons.retrieve_async(coupon.id)).times_redeemed == 1
    assert [e["data"]["object"]["id"] for e in emulator.events("customer.discount.created")] == [
        discount_id
    ]


async def test_amount_off_is_capped_at_the_invoice(client: stripe.StripeClient) -> None:
    customer = await make_customer(client)
    small = await make_plan(client, amount=300)
    coupon = await _coupon(client, amount_off=500, currency="usd", duration="forever")
    sub = await _subscribe(client, customer.id, small.id, discounts=[{"coupon": coupon.id}])
    invoice = await _invoice(client, str(sub.latest_invoice))
    # 5.00 off a 3.00 invoice takes 3.00: nothing is due, the invoice is paid at once.
    assert (invoice["total"], invoice["amount_due"], invoice["status"]) == (0, 0, "paid")
    assert invoice["total_discount_amounts"][0]["amount"] == 300


def test_amount_off_is_shared_in_proportion() -> None:
    coupon = {"percent_off": None, "amount_off": 1000}
    lines = [
        {"amount": amount, "discountable": True, "discount_amounts": [], "pricing": {}}
        for amount in (2000, 1000, 1000, -500)
    ]
    # 10.00 over 20 + 10 + 10: 5.00, 2.50, 2.50; the credit line takes nothing.
    assert allocate(coupon, None, lines) == [500, 250, 250, 0]
    odd = [dict(line, amount=a) for line, a in zip(lines, (100, 100, 100, 0), strict=True)]
    # 10.00 capped at 3.00 over three equal lines: one cent each is whole.
    assert allocate(coupon, None, odd) == [100, 100, 100, 0]
    coupon = {"percent_off": None, "amount_off": 100}
    # 1.00 over three equal lines: 33 each, the last cent to the first largest remainder.
    assert allocate(coupon, None, odd) == [34, 33, 33, 0]


async def test_applies_to_discounts_only_that_products_lines(
    client: stripe.StripeClient,
) -> None:
    customer = await make_customer(client)
    base = await make_plan(client, amount=2000, name="Base")
    addon = await make_plan(client, amount=1000, name="Addon")
    coupon = await _coupon(
        client, percent_off=50, duration="forever", applies_to={"products": [base.product]}
    )
    sub = await _subscribe(
        client, customer.id, base.id, addon.id, discounts=[{"coupon": coupon.id}]
    )
    invoice = await _invoice(client, str(sub.latest_invoice))
    # Half of the base's 20.00 (10.00); the add-on's 10.00 is not discounted: 30 - 10 = 20.
    assert (invoice["subtotal"], invoice["total"]) == (3000, 2000)
    taken = {line["amount"]: line["discount_amounts"] for line in invoice["lines"]["data"]}
    assert [d["amount"] for d in taken[2000]] == [1000]
    assert taken[1000] == []
    other = await make_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await _subscribe(client, other.id, addon.id, discounts=[{"coupon": coupon.id}])
    assert "does not apply" in str(exc.value.user_message)
    assert exc.value.param == "discounts[0][coupon]"


async def test_once_ends_after_the_first_paid_invoice_and_repeating_after_its_months(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": 1_900_000_000}
    )
    price = await make_plan(client, amount=1000)
    once = await _coupon(client, percent_off=50)
    twice = await _coupon(
        client, amount_off=100, currency="usd", duration="repeating", duration_in_months=2
    )
    ends: list[dict[str, Any]] = []
    for coupon in (once, twice):
        customer = await make_customer(client, test_clock=clock.id)
        sub = await _subscribe(client, customer.id, price.id, discounts=[{"coupon": coupon.id}])
        ends.append(as_dict(sub))
    assert ends[0]["discounts"] == []  # the first invoice used the once discount up
    [repeating] = ends[1]["discounts"]
    discount = as_dict(
        await client.v1.subscriptions.retrieve_async(
            ends[1]["id"], params={"expand": ["discounts"]}
        )
    )["discounts"][0]
    # Two months after 2030-03-17 08:26:40 UTC.
    assert discount["end"] == 1_900_000_000 + (31 + 30) * DAY
    period_end = ends[0]["items"]["data"][0]["current_period_end"]
    for step in range(1, 4):
        await client.v1.test_helpers.test_clocks.advance_async(
            clock.id, params={"frozen_time": period_end + (step - 1) * 31 * DAY + 60}
        )
    totals: dict[str, list[int]] = {}
    for sub in ends:
        invoices = await client.v1.invoices.list_async(
            params={"subscription": sub["id"], "limit": 10}
        )
        totals[sub["id"]] = [i.total for i in reversed(invoices.data)]
    # once (50%): 5.00 then 10.00, 10.00, 10.00.
    assert totals[ends[0]["id"]] == [500, 1000, 1000, 1000]
    # repeating 2 months (1.00 off): months 1 and 2 at 9.00, then 10.00.
    assert totals[ends[1]["id"]] == [900, 900, 1000, 1000]
    after = await client.v1.subscriptions.retrieve_async(ends[1]["id"])
    assert as_dict(after)["discounts"] == []
    deleted = [e["data"]["object"]["id"] for e in emulator.events("customer.discount.deleted")]
    assert repeating in deleted
    assert len(deleted) == 2


async def test_a_discount_added_later_applies_from_the_next_invoice(
    client: stripe.StripeClient,
) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": 1_900_000_000}
    )
    customer = await make_customer(client, test_clock=clock.id)
    price = await make_plan(client, amount=4900)
    sub = await _subscribe(client, customer.id, price.id)
    coupon = await _coupon(client, percent_off=10, duration="forever")
    promo = await _code(client, coupon.id, code="LATER")
    updated = await client.v1.subscriptions.update_async(
        sub.id, params={"discounts": [{"promotion_code": promo.id}]}
    )
    [discount_id] = as_dict(updated)["discounts"]
    again = await client.v1.subscriptions.update_async(
        sub.id, params={"discounts": [{"promotion_code": promo.id}]}
    )
    assert as_dict(again)["discounts"] == [discount_id]  # kept, not redeemed twice
    assert (await client.v1.promotion_codes.retrieve_async(promo.id)).times_redeemed == 1
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": sub.items.data[0].current_period_end + 60}
    )
    renewed = await _invoice(
        client, str((await client.v1.subscriptions.retrieve_async(sub.id)).latest_invoice)
    )
    # 10% of 49.00 = 4.90: 44.10.
    assert (renewed["billing_reason"], renewed["total"]) == ("subscription_cycle", 4410)
    cleared = await client.v1.subscriptions.update_async(sub.id, params={"discounts": ""})
    assert as_dict(cleared)["discounts"] == []


# --- refusals ------------------------------------------------------------------------------
async def test_codes_that_cannot_be_redeemed_are_refused_and_change_nothing(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    price = await make_plan(client, amount=1000)
    coupon = await _coupon(client, percent_off=10, duration="forever")
    inactive = await _code(client, coupon.id, code="OFF", active=False)
    used_up = await _code(client, coupon.id, code="ONCE", max_redemptions=1)
    first_time = await _code(
        client, coupon.id, code="NEW", restrictions={"first_time_transaction": True}
    )
    minimum = await _code(
        client,
        coupon.id,
        code="BIG",
        restrictions={"minimum_amount": 1500, "minimum_amount_currency": "usd"},
    )
    someone = await make_customer(client)
    theirs = await _code(client, coupon.id, code="THEIRS", customer=someone.id)
    veteran = await make_customer(client)
    await _subscribe(client, veteran.id, price.id, discounts=[{"promotion_code": used_up.id}])
    refusals = {
        inactive.id: "is not active",
        used_up.id: "maximum number of times",
        first_time.id: "prior transactions",
        minimum.id: "minimum purchase of 15.00 usd",
        theirs.id: "cannot be redeemed by this customer",
    }
    subscriptions = emulator.request_count()
    before = len(emulator.objects("subscription"))
    for promo_id, message in refusals.items():
        with pytest.raises(stripe.InvalidRequestError) as exc:
            await _subscribe(client, veteran.id, price.id, discounts=[{"promotion_code": promo_id}])
        assert exc.value.http_status == 400
        assert message in str(exc.value.user_message), exc.value.user_message
        assert exc.value.param == "discounts[0][promotion_code]"
    assert len(emulator.objects("subscription")) == before
    assert emulator.request_count() == subscriptions + len(refusals)
    counts = {p.id: p.times_redeemed for p in (await client.v1.promotion_codes.list_async()).data}
    assert counts == {p: int(p == used_up.id) for p in counts}
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await _subscribe(client, veteran.id, price.id, discounts=[{"promotion_code": "promo_x"}])
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


async def test_expiry_is_judged_at_the_customers_time(client: stripe.StripeClient) -> None:
    now = int(
        (await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": 1})).created
    )
    clock = await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": now})
    customer = await make_customer(client, test_clock=clock.id)
    price = await make_plan(client)
    coupon = await _coupon(client, percent_off=10, redeem_by=now + 2 * DAY)
    promo = await _code(client, coupon.id, expires_at=now + DAY)
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": now + DAY + 1}
    )
    with pytest.raises(stripe.InvalidRequestError) as expired:
        await _subscribe(client, customer.id, price.id, discounts=[{"promotion_code": promo.id}])
    assert "has expired" in str(expired.value.user_message)
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": now + 3 * DAY}
    )
    with pytest.raises(stripe.InvalidRequestError) as coupon_expired:
        await _subscribe(client, customer.id, price.id, discounts=[{"coupon": coupon.id}])
    assert coupon_expired.value.code == "coupon_expired"


# --- checkout ------------------------------------------------------------------------------
async def test_checkout_with_a_code_charges_the_discounted_amount(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    price = await make_plan(client, amount=5800)
    coupon = await _coupon(client, amount_off=800, currency="usd", duration="forever")
    promo = await _code(client, coupon.id, code="EIGHT")
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://app.test/ok",
            "discounts": [{"promotion_code": promo.id}],
            "expand": ["line_items"],
        }
    )
    body = as_dict(session)
    # 58.00 - 8.00 = 50.00.
    assert (body["amount_subtotal"], body["amount_total"]) == (5800, 5000)
    assert body["total_details"]["amount_discount"] == 800
    assert body["discounts"] == [{"coupon": None, "promotion_code": promo.id}]
    [item] = body["line_items"]["data"]
    assert (item["amount_discount"], item["amount_total"]) == (800, 5000)
    assert session.url is not None
    page = await http.get(session.url)
    assert "-$8.00" in page.text
    assert "Pay $50.00" in page.text
    paid = await http.post(f"{session.url}/pay", data={"card": "pm_card_visa"})
    assert paid.status_code == 303
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    sub = await client.v1.subscriptions.retrieve_async(
        str(done.subscription), params={"expand": ["discounts"]}
    )
    [discount] = as_dict(sub)["discounts"]
    assert (discount["checkout_session"], discount["promotion_code"]) == (session.id, promo.id)
    invoice = await _invoice(client, str(sub.latest_invoice))
    assert (invoice["total"], invoice["amount_paid"]) == (5000, 5000)


async def test_checkout_lets_the_buyer_enter_a_code_when_allowed(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    price = await make_plan(client, amount=2000)
    coupon = await _coupon(client, percent_off=25, duration="forever")
    await _code(client, coupon.id, code="QUARTER")
    with pytest.raises(stripe.InvalidRequestError) as both:
        await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "allow_promotion_codes": True,
                "discounts": [{"coupon": coupon.id}],
            }
        )
    assert "only specify one of" in str(both.value.user_message)
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "allow_promotion_codes": True,
        }
    )
    assert session.url is not None
    assert "name='promotion_code'" in (await http.get(session.url)).text
    wrong = await http.post(f"{session.url}/pay", data={"promotion_code": "NOPE"})
    assert (wrong.status_code, "This code is invalid." in wrong.text) == (400, True)
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    paid = await http.post(f"{session.url}/pay", data={"promotion_code": "quarter"})
    assert (paid.status_code, "Payment complete" in paid.text) == (200, True)
    done = as_dict(await client.v1.checkout.sessions.retrieve_async(session.id))
    # 25% of 20.00 = 5.00: 15.00.
    assert (done["amount_total"], done["total_details"]["amount_discount"]) == (1500, 500)
    sub = await client.v1.subscriptions.retrieve_async(done["subscription"])
    assert (await _invoice(client, str(sub.latest_invoice)))["total"] == 1500


# --- shapes --------------------------------------------------------------------------------
async def test_new_objects_match_stripes_fixture(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    fixtures = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    customer = await make_customer(client)
    price = await make_plan(client)
    coupon = await _coupon(client, percent_off=10, duration="forever")
    promo = await _code(client, coupon.id, restrictions={"first_time_transaction": True})
    await _subscribe(client, customer.id, price.id, discounts=[{"promotion_code": promo.id}])
    samples = [as_dict(await client.v1.coupons.delete_async(coupon.id))]
    for kind in ("coupon", "promotion_code", "discount", "invoice", "subscription", "event"):
        samples += emulator.objects(kind)
    for invoice in emulator.objects("invoice"):
        samples += invoice["lines"]["data"]
    problems: list[str] = []
    for obj in samples:
        kind = f"deleted_{obj['object']}" if obj.get("deleted") else str(obj["object"])
        problems += shape_problems(kind, obj, fixtures[kind])
    assert problems == []
