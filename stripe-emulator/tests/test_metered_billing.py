"""Metered prices on subscriptions and Checkout: nothing up front, the period's usage billed in
arrears at renewal (``transform_quantity`` applied), on a final invoice, or not at all when the
item goes mid-period — as Stripe's classic billing mode does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import stripe

from emulator_helpers import (
    SDK_HTTPX_WARNING,
    as_dict,
    make_customer,
    make_meter,
    make_metered_price,
    make_plan,
    report_usage,
)
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]

START = int(datetime(2030, 1, 31, 12, 0, tzinfo=UTC).timestamp())
FEB_END = int(datetime(2030, 2, 28, 12, 0, tzinfo=UTC).timestamp())
MAR_END = int(datetime(2030, 3, 31, 12, 0, tzinfo=UTC).timestamp())
DAY = 86400


def _error(exc: pytest.ExceptionInfo[stripe.StripeError]) -> dict[str, Any]:
    body = exc.value.json_body
    assert body is not None
    error: dict[str, Any] = body["error"]
    return error


async def _setup(
    client: stripe.StripeClient, **price: Any
) -> tuple[stripe.test_helpers.TestClock, stripe.Customer, stripe.Price, stripe.Price]:
    clock = await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": START})
    customer = await make_customer(client, test_clock=clock.id)
    base = await make_plan(client, amount=4900, name="Pro")
    meter = await make_meter(client)
    metered = await make_metered_price(client, meter, **price)
    return clock, customer, base, metered


async def _advance(client: stripe.StripeClient, clock_id: str, to: int) -> None:
    await client.v1.test_helpers.test_clocks.advance_async(clock_id, params={"frozen_time": to})


async def _use(
    client: stripe.StripeClient,
    clock: stripe.test_helpers.TestClock,
    customer: stripe.Customer,
    calls: int,
    at: int,
) -> None:
    """Calls made at ``at``, reported then (the clock moves there first): Stripe takes meter
    events from the past 35 days up to 5 minutes ahead of the customer's clock."""
    now = (await client.v1.test_helpers.test_clocks.retrieve_async(clock.id)).frozen_time
    if at > now:
        await _advance(client, clock.id, at)
    await report_usage(client, customer.id, calls, timestamp=at)


async def _invoices(client: stripe.StripeClient, sub_id: str) -> list[stripe.Invoice]:
    listed = await client.v1.invoices.list_async(params={"subscription": sub_id})
    return list(listed.data)


def _line_for(invoice: stripe.Invoice, price_id: str) -> stripe.InvoiceLineItem:
    (line,) = [
        line
        for line in invoice.lines.data
        if line.pricing is not None
        and line.pricing.price_details is not None
        and line.pricing.price_details.price == price_id
    ]
    return line


async def _subscribe(
    client: stripe.StripeClient, customer: stripe.Customer, *prices: stripe.Price
) -> stripe.Subscription:
    return await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": p.id} for p in prices]}
    )


# ---------------------------------------------------------------------------------- prices
async def test_a_metered_price_renders_its_meter_and_package(client: stripe.StripeClient) -> None:
    meter = await make_meter(client)
    price = await make_metered_price(client, meter, lookup_key="pro_api_overage")
    assert price.recurring is not None
    assert (price.recurring.usage_type, price.recurring.meter) == ("metered", meter.id)
    assert price.transform_quantity is not None
    assert (price.transform_quantity.divide_by, price.transform_quantity.round) == (10_000, "up")
    assert price.billing_scheme == "per_unit"
    found = await client.v1.prices.list_async(params={"lookup_keys": ["pro_api_overage"]})
    assert [p.id for p in found.data] == [price.id]


@pytest.mark.parametrize(
    ("recurring", "extra", "param", "status"),
    [
        ({"usage_type": "metered"}, {}, "recurring[meter]", 400),
        ({"usage_type": "metered", "meter": "mtr_test_nope"}, {}, "recurring[meter]", 404),
        ({"usage_type": "licensed", "meter": "<meter>"}, {}, "recurring[meter]", 400),
        (
            {"usage_type": "metered", "aggregate_usage": "sum"},
            {},
            "recurring[aggregate_usage]",
            400,
        ),
        ({}, {"transform_quantity": {"divide_by": "10"}}, "transform_quantity[round]", 400),
        ({}, {"transform_quantity": {"divide_by": "0", "round": "up"}}, None, 400),
        ({}, {"transform_quantity": {"divide_by": "10", "round": "near"}}, None, 400),
        ({}, {"tiers_mode": "graduated"}, "tiers_mode", 400),
        ({}, {"billing_scheme": "tiered"}, "billing_scheme", 400),
        (
            {},
            {"billing_scheme": "tiered", "transform_quantity": {"divide_by": "2", "round": "up"}},
            "transform_quantity",
            400,
        ),
    ],
)
async def test_metered_price_rules(
    client: stripe.StripeClient,
    emulator: Emulator,
    recurring: dict[str, str],
    extra: dict[str, Any],
    param: str | None,
    status: int,
) -> None:
    meter = await make_meter(client)
    product = await client.v1.products.create_async(params={"name": "Extra"})
    recurring = {k: meter.id if v == "<meter>" else v for k, v in recurring.items()}
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.prices.create_async(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1500,
                "recurring": {"interval": "month", **recurring},  # type: ignore[typeddict-item]
                **extra,
            }
        )
    assert exc.value.http_status == status
    if param is not None:
        assert _error(exc)["param"] == param
    assert emulator.objects("price") == []


