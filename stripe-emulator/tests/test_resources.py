"""Each resource's lifecycle through the real SDK, with the events Stripe would emit."""

from __future__ import annotations

import re

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, make_customer, make_plan
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]


async def test_customer_lifecycle(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer = await client.v1.customers.create_async(
        params={"email": "org@example.com", "name": "Org", "metadata": {"org": "o1", "tier": "x"}}
    )
    assert customer.id.startswith("cus_")
    assert customer.invoice_settings.default_payment_method is None
    updated = await client.v1.customers.update_async(
        customer.id, params={"name": "Org Inc", "metadata": {"tier": ""}}
    )
    assert updated.name == "Org Inc"
    assert updated.metadata.to_dict() == {"org": "o1"}
    listed = await client.v1.customers.list_async(params={"email": "org@example.com"})
    assert [c.id for c in listed.data] == [customer.id]

    deleted = await client.v1.customers.delete_async(customer.id)
    assert deleted.deleted is True
    stub = await client.v1.customers.retrieve_async(customer.id)
    assert stub.to_dict()["deleted"] is True
    assert (await client.v1.customers.list_async()).data == []

    update_event = emulator.events("customer.updated")[0]
    assert update_event["data"]["previous_attributes"] == {
        "name": "Org",
        "metadata": {"tier": "x"},
    }
    assert [e["type"] for e in reversed(emulator.events())] == [
        "customer.created",
        "customer.updated",
        "customer.deleted",
    ]


async def test_default_payment_method_must_belong_to_the_customer(
    client: stripe.StripeClient,
) -> None:
    customer = await make_customer(client)
    pm_id = customer.invoice_settings.default_payment_method
    assert isinstance(pm_id, str)
    assert pm_id.startswith("pm_")
    pm = await client.v1.payment_methods.retrieve_async(pm_id)
    assert (pm.customer, pm.card.last4 if pm.card else None) == (customer.id, "4242")

    other = await make_customer(client, card=None)
    with pytest.raises(stripe.InvalidRequestError) as foreign:
        await client.v1.customers.update_async(
            other.id, params={"invoice_settings": {"default_payment_method": pm_id}}
        )
    assert foreign.value.param == "invoice_settings[default_payment_method]"

    with pytest.raises(stripe.CardError) as declined:
        await client.v1.payment_methods.attach_async(
            "pm_card_chargeDeclined", params={"customer": other.id}
        )
    assert declined.value.error is not None
    assert declined.value.error.decline_code == "generic_decline"

    attached = await client.v1.payment_methods.attach_async(
        "pm_card_chargeCustomerFail", params={"customer": other.id}
    )
    listed = await client.v1.customers.payment_methods.list_async(other.id)
    assert [p.id for p in listed.data] == [attached.id]
    detached = await client.v1.payment_methods.detach_async(attached.id)
    assert detached.customer is None


async def test_products_and_prices_with_lookup_keys(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    product = await client.v1.products.create_async(
        params={"id": "plan_pro", "name": "Pro", "metadata": {"plan": "pro"}}
    )
    assert product.id == "plan_pro"
    monthly = await client.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 2000,
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
        }
    )
    assert (monthly.type, monthly.recurring.interval if monthly.recurring else None) == (
        "recurring",
        "month",
    )
    with pytest.raises(stripe.InvalidRequestError) as taken:
        await client.v1.prices.create_async(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 2500,
                "recurring": {"interval": "month"},
                "lookup_key": "pro_monthly",
            }
        )
    assert "already uses that lookup key" in str(taken.value.user_message)
    repriced = await client.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 2500,
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
        }
    )
    found = await client.v1.prices.list_async(params={"lookup_keys": ["pro_monthly"]})
    assert [p.id for p in found.data] == [repriced.id]
    assert (await client.v1.prices.retrieve_async(monthly.id)).lookup_key is None
    assert emulator.events("price.updated")[0]["data"]["previous_attributes"] == {
        "lookup_key": "pro_monthly"
    }

    yearly = await client.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 20000,
            "recurring": {"interval": "year"},
        }
    )
    by_interval = await client.v1.prices.list_async(params={"recurring": {"interval": "year"}})
    assert [p.id for p in by_interval.data] == [yearly.id]
    archived = await client.v1.prices.update_async(monthly.id, params={"active": False})
    assert archived.active is False
    active = await client.v1.prices.list_async(params={"active": True, "product": product.id})
    assert {p.id for p in active.data} == {repriced.id, yearly.id}

    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.products.delete_async(product.id)
    bare = await client.v1.products.create_async(params={"name": "Temp"})
    assert (await client.v1.products.delete_async(bare.id)).deleted is True
    renamed = await client.v1.products.update_async(product.id, params={"name": "Pro 2"})
    assert renamed.name == "Pro 2"


