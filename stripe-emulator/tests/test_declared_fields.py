"""Fields the current SDK declares carry the values Stripe gives them (``test_shapes`` checks
that they are present at all): quantities as decimals, line-item metadata, the Checkout UI mode,
and the features the emulator does not offer (billing schedules, Managed Payments, Sources)
as their empty values."""

from __future__ import annotations

from decimal import Decimal

import stripe

from emulator_helpers import SDK_HTTPX_WARNING, make_customer, make_plan

pytestmark = [SDK_HTTPX_WARNING]


async def test_quantities_are_also_decimals_on_lines_and_invoice_items(
    client: stripe.StripeClient,
) -> None:
    customer = await make_customer(client)
    basic = await make_plan(client, amount=1000, name="Basic")
    pro = await make_plan(client, amount=3000, name="Pro")
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": basic.id, "quantity": 3}]}
    )
    assert (sub.billing_schedules, sub.managed_payments) == ([], None)
    [line] = (await client.v1.invoices.line_items.list_async(str(sub.latest_invoice))).data
    assert (line.quantity, line.quantity_decimal, line.amount) == (3, Decimal(3), 3000)

    await client.v1.subscriptions.update_async(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": pro.id}],
            "proration_behavior": "create_prorations",
        },
    )
    items = (await client.v1.invoice_items.list_async(params={"customer": customer.id})).data
    assert items
    assert {(ii.quantity, ii.quantity_decimal) for ii in items} == {(3, Decimal(3))}


async def test_checkout_line_items_keep_their_metadata(client: stripe.StripeClient) -> None:
    price = await make_plan(client)
    other = await make_plan(client, amount=500, name="Add-on")
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "line_items": [
                {"price": price.id, "quantity": 1, "metadata": {"role": "plan"}},
                {"price": other.id, "quantity": 1},
            ],
            "success_url": "https://app.test/ok",
        }
    )
    assert (session.ui_mode, session.managed_payments) == ("hosted_page", None)
    items = await client.v1.checkout.sessions.line_items.list_async(session.id)
    assert [item.metadata.to_dict() if item.metadata else {} for item in items.data] == [
        {"role": "plan"},
        {},
    ]


async def test_charges_made_with_a_payment_method_have_no_source(
    client: stripe.StripeClient,
) -> None:
    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": 1500,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    assert intent.managed_payments is None
    charge = await client.v1.charges.retrieve_async(str(intent.latest_charge))
    assert "source" in charge
    assert charge.source is None
    assert charge.payment_method is not None