async def test_a_deactivated_meter_cannot_be_attached(client: stripe.StripeClient) -> None:
    meter = await make_meter(client)
    await client.v1.billing.meters.deactivate_async(meter.id)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await make_metered_price(client, meter)
    assert "deactivated" in _error(exc)["message"]


async def test_legacy_metered_error_names_the_missing_meter(client: stripe.StripeClient) -> None:
    product = await client.v1.products.create_async(params={"name": "Extra"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.prices.create_async(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1,
                "recurring": {"interval": "month", "usage_type": "metered"},
            }
        )
    error = _error(exc)
    assert error["code"] == "parameter_missing"
    assert error["message"].startswith("Missing required param: recurring[meter].")


# ---------------------------------------------------------------------------------- subscriptions
async def test_a_metered_item_has_no_quantity_and_costs_nothing_up_front(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    _clock, customer, base, metered = await _setup(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.subscriptions.create_async(
            params={
                "customer": customer.id,
                "items": [{"price": base.id}, {"price": metered.id, "quantity": 1}],
            }
        )
    error = _error(exc)
    assert error["message"] == "You cannot set the quantity for metered plans."
    assert error["param"] == "items[1][quantity]"
    assert emulator.objects("subscription") == []

    sub = await _subscribe(client, customer, base, metered)
    assert sub.status == "active"
    metered_item = next(i for i in sub.items.data if i.price.id == metered.id)
    assert metered_item.quantity is None
    assert metered_item.plan.usage_type == "metered"
    assert metered_item.plan.transform_usage is not None
    assert metered_item.plan.transform_usage.divide_by == 10_000
    (first,) = await _invoices(client, sub.id)
    assert (first.amount_due, first.status) == (4900, "paid")
    line = _line_for(first, metered.id)
    assert (line.quantity, line.amount) == (0, 0)


async def test_renewal_bills_the_ended_periods_usage_in_packages(
    client: stripe.StripeClient,
) -> None:
    clock, customer, base, metered = await _setup(client)
    await _use(client, clock, customer, 5, START - 60)  # before the subscription
    sub = await _subscribe(client, customer, base, metered)
    await _use(client, clock, customer, 6_000, START + DAY)
    await _use(client, clock, customer, 4_001, FEB_END - 1)
    await _use(client, clock, customer, 7, FEB_END + 60)  # the next period's
    await _advance(client, clock.id, FEB_END + 3600)

    renewal = (await _invoices(client, sub.id))[0]
    assert renewal.billing_reason == "subscription_cycle"
    usage = _line_for(renewal, metered.id)
    assert (usage.quantity, usage.amount) == (2, 3000)  # 10,001 calls: 2 packages, rounded up
    assert (usage.period.start, usage.period.end) == (START, FEB_END)
    assert usage.description == "2 \u00d7 Pro: Extra API calls (at 15.00 USD per 10000 / month)"
    assert usage.parent is not None
    assert usage.parent.subscription_item_details is not None
    assert usage.parent.subscription_item_details.proration is False
    licensed = _line_for(renewal, base.id)
    assert (licensed.period.start, licensed.period.end) == (FEB_END, MAR_END)
    assert (renewal.total, renewal.status) == (4900 + 3000, "paid")

    await _advance(client, clock.id, MAR_END + 3600)
    quiet = (await _invoices(client, sub.id))[0]
    line = _line_for(quiet, metered.id)
    assert (line.quantity, line.amount) == (1, 1500)  # the 7 calls after Feb 28
    assert (line.period.start, line.period.end) == (FEB_END, MAR_END)


@pytest.mark.parametrize(
    ("price", "calls", "quantity", "amount"),
    [
        ({"divide_by": 10_000, "rounding": "down"}, 19_999, 1, 1500),
        ({"divide_by": None, "amount": 2}, 1234, 1234, 2468),
        ({"divide_by": 10_000}, 0, 0, 0),
    ],
)
async def test_rounding_raw_usage_and_no_usage(
    client: stripe.StripeClient, price: dict[str, Any], calls: int, quantity: int, amount: int
) -> None:
    clock, customer, base, metered = await _setup(client, **price)
    sub = await _subscribe(client, customer, base, metered)
    if calls:
        await _use(client, clock, customer, calls, START + DAY)
    await _advance(client, clock.id, FEB_END + 60)
    line = _line_for((await _invoices(client, sub.id))[0], metered.id)
    assert (line.quantity, line.amount) == (quantity, amount)


async def test_adding_a_metered_item_mid_period_bills_usage_from_then(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock, customer, base, metered = await _setup(client)
    sub = await _subscribe(client, customer, base)
    await _use(client, clock, customer, 50_000, START + DAY)
    added_at = START + 10 * DAY
    await _advance(client, clock.id, added_at)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.subscriptions.update_async(
            sub.id, params={"items": [{"price": metered.id, "quantity": 2}]}
        )
    assert _error(exc)["param"] == "items[0][quantity]"
    updated = await client.v1.subscriptions.update_async(
        sub.id, params={"items": [{"price": metered.id}], "proration_behavior": "none"}
    )
    assert len(updated.items.data) == 2
    assert emulator.objects("invoiceitem") == []  # nothing to prorate
    await _use(client, clock, customer, 12_000, added_at + DAY)
    await _advance(client, clock.id, FEB_END + 60)
    line = _line_for((await _invoices(client, sub.id))[0], metered.id)
    assert (line.quantity, line.amount) == (2, 3000)  # 12,000 calls since it was added
    assert (line.period.start, line.period.end) == (added_at, FEB_END)


async def test_adding_with_prorations_creates_none_for_the_metered_item(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    _clock, customer, base, metered = await _setup(client)
    sub = await _subscribe(client, customer, base)
    await client.v1.subscriptions.update_async(
        sub.id, params={"items": [{"price": metered.id}], "proration_behavior": "always_invoice"}
    )
    assert emulator.objects("invoiceitem") == []
    assert len(await _invoices(client, sub.id)) == 1


async def test_removing_the_metered_item_mid_period_drops_its_usage(
    client: stripe.StripeClient,
) -> None:
    clock, customer, base, metered = await _setup(client)
    sub = await _subscribe(client, customer, base, metered)
    await _use(client, clock, customer, 30_000, START + DAY)
    item = next(i for i in sub.items.data if i.price.id == metered.id)
    await _advance(client, clock.id, START + 5 * DAY)
    updated = await client.v1.subscriptions.update_async(
        sub.id,
        params={"items": [{"id": item.id, "deleted": True}], "proration_behavior": "none"},
    )
    assert [i.price.id for i in updated.items.data] == [base.id]
    await _advance(client, clock.id, FEB_END + 60)
    renewal = (await _invoices(client, sub.id))[0]
    assert [line.pricing.price_details.price for line in renewal.lines.data] == [base.id]  # type: ignore[union-attr]
    assert renewal.total == 4900


async def test_cancel_with_invoice_now_bills_the_usage_so_far(client: stripe.StripeClient) -> None:
    clock, customer, base, metered = await _setup(client)
    sub = await _subscribe(client, customer, base, metered)
    await _use(client, clock, customer, 25_000, START + DAY)
    ended_at = START + 3 * DAY
    await _advance(client, clock.id, ended_at)
    # Within Stripe's 5 minutes of clock drift, stamped after the end: not billed.
    await report_usage(client, customer.id, 1, timestamp=ended_at + 60)
    canceled = await client.v1.subscriptions.cancel_async(sub.id, params={"invoice_now": True})
    assert canceled.status == "canceled"
    final = (await _invoices(client, sub.id))[0]
    assert final.billing_reason == "subscription_update"
    line = _line_for(final, metered.id)
    assert (line.quantity, line.amount) == (3, 4500)
    assert (line.period.start, line.period.end) == (START, ended_at)
    assert (final.total, final.status) == (4500, "paid")


async def test_cancel_without_invoice_now_leaves_the_usage_unbilled(
    client: stripe.StripeClient,
) -> None:
    clock, customer, base, metered = await _setup(client)
    sub = await _subscribe(client, customer, base, metered)
    await _use(client, clock, customer, 25_000, START + DAY)
    await _advance(client, clock.id, START + 3 * DAY)
    await client.v1.subscriptions.cancel_async(sub.id)
    assert len(await _invoices(client, sub.id)) == 1  # only the first one


async def test_cancel_at_period_end_bills_the_last_periods_usage(
    client: stripe.StripeClient,
) -> None:
    clock, customer, base, metered = await _setup(client)
    sub = await _subscribe(client, customer, base, metered)
    await client.v1.subscriptions.update_async(sub.id, params={"cancel_at_period_end": True})
    await _use(client, clock, customer, 10_000, START + DAY)
    await _advance(client, clock.id, FEB_END + DAY)
    ended = await client.v1.subscriptions.retrieve_async(sub.id)
    assert ended.status == "canceled"
    invoices = await _invoices(client, sub.id)
    assert len(invoices) == 2
    final = invoices[0]
    assert [line.pricing.price_details.price for line in final.lines.data] == [metered.id]  # type: ignore[union-attr]
    assert (final.total, final.period_end) == (1500, FEB_END)


async def test_switching_a_metered_price_bills_only_usage_after_the_switch(
    client: stripe.StripeClient,
) -> None:
    clock, customer, base, metered = await _setup(client)
    cheaper = await client.v1.prices.create_async(
        params={
            "product": metered.product,  # type: ignore[typeddict-item]
            "currency": "usd",
            "unit_amount": 1000,
            "recurring": {
                "interval": "month",
                "usage_type": "metered",
                "meter": metered.recurring.meter,  # type: ignore[union-attr]
            },
        }
    )
    sub = await _subscribe(client, customer, base, metered)
    item = next(i for i in sub.items.data if i.price.id == metered.id)
    await _use(client, clock, customer, 40_000, START + DAY)
    switched_at = START + 2 * DAY
    await _advance(client, clock.id, switched_at)
    await client.v1.subscriptions.update_async(
        sub.id, params={"items": [{"id": item.id, "price": cheaper.id}]}
    )
    await _use(client, clock, customer, 3, switched_at + DAY)
    await _advance(client, clock.id, FEB_END + 60)
    line = _line_for((await _invoices(client, sub.id))[0], cheaper.id)
    assert (line.quantity, line.amount) == (3, 3000)
    assert line.period.start == switched_at


# ---------------------------------------------------------------------------------- checkout
async def test_checkout_takes_a_metered_line_without_quantity(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    _clock, _customer, base, metered = await _setup(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "line_items": [
                    {"price": base.id, "quantity": 1},
                    {"price": metered.id, "quantity": 1},
                ],
                "success_url": "https://app.test/ok",
            }
        )
    error = _error(exc)
    assert error["message"] == (
        "Quantity should not be specified where usage_type is `metered`. Remove quantity from "
        "`line_items[1]`"
    )
    assert error["param"] == "line_items[1][quantity]"

    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "line_items": [{"price": base.id, "quantity": 1}, {"price": metered.id}],
            "success_url": "https://app.test/ok",
        }
    )
    assert (session.amount_subtotal, session.amount_total) == (4900, 4900)
    items = await client.v1.checkout.sessions.line_items.list_async(session.id)
    usage_item = next(i for i in items.data if i.price is not None and i.price.id == metered.id)
    assert (usage_item.quantity, usage_item.amount_total) == (None, 0)
    assert session.url is not None
    page = await http.get(session.url)
    assert "Pro: Extra API calls (billed by usage, in arrears)" in page.text
    assert "$15.00 per 10000 units / month" in page.text
    assert "Total: $49.00" in page.text

    await http.post(f"{session.url}/pay", data={"card": "pm_card_visa", "email": "m@example.com"})
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert isinstance(done.subscription, str)
    sub = await client.v1.subscriptions.retrieve_async(done.subscription)
    quantities = {i.price.id: i.quantity for i in sub.items.data}
    assert quantities == {base.id: 1, metered.id: None}
    first = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
    assert first.amount_paid == 4900
    assert as_dict(_line_for(first, metered.id))["quantity"] == 0


async def test_usage_during_a_trial_is_not_billed(client: stripe.StripeClient) -> None:
    clock, customer, base, metered = await _setup(client)
    sub = await client.v1.subscriptions.create_async(
        params={
            "customer": customer.id,
            "items": [{"price": base.id}, {"price": metered.id}],
            "trial_period_days": 7,
        }
    )
    trial_end = START + 7 * DAY
    await _use(client, clock, customer, 90_000, START + DAY)
    await _use(client, clock, customer, 15_000, trial_end + DAY)
    trial_invoice = (await _invoices(client, sub.id))[0]
    assert _line_for(trial_invoice, metered.id).quantity == 0
    period_end = int(datetime(2030, 3, 7, 12, 0, tzinfo=UTC).timestamp())
    await _advance(client, clock.id, period_end + 60)
    line = _line_for((await _invoices(client, sub.id))[0], metered.id)
    assert (line.quantity, line.amount) == (2, 3000)  # 15,000 calls after the trial
    assert (line.period.start, line.period.end) == (trial_end, period_end)
