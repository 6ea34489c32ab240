"""Delayed-notification payment methods: ACH Direct Debit on the hosted Checkout page.

Completing a subscription session with a test bank account gives ``checkout.session.completed``
with ``payment_status: "unpaid"`` (subscription ``incomplete``, first invoice ``open``,
PaymentIntent ``processing``); the debit settles on ``/_emulator/payment_intents/{id}/settle``
or when a test clock passes its settlement date."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, Receiver, make_customer, make_plan
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]

SUCCESS = "https://app.test/billing/done?session_id={CHECKOUT_SESSION_ID}"
DAY = 86_400


async def _session(
    client: stripe.StripeClient, customer: str | None = None, **extra: object
) -> stripe.checkout.Session:
    price = await make_plan(client, amount=2900, name="Team")
    params: dict[str, object] = {
        "mode": "subscription",
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": SUCCESS,
        "client_reference_id": "org_42",
    }
    if customer:
        params["customer"] = customer
    params.update(extra)
    return await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]


async def _pay_by_bank(
    http: httpx.AsyncClient, session: stripe.checkout.Session, account: str
) -> httpx.Response:
    assert session.url is not None
    page = await http.get(session.url)
    assert account in page.text  # offered on the page
    paid = await http.post(f"{session.url}/pay", data={"card": account, "email": "a@b.test"})
    assert paid.status_code == 303
    return paid


async def _state(
    client: stripe.StripeClient, session_id: str
) -> tuple[stripe.checkout.Session, stripe.Subscription, stripe.Invoice, stripe.PaymentIntent]:
    session = await client.v1.checkout.sessions.retrieve_async(
        session_id, params={"expand": ["subscription"]}
    )
    sub = session.subscription
    assert isinstance(sub, stripe.Subscription)
    invoice = await client.v1.invoices.retrieve_async(str(session.invoice))
    [pi] = (await client.v1.payment_intents.list_async()).data
    return session, sub, invoice, pi


def _types(emulator: Emulator) -> list[str]:
    return [e["type"] for e in reversed(emulator.events())]


async def _settle(http: httpx.AsyncClient, pi_id: str, **body: str) -> httpx.Response:
    return await http.post(f"/_emulator/payment_intents/{pi_id}/settle", json=body)


async def test_bank_debit_completes_unpaid_and_then_succeeds(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator, receiver: Receiver
) -> None:
    endpoint = await client.v1.webhook_endpoints.create_async(
        params={"url": "http://receiver.test/webhook", "enabled_events": ["*"]}
    )
    receiver.secret = endpoint.secret
    session = await _session(client)
    assert session.payment_method_types == ["card", "us_bank_account"]
    await _pay_by_bank(http, session, "pm_usBankAccount_success")

    done, sub, invoice, pi = await _state(client, session.id)
    assert (done.status, done.payment_status) == ("complete", "unpaid")
    assert sub.status == "incomplete"
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("open", 0, 2900)
    assert pi.status == "processing"
    pm = await client.v1.payment_methods.retrieve_async(str(sub.default_payment_method))
    assert pm.type == "us_bank_account"
    assert pm.us_bank_account is not None
    assert (pm.us_bank_account.last4, pm.us_bank_account.routing_number) == ("6789", "110000000")
    [charge] = (await client.v1.charges.list_async()).data
    assert (charge.status, charge.paid) == ("pending", False)
    types = _types(emulator)
    assert types[-1] == "checkout.session.completed"
    assert "charge.pending" in types
    assert "payment_intent.processing" in types
    for not_yet in (
        "invoice.paid",
        "payment_intent.succeeded",
        "checkout.session.async_payment_succeeded",
    ):
        assert not_yet not in types
    [completed] = emulator.events("checkout.session.completed")
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    page = await http.get(str(session.url))
    assert "processing" in page.text
    # Still pending: the 23-hour expiry of incomplete subscriptions does not apply meanwhile.

    settled = await _settle(http, pi.id)
    assert settled.status_code == 200
    assert settled.json()["payment_intent"]["status"] == "succeeded"
    done, sub, invoice, pi = await _state(client, session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert sub.status == "active"
    assert (invoice.status, invoice.amount_paid) == ("paid", 2900)
    [charge] = (await client.v1.charges.list_async()).data
    assert (charge.status, charge.paid) == ("succeeded", True)
    after = _types(emulator)[len(types) :]
    assert after == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
        "customer.subscription.updated",
        "checkout.session.async_payment_succeeded",
    ]
    [succeeded] = emulator.events("checkout.session.async_payment_succeeded")
    assert succeeded["data"]["object"]["payment_status"] == "paid"
    assert succeeded["request"] == {"id": None, "idempotency_key": None}  # Stripe's own doing
    await emulator.flush_deliveries()
    assert "checkout.session.async_payment_succeeded" in receiver.types()  # signed, delivered
    # Settled once: a second settle is refused.
    again = await _settle(http, pi.id)
    assert again.status_code == 400


async def test_bank_debit_failure_leaves_the_subscription_incomplete_then_expired(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    session = await _session(client)
    await _pay_by_bank(http, session, "pm_usBankAccount_accountClosed")
    done, sub, invoice, pi = await _state(client, session.id)
    assert (done.payment_status, sub.status, invoice.status, pi.status) == (
        "unpaid",
        "incomplete",
        "open",
        "processing",
    )
    before = len(emulator.events())

    settled = await _settle(http, pi.id)
    assert settled.json()["payment_intent"]["status"] == "requires_payment_method"
    done, sub, invoice, pi = await _state(client, session.id)
    assert (done.status, done.payment_status) == ("complete", "unpaid")
    # Within 23 hours of creation the subscription is still incomplete, its invoice open.
    assert (sub.status, invoice.status) == ("incomplete", "open")
    assert pi.last_payment_error is not None
    assert pi.last_payment_error.code == "account_closed"
    [charge] = (await client.v1.charges.list_async()).data
    assert (charge.status, charge.failure_code) == ("failed", "account_closed")
    after = [e["type"] for e in reversed(emulator.events()[: len(emulator.events()) - before])]
    assert after == [
        "charge.failed",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
        "checkout.session.async_payment_failed",
    ]
    [failed] = emulator.events("checkout.session.async_payment_failed")
    assert failed["data"]["object"]["payment_status"] == "unpaid"
    assert not emulator.events("checkout.session.async_payment_succeeded")


async def test_a_test_clock_settles_the_debit_after_four_days(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    start = int(time.time())
    clock = await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": start})
    customer = await make_customer(client, card=None, test_clock=clock.id)
    session = await _session(client, customer=customer.id)
    await _pay_by_bank(http, session, "pm_usBankAccount_accountClosed")
    [pi] = (await client.v1.payment_intents.list_async()).data

    # A day on: past the 23 hours, but a processing first payment keeps it incomplete.
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": start + DAY}
    )
    _, sub, _, pi = await _state(client, session.id)
    assert (sub.status, pi.status) == ("incomplete", "processing")

    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": start + 5 * DAY}
    )
    done, sub, invoice, pi = await _state(client, session.id)
    [charge] = (await client.v1.charges.list_async()).data
    assert (charge.status, charge.failure_code) == ("failed", "account_closed")
    # The first payment failed after the 23 hours: expired at once, its invoice voided (which
    # cancels the invoice's PaymentIntent).
    assert (sub.status, invoice.status, pi.status) == ("incomplete_expired", "void", "canceled")
    assert done.payment_status == "unpaid"
    [failed] = emulator.events("checkout.session.async_payment_failed")
    assert failed["created"] == start + 4 * DAY  # the clock's time when the bank answered


async def test_bank_debit_is_offered_only_where_stripe_offers_it(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    cards_only = await _session(client, payment_method_types=["card"])
    assert cards_only.url is not None
    page = await http.get(cards_only.url)
    assert "pm_usBankAccount_success" not in page.text
    refused = await http.post(f"{cards_only.url}/pay", data={"card": "pm_usBankAccount_success"})
    assert refused.status_code == 400
    assert "us_bank_account" in refused.text
    assert not emulator.objects("subscription")

    price = await client.v1.prices.create_async(
        params={"currency": "usd", "unit_amount": 900, "product_data": {"name": "Once"}}
    )
    one_off = await client.v1.checkout.sessions.create_async(
        params={"mode": "payment", "line_items": [{"price": price.id}], "success_url": SUCCESS}
    )
    assert one_off.payment_method_types == ["card"]


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
async def test_settle_can_force_the_outcome(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator, outcome: str
) -> None:
    session = await _session(client)
    await _pay_by_bank(http, session, "pm_usBankAccount_success")
    [pi] = (await client.v1.payment_intents.list_async()).data
    assert (await _settle(http, pi.id, outcome="maybe")).status_code == 400
    assert (await _settle(http, "pi_missing")).status_code == 404
    assert (await _settle(http, pi.id, outcome=outcome)).status_code == 200
    done, sub, _, _ = await _state(client, session.id)
    expected = ("paid", "active") if outcome == "succeeded" else ("unpaid", "incomplete")
    assert (done.payment_status, sub.status) == expected