async def test_payment_intent_lifecycle_and_declines(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    intent = await client.v1.payment_intents.create_async(
        params={"amount": 4200, "currency": "usd", "customer": customer.id, "metadata": {"o": "1"}}
    )
    assert intent.status == "requires_payment_method"
    assert intent.client_secret
    assert intent.client_secret.startswith(intent.id)

    with pytest.raises(stripe.CardError) as declined:
        await client.v1.payment_intents.confirm_async(
            intent.id, params={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
        )
    assert declined.value.http_status == 402
    assert declined.value.error is not None
    assert declined.value.error.decline_code == "insufficient_funds"
    assert declined.value.error.payment_intent is not None
    after_decline = await client.v1.payment_intents.retrieve_async(intent.id)
    assert after_decline.status == "requires_payment_method"
    assert after_decline.last_payment_error is not None
    assert after_decline.last_payment_error.decline_code == "insufficient_funds"

    paid = await client.v1.payment_intents.confirm_async(
        intent.id, params={"payment_method": "pm_card_visa"}
    )
    assert (paid.status, paid.amount_received) == ("succeeded", 4200)
    charge = await client.v1.charges.retrieve_async(str(paid.latest_charge))
    assert (charge.paid, charge.amount, charge.payment_intent) == (True, 4200, intent.id)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.cancel_async(intent.id)

    abandoned = await client.v1.payment_intents.create_async(
        params={"amount": 100, "currency": "usd"}
    )
    canceled = await client.v1.payment_intents.cancel_async(
        abandoned.id, params={"cancellation_reason": "abandoned"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert [e["type"] for e in reversed(emulator.events()) if "payment_intent" in e["type"]] == [
        "payment_intent.created",
        "payment_intent.payment_failed",
        "payment_intent.succeeded",
        "payment_intent.created",
        "payment_intent.canceled",
    ]
    with pytest.raises(stripe.InvalidRequestError) as small:
        await client.v1.payment_intents.create_async(params={"amount": 10, "currency": "usd"})
    assert small.value.code == "amount_too_small"


async def test_refunds_full_partial_and_never_above_the_amount(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    partial = await client.v1.refunds.create_async(
        params={"payment_intent": intent.id, "amount": 1500, "reason": "requested_by_customer"}
    )
    assert (partial.amount, partial.status, partial.charge) == (
        1500,
        "succeeded",
        intent.latest_charge,
    )
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 4000})
    assert too_much.value.code == "amount_too_large"
    rest = await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert rest.amount == 3500
    charge = await client.v1.charges.retrieve_async(str(intent.latest_charge))
    assert (charge.amount_refunded, charge.refunded) == (5000, True)
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert again.value.code == "charge_already_refunded"
    listed = await client.v1.refunds.list_async(params={"payment_intent": intent.id})
    assert [r.id for r in listed.data] == [rest.id, partial.id]
    refunded_events = emulator.events("charge.refunded")
    assert refunded_events[-1]["data"]["previous_attributes"]["amount_refunded"] == 0
    assert refunded_events[0]["data"]["object"]["amount_refunded"] == 5000


async def test_subscription_create_cancel_at_period_end_and_undo(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    price = await make_plan(client)
    customer = await make_customer(client)
    sub = await client.v1.subscriptions.create_async(
        params={
            "customer": customer.id,
            "items": [{"price": price.id, "quantity": 2}],
            "metadata": {"org": "o1"},
            "expand": ["latest_invoice"],
        }
    )
    assert sub.status == "active"
    item = sub.items.data[0]
    assert item.quantity == 2
    assert item.current_period_end > item.current_period_start
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == (
        "paid",
        4000,
        "subscription_create",
    )
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.hosted_invoice_url
    assert invoice.invoice_pdf

    scheduled = await client.v1.subscriptions.update_async(
        sub.id, params={"cancel_at_period_end": True}
    )
    assert scheduled.cancel_at == item.current_period_end
    assert scheduled.status == "active"
    resumed = await client.v1.subscriptions.update_async(
        sub.id, params={"cancel_at_period_end": False}
    )
    assert (resumed.cancel_at_period_end, resumed.cancel_at) == (False, None)

    canceled = await client.v1.subscriptions.cancel_async(
        sub.id, params={"cancellation_details": {"comment": "too pricey"}}
    )
    assert canceled.status == "canceled"
    assert canceled.cancellation_details is not None
    assert canceled.cancellation_details.comment == "too pricey"
    assert (await client.v1.subscriptions.list_async()).data == []
    with pytest.raises(stripe.InvalidRequestError) as twice:
        await client.v1.subscriptions.cancel_async(sub.id)
    assert (twice.value.http_status, twice.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as frozen:
        await client.v1.subscriptions.update_async(sub.id, params={"cancel_at_period_end": True})
    assert "can only update its cancellation_details and metadata" in str(frozen.value)
    everything = await client.v1.subscriptions.list_async(params={"status": "all"})
    assert [s.id for s in everything.data] == [sub.id]
    types = [e["type"] for e in reversed(emulator.events()) if e["type"].startswith("customer.sub")]
    assert types == [
        "customer.subscription.created",
        "customer.subscription.updated",  # incomplete -> active when the first invoice is paid
        "customer.subscription.updated",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    activation = emulator.events("customer.subscription.updated")[-1]
    assert activation["data"]["previous_attributes"]["status"] == "incomplete"


async def test_price_swap_with_prorations(client: stripe.StripeClient, emulator: Emulator) -> None:
    basic = await make_plan(client, amount=1000, name="Basic")
    pro = await make_plan(client, amount=3000, name="Pro")
    customer = await make_customer(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": basic.id}]}
    )
    item_id = sub.items.data[0].id
    swapped = await client.v1.subscriptions.update_async(
        sub.id,
        params={
            "items": [{"id": item_id, "price": pro.id}],
            "proration_behavior": "create_prorations",
        },
    )
    assert swapped.items.data[0].id == item_id
    assert swapped.items.data[0].price.id == pro.id
    pending = await client.v1.invoice_items.list_async(params={"pending": True})
    amounts = sorted(ii.amount for ii in pending.data)
    assert len(amounts) == 2
    assert amounts[0] < 0 < amounts[1]  # credit for basic, charge for pro
    assert -amounts[0] <= 1000
    assert amounts[1] <= 3000

    billed = await client.v1.subscriptions.update_async(
        sub.id,
        params={
            "items": [{"id": item_id, "price": basic.id}],
            "proration_behavior": "always_invoice",
        },
    )
    invoice = await client.v1.invoices.retrieve_async(str(billed.latest_invoice))
    assert invoice.billing_reason == "subscription_update"
    assert len(invoice.lines.data) == 4  # both earlier prorations and both new ones
    assert (await client.v1.invoice_items.list_async(params={"pending": True})).data == []

    quiet = await client.v1.subscriptions.update_async(
        sub.id, params={"items": [{"id": item_id, "price": pro.id}], "proration_behavior": "none"}
    )
    assert quiet.latest_invoice == billed.latest_invoice
    assert (await client.v1.invoice_items.list_async(params={"pending": True})).data == []


async def test_interval_change_resets_the_cycle_and_bills_now(client: stripe.StripeClient) -> None:
    monthly = await make_plan(client, amount=1000, interval="month")
    yearly = await make_plan(client, amount=10000, interval="year")
    customer = await make_customer(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": monthly.id}]}
    )
    changed = await client.v1.subscriptions.update_async(
        sub.id, params={"items": [{"id": sub.items.data[0].id, "price": yearly.id}]}
    )
    item = changed.items.data[0]
    assert item.current_period_end - item.current_period_start >= 365 * 86400
    invoice = await client.v1.invoices.retrieve_async(str(changed.latest_invoice))
    assert invoice.status == "paid"
    assert 9000 <= invoice.amount_paid <= 10000  # a year, less the unused month


async def test_trial_and_incomplete_subscriptions(client: stripe.StripeClient) -> None:
    price = await make_plan(client)
    with_card = await make_customer(client)
    trial = await client.v1.subscriptions.create_async(
        params={"customer": with_card.id, "items": [{"price": price.id}], "trial_period_days": 14}
    )
    assert trial.status == "trialing"
    assert trial.trial_end is not None
    assert trial.trial_start is not None
    assert trial.trial_end - trial.trial_start == 14 * 86400
    first = await client.v1.invoices.retrieve_async(str(trial.latest_invoice))
    assert (first.status, first.amount_due) == ("paid", 0)

    no_card = await make_customer(client, card=None, email="nocard@example.com")
    pending = await client.v1.subscriptions.create_async(
        params={
            "customer": no_card.id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
            "expand": ["latest_invoice.confirmation_secret", "latest_invoice.payments"],
        }
    )
    assert pending.status == "incomplete"
    assert isinstance(pending.latest_invoice, stripe.Invoice)
    assert pending.latest_invoice.status == "open"
    secret = pending.latest_invoice.confirmation_secret
    assert secret is not None
    assert (secret.type, secret.client_secret.split("_secret_")[0][:3]) == ("payment_intent", "pi_")
    assert pending.latest_invoice.payments is not None
    assert pending.latest_invoice.payments.data[0].status == "open"
    paid = await client.v1.invoices.pay_async(
        pending.latest_invoice.id, params={"payment_method": "pm_card_visa"}
    )
    assert paid.status == "paid"
    assert (await client.v1.subscriptions.retrieve_async(pending.id)).status == "active"

    failing = await make_customer(client, card="pm_card_chargeCustomerFail", email="f@example.com")
    with pytest.raises(stripe.CardError):
        await client.v1.subscriptions.create_async(
            params={
                "customer": failing.id,
                "items": [{"price": price.id}],
                "payment_behavior": "error_if_incomplete",
            }
        )
    assert (await client.v1.subscriptions.list_async(params={"customer": failing.id})).data == []
    incomplete = await client.v1.subscriptions.create_async(
        params={"customer": failing.id, "items": [{"price": price.id}]}
    )
    assert incomplete.status == "incomplete"


async def test_invoices_lists_payments_and_hosted_links(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    price = await make_plan(client)
    customer = await make_customer(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    invoices = await client.v1.invoices.list_async(params={"subscription": sub.id})
    assert [i.id for i in invoices.data] == [sub.latest_invoice]
    invoice = invoices.data[0]
    assert invoice.number
    assert invoice.number.endswith("-0001")
    lines = await client.v1.invoices.line_items.list_async(invoice.id)
    assert lines.data[0].amount == 2000
    payments = await client.v1.invoice_payments.list_async(params={"invoice": invoice.id})
    assert payments.data[0].status == "paid"
    assert payments.data[0].payment.type == "payment_intent"

    assert invoice.hosted_invoice_url is not None
    assert invoice.invoice_pdf is not None
    page = await http.get(invoice.hosted_invoice_url)
    assert page.status_code == 200
    assert "paid" in page.text
    pdf = await http.get(invoice.invoice_pdf)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.invoices.pay_async(invoice.id)


async def test_billing_portal_session_and_page(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    price = await make_plan(client)
    customer = await make_customer(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    session = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id, "return_url": "https://app.test/account"}
    )
    assert session.id.startswith("bps_")
    page = await http.get(session.url)
    assert page.status_code == 200
    assert "Pro" in page.text
    assert "Cancel plan" in page.text

    canceled = await http.post(
        f"{session.url}/cancel", data={"subscription": sub.id}, follow_redirects=True
    )
    assert canceled.status_code == 200
    assert "Don&#x27;t cancel" in canceled.text or "Don't cancel" in canceled.text
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).cancel_at_period_end is True

    refused = await http.post(
        f"{session.url}/payment_method", data={"card": "pm_card_chargeDeclined"}
    )
    assert refused.status_code == 402
    assert "role='alert'" in refused.text
    # Re-rendered at …/{id}/payment_method: its forms still reach …/{id}/<action>.
    actions = re.findall(r"<form method='post' action='([^']+)'", refused.text)
    assert [str(refused.url.join(a)) for a in actions] == [
        f"{session.url}/renew",
        f"{session.url}/payment_method",
    ]

    changed = await http.post(
        f"{session.url}/payment_method", data={"card": "pm_card_chargeCustomerFail"}
    )
    assert changed.status_code == 303
    refreshed = await client.v1.customers.retrieve_async(customer.id)
    new_pm = refreshed.invoice_settings.default_payment_method
    assert new_pm is not None
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).default_payment_method == new_pm
    assert emulator.events("customer.subscription.updated")[0]["data"]["previous_attributes"] == {
        "default_payment_method": None
    }


async def test_events_and_webhook_endpoints(client: stripe.StripeClient) -> None:
    endpoint = await client.v1.webhook_endpoints.create_async(
        params={
            "url": "https://engine.test/webhooks/stripe",
            "enabled_events": ["customer.created"],
        }
    )
    assert endpoint.secret
    assert endpoint.secret.startswith("whsec_")
    fetched = await client.v1.webhook_endpoints.retrieve_async(endpoint.id)
    assert "secret" not in fetched
    disabled = await client.v1.webhook_endpoints.update_async(
        endpoint.id, params={"disabled": True}
    )
    assert disabled.status == "disabled"

    customer = await client.v1.customers.create_async(params={"email": "e@example.com"})
    await client.v1.customers.update_async(customer.id, params={"name": "E"})
    events = await client.v1.events.list_async(params={"type": "customer.*"})
    assert [e.type for e in events.data] == ["customer.updated", "customer.created"]
    created = events.data[1]
    assert created.data.object["id"] == customer.id
    assert created.api_version == "2026-10-28.endive"
    assert created.request is not None
    assert created.request.idempotency_key
    typed = await client.v1.events.list_async(params={"types": ["customer.created"]})
    assert [e.id for e in typed.data] == [created.id]
    since = await client.v1.events.list_async(params={"created": {"gte": created.created}})
    assert len(since.data) == 2
    single = await client.v1.events.retrieve_async(created.id)
    assert single.type == "customer.created"
    removed = await client.v1.webhook_endpoints.delete_async(endpoint.id)
    assert removed.deleted is True
