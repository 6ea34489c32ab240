"""``POST /v1/invoices/create_preview``: what a subscription (or a change to it) bills next,
computed by the billing code itself, with nothing kept.

The arithmetic is the one of ``test_quantities``: March 2030 has 31 days, a change 10 days in
leaves 21/31 of the period.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, Receiver, auth, make_customer, make_plan
from stripe_emulator import Emulator
from test_quantities import DAY, END, START, TEN_DAYS_IN

pytestmark = [SDK_HTTPX_WARNING]

KINDS = (
    "customer", "subscription", "subscription_item", "invoice", "invoiceitem", "invoice_payment",
    "payment_intent", "charge", "event",
)  # fmt: skip


async def _team(
    client: stripe.StripeClient, *, quantity: int = 3, **sub: Any
) -> tuple[str, stripe.Subscription]:
    """A subscription to 3 Team seats ($12 each a month) on a clock at 1 March 2030, moved
    10 days in."""
    clock = await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": START})
    customer = await make_customer(client, test_clock=clock.id)
    team = await make_plan(client, amount=1200, name="Team")
    created = await client.v1.subscriptions.create_async(
        params={
            "customer": customer.id,
            "items": [{"price": team.id, "quantity": quantity}],
            **sub,
        }
    )
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": TEN_DAYS_IN}
    )
    return clock.id, created


def _state(emulator: Emulator) -> dict[str, list[dict[str, Any]]]:
    return {kind: emulator.objects(kind) for kind in KINDS}


def _lines(invoice: stripe.Invoice) -> list[tuple[int, int | None, bool]]:
    return sorted(
        (
            line.amount,
            line.quantity,
            bool(
                line.parent.subscription_item_details.proration
                if line.parent.subscription_item_details
                else line.parent.invoice_item_details and line.parent.invoice_item_details.proration
            ),
        )
        for line in invoice.lines.data
    )


async def test_create_preview_is_not_read_as_an_invoice_id(http: httpx.AsyncClient) -> None:
    # The route of one invoice (`POST /v1/invoices/{id}`) once answered this path with
    # "No such invoice: 'create_preview'".
    answer = await http.post("/v1/invoices/create_preview", headers=auth(), data={})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("parameter_missing", "subscription")


async def test_a_seat_change_preview_bills_what_the_change_will(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    clock_id, sub = await _team(client)
    item_id = sub.items.data[0].id
    before = _state(emulator)
    delivered = receiver.hits
    preview = await client.v1.invoices.create_preview_async(
        params={
            "customer": str(sub.customer),
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": item_id, "quantity": 5}],
                "proration_behavior": "create_prorations",
                "proration_date": TEN_DAYS_IN,
            },
        }
    )
    # The renewal on 1 April: 3 seats' unused 21/31 credited, 5 seats' charged, and the next
    # period of 5 seats.
    assert preview.id.startswith("upcoming_in_")
    assert (preview.status, preview.number, preview.hosted_invoice_url) == ("draft", None, None)
    assert preview.created == END
    assert (preview.period_start, preview.period_end) == (START, END)
    assert _lines(preview) == [(-2439, 3, True), (4065, 5, True), (6000, 5, False)]
    assert (preview.subtotal, preview.total, preview.amount_due) == (7626, 7626, 7626)
    next_period = next(line for line in preview.lines.data if line.amount == 6000)
    assert (next_period.period.start, next_period.period.end) == (END, END + 30 * DAY)
    # Nothing was kept: no object, no event, no webhook; the id names no invoice.
    assert _state(emulator) == before
    assert receiver.hits == delivered
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.invoices.retrieve_async(preview.id)
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).items.data[0].quantity == 3

    # Made for real at the previewed moment, the change bills exactly that.
    await client.v1.subscriptions.update_async(
        sub.id,
        params={
            "items": [{"id": item_id, "quantity": 5}],
            "proration_behavior": "create_prorations",
            "proration_date": TEN_DAYS_IN,
        },
    )
    await client.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": END + 60}
    )
    renewed = await client.v1.subscriptions.retrieve_async(sub.id)
    invoice = await client.v1.invoices.retrieve_async(str(renewed.latest_invoice))
    assert _lines(invoice) == _lines(preview)
    assert invoice.total == preview.total


async def test_always_invoice_previews_the_invoice_issued_now(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    _, sub = await _team(client)
    item_id = sub.items.data[0].id
    before = _state(emulator)
    preview = await client.v1.invoices.create_preview_async(
        params={
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": item_id, "quantity": 5}],
                "proration_behavior": "always_invoice",
            },
        }
    )
    assert (preview.created, preview.billing_reason) == (TEN_DAYS_IN, "upcoming")
    assert _lines(preview) == [(-2439, 3, True), (4065, 5, True)]
    assert preview.amount_due == 1626
    assert _state(emulator) == before

    updated = await client.v1.subscriptions.update_async(
        sub.id,
        params={"items": [{"id": item_id, "quantity": 5}], "proration_behavior": "always_invoice"},
    )
    invoice = await client.v1.invoices.retrieve_async(str(updated.latest_invoice))
    assert (_lines(invoice), invoice.amount_paid) == (_lines(preview), 1626)


async def test_a_price_swap_preview(client: stripe.StripeClient) -> None:
    _, sub = await _team(client, quantity=1)
    business = await make_plan(client, amount=4900, name="Business")
    preview = await client.v1.invoices.create_preview_async(
        params={
            "subscription": sub.id,
            "subscription_details": {"items": [{"id": sub.items.data[0].id, "price": business.id}]},
        }
    )
    # 1,200 * 21/31 = 812.90 credited; 4,900 * 21/31 = 3,319.35 charged; then 4,900.
    assert _lines(preview) == [(-813, 1, True), (3319, 1, True), (4900, 1, False)]
    assert preview.total == 7406


async def test_adding_and_removing_items_in_a_preview(client: stripe.StripeClient) -> None:
    _, sub = await _team(client, quantity=2)
    pack = await make_plan(client, amount=900, name="Extra bandwidth")
    added = await client.v1.invoices.create_preview_async(
        params={
            "subscription": sub.id,
            "subscription_details": {"items": [{"price": pack.id, "quantity": 2}]},
        }
    )
    # Two packs from now on: 1,800 * 21/31 = 1,219.35; then 2 seats and 2 packs.
    assert _lines(added) == [(1219, 2, True), (1800, 2, False), (2400, 2, False)]
    removed = await client.v1.invoices.create_preview_async(
        params={
            "subscription": sub.id,
            "subscription_details": {
                "items": [
                    {"id": sub.items.data[0].id, "deleted": True},
                    {"price": pack.id, "quantity": 1},
                ]
            },
        }
    )
    assert _lines(removed) == [(-1626, 2, True), (610, 1, True), (900, 1, False)]


async def test_an_interval_change_preview_is_billed_at_once(client: stripe.StripeClient) -> None:
    _, sub = await _team(client, quantity=1)
    yearly = await make_plan(client, amount=12000, interval="year", name="Team yearly")
    preview = await client.v1.invoices.create_preview_async(
        params={
            "subscription": sub.id,
            "subscription_details": {"items": [{"id": sub.items.data[0].id, "price": yearly.id}]},
        }
    )
    assert preview.created == TEN_DAYS_IN
    assert _lines(preview) == [(-813, 1, True), (12000, 1, False)]
    assert preview.amount_due == 11187


async def test_the_upcoming_renewal_without_a_change(client: stripe.StripeClient) -> None:
    _, sub = await _team(client)
    preview = await client.v1.invoices.create_preview_async(params={"subscription": sub.id})
    assert (preview.created, preview.billing_reason) == (END, "upcoming")
    assert _lines(preview) == [(3600, 3, False)]


async def test_a_trial_previews_its_first_paid_invoice(client: stripe.StripeClient) -> None:
    _, sub = await _team(client, trial_period_days=14)
    preview = await client.v1.invoices.create_preview_async(params={"subscription": sub.id})
    assert preview.created == START + 14 * DAY
    assert _lines(preview) == [(3600, 3, False)]


async def test_nothing_upcoming_for_an_ended_subscription(client: stripe.StripeClient) -> None:
    _, sub = await _team(client)
    await client.v1.subscriptions.cancel_async(sub.id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.invoices.create_preview_async(params={"subscription": sub.id})
    assert (refused.value.http_status, refused.value.code) == (404, "invoice_upcoming_none")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"invoice_items": [{"amount": 100, "currency": "usd"}]}, "invoice_items"),
        ({"subscription_details": {"cancel_now": True}}, "subscription_details[cancel_now]"),
        ({"preview_mode": "recurring"}, "preview_mode"),
    ],
)
async def test_unsupported_parameters_are_refused(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    _, sub = await _team(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.invoices.create_preview_async(
            params={"subscription": sub.id, **params}  # type: ignore[typeddict-item]
        )
    assert refused.value.param == param
    assert "not supported by the emulator" in str(refused.value.user_message)


async def test_a_new_subscription_preview_is_refused(client: stripe.StripeClient) -> None:
    customer = await make_customer(client)
    team = await make_plan(client, amount=1200, name="Team")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.invoices.create_preview_async(
            params={
                "customer": customer.id,
                "subscription_details": {"items": [{"price": team.id}]},
            }
        )
    assert refused.value.param == "subscription_details[items]"


async def test_another_customers_subscription_is_refused(client: stripe.StripeClient) -> None:
    _, sub = await _team(client)
    other = await make_customer(client, email="other@example.com")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.invoices.create_preview_async(
            params={"customer": other.id, "subscription": sub.id}
        )
    assert refused.value.param == "subscription"


async def test_a_preview_takes_the_subscriptions_discount_and_one_it_is_given(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    tenth = await client.v1.coupons.create_async(params={"percent_off": 10, "duration": "forever"})
    _, sub = await _team(client, discounts=[{"coupon": tenth.id}])
    off = await client.v1.coupons.create_async(
        params={"amount_off": 1000, "currency": "usd", "duration": "once"}
    )
    before = _state(emulator)
    # The renewal: 3 x 1,200 = 3,600 less 10 % = 3,240.
    renewal = await client.v1.invoices.create_preview_async(params={"subscription": sub.id})
    assert (renewal.subtotal, renewal.total) == (3600, 3240)
    assert [d.amount for d in renewal.total_discount_amounts or []] == [360]
    # A preview given other discounts bills with those instead (as the update would): 3,600
    # less 1,000 off once.
    other = await client.v1.invoices.create_preview_async(
        params={"subscription": sub.id, "discounts": [{"coupon": off.id}]}
    )
    assert (other.subtotal, other.total) == (3600, 2600)
    after = _state(emulator)
    assert after == before  # nothing kept: not the discount, not an event
    stored = await client.v1.subscriptions.retrieve_async(sub.id)
    assert len(stored.discounts) == 1
