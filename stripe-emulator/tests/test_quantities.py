"""Quantities on subscription items and Stripe's proration arithmetic, to the second.

Every amount here is worked out by hand: a period of 31 days (March 2030), a change 10 days in
leaves 21/31 of it; each proration line is its whole amount (unit amount * quantity) times that
share, rounded once to the nearest cent.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, make_customer, make_plan
from stripe_emulator import Emulator
from stripe_emulator.periods import prorated

pytestmark = [SDK_HTTPX_WARNING]

START = int(datetime(2030, 3, 1, tzinfo=UTC).timestamp())
END = int(datetime(2030, 4, 1, tzinfo=UTC).timestamp())
DAY = 86400
TEN_DAYS_IN = START + 10 * DAY


def test_prorations_are_exact_and_round_halves_away_from_zero() -> None:
    assert prorated(3600, START, END, TEN_DAYS_IN) == 2439  # 75,600 / 31 = 2,438.71
    assert prorated(6000, START, END, TEN_DAYS_IN) == 4065  # 126,000 / 31 = 4,064.52
    assert prorated(5, 0, 2, 1) == 3  # 2.5: a half goes up (Python's round() would say 2)
    assert prorated(-5, 0, 2, 1) == -3
    assert prorated(3, 0, 4, 1) == 2  # 2.25
    # To the second: one second in leaves one second less than the whole period.
    assert prorated(2_678_400, START, END, START + 1) == 2_678_399
    assert prorated(1000, START, END, START - 5) == 1000  # before the period: all of it
    assert prorated(1000, START, END, END + 5) == 0
    assert prorated(1000, START, START, START) == 0


async def _on_clock(
    client: stripe.StripeClient, *, quantity: int = 3
) -> tuple[str, stripe.Subscription]:
    clock = await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": START})
    customer = await make_customer(client, test_clock=clock.id)
    team = await make_plan(client, amount=1200, name="Team")
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": team.id, "quantity": quantity}]}
    )
    return clock.id, sub


async def _advance(client: stripe.StripeClient, clock_id: str, to: int) -> None:
    await client.v1.test_helpers.test_clocks.advance_async(clock_id, params={"frozen_time": to})


async def test_quantity_multiplies_the_first_invoice(client: stripe.StripeClient) -> None:
    _, sub = await _on_clock(client)
    [item] = sub.items.data
    assert item.quantity == 3
    assert (item.current_period_start, item.current_period_end) == (START, END)
    invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
    [line] = invoice.lines.data
    assert (line.quantity, line.amount, invoice.amount_paid) == (3, 3600, 3600)
    assert line.description == "3 \u00d7 Team (at 12.00 USD / month)"


async def test_a_quantity_change_prorates_both_quantities(client: stripe.StripeClient) -> None:
    clock_id, sub = await _on_clock(client)
    item_id = sub.items.data[0].id
    await _advance(client, clock_id, TEN_DAYS_IN)
    updated = await client.v1.subscriptions.update_async(
        sub.id,
        params={
            "items": [{"id": item_id, "quantity": 5}],
            "proration_behavior": "create_prorations",
        },
    )
    assert updated.items.data[0].quantity == 5
    pending = await client.v1.invoice_items.list_async(params={"pending": True})
    lines = sorted((ii.amount, ii.quantity, ii.proration) for ii in pending.data)
    assert lines == [(-2439, 3, True), (4065, 5, True)]
    for ii in pending.data:
        assert (ii.period.start, ii.period.end) == (TEN_DAYS_IN, END)
    descriptions = sorted(str(ii.description) for ii in pending.data)
    assert descriptions == [
        "Remaining time on 5 \u00d7 Team after 11 Mar 2030",
        "Unused time on 3 \u00d7 Team after 11 Mar 2030",
    ]

    # The renewal bills the prorations and the next period at the new quantity.
    await _advance(client, clock_id, END + 60)
    renewed = await client.v1.subscriptions.retrieve_async(sub.id)
    invoice = await client.v1.invoices.retrieve_async(str(renewed.latest_invoice))
    assert invoice.billing_reason == "subscription_cycle"
    assert sorted(line.amount for line in invoice.lines.data) == [-2439, 4065, 6000]
    assert (invoice.total, invoice.amount_paid) == (7626, 7626)


async def test_always_invoice_bills_the_prorations_now(client: stripe.StripeClient) -> None:
    clock_id, sub = await _on_clock(client)
    await _advance(client, clock_id, TEN_DAYS_IN)
    updated = await client.v1.subscriptions.update_async(
        sub.id,
        params={
            "items": [{"id": sub.items.data[0].id, "quantity": 2}],
            "proration_behavior": "always_invoice",
        },
    )
    invoice = await client.v1.invoices.retrieve_async(str(updated.latest_invoice))
    assert invoice.billing_reason == "subscription_update"
    # Fewer seats: 3,600 * 21/31 credited, 2,400 * 21/31 = 1,625.81 charged.
    assert sorted(line.amount for line in invoice.lines.data) == [-2439, 1626]
    assert invoice.total == -813
    assert (invoice.amount_due, invoice.status) == (0, "paid")
    customer = await client.v1.customers.retrieve_async(str(sub.customer))
    assert customer.balance == -813  # the credit waits for the next invoice
    assert (await client.v1.invoice_items.list_async(params={"pending": True})).data == []


async def test_no_prorations_changes_the_quantity_only(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock_id, sub = await _on_clock(client)
    await _advance(client, clock_id, TEN_DAYS_IN)
    updated = await client.v1.subscriptions.update_async(
        sub.id,
        params={
            "items": [{"id": sub.items.data[0].id, "quantity": 7}],
            "proration_behavior": "none",
        },
    )
    assert updated.items.data[0].quantity == 7
    assert updated.latest_invoice == sub.latest_invoice
    assert emulator.objects("invoiceitem") == []


async def test_a_negative_quantity_is_refused_and_changes_nothing(
    client: stripe.StripeClient,
) -> None:
    _, sub = await _on_clock(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.subscriptions.update_async(
            sub.id, params={"items": [{"id": sub.items.data[0].id, "quantity": -1}]}
        )
    assert refused.value.param == "items[0][quantity]"
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).items.data[0].quantity == 3


async def test_checkout_line_item_quantity_becomes_the_item_quantity(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    team = await make_plan(client, amount=1200, name="Team")
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "line_items": [{"price": team.id, "quantity": 4}],
            "success_url": "https://app.test/ok",
        }
    )
    assert session.url is not None
    await http.post(f"{session.url}/pay", data={"card": "pm_card_visa", "email": "c@example.com"})
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    sub = await client.v1.subscriptions.retrieve_async(str(done.subscription))
    assert sub.items.data[0].quantity == 4
    invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
    assert (invoice.lines.data[0].quantity, invoice.amount_paid) == (4, 4800)
