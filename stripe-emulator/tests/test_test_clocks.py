"""Test clocks: renewals, trials, scheduled cancellation and dunning, with Stripe's events."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, make_customer, make_plan
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]

START = int(datetime(2030, 1, 31, 12, 0, tzinfo=UTC).timestamp())
DAY = 86400


async def _clock_customer(
    client: stripe.StripeClient, card: str = "pm_card_visa"
) -> tuple[stripe.test_helpers.TestClock, stripe.Customer]:
    clock = await client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": START, "name": "billing"}
    )
    customer = await make_customer(client, card=card, test_clock=clock.id)
    return clock, customer


async def _advance(client: stripe.StripeClient, clock_id: str, to: int) -> None:
    answer = await client.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": to}
    )
    assert answer.status == "advancing"  # as on Stripe; poll until ready
    ready = await client.v1.test_helpers.test_clocks.retrieve_async(clock_id)
    assert (ready.status, ready.frozen_time) == ("ready", to)


def _types(emulator: Emulator, prefix: str = "") -> list[str]:
    return [e["type"] for e in reversed(emulator.events()) if e["type"].startswith(prefix)]


async def test_clock_customers_live_at_the_clock_time(client: stripe.StripeClient) -> None:
    clock, customer = await _clock_customer(client)
    assert customer.created == START
    assert customer.test_clock == clock.id
    # Like Stripe, clock customers only show up in lists filtered by their clock.
    assert (await client.v1.customers.list_async()).data == []
    on_clock = await client.v1.customers.list_async(params={"test_clock": clock.id})
    assert [c.id for c in on_clock.data] == [customer.id]
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.test_helpers.test_clocks.advance_async(
            clock.id, params={"frozen_time": START - 1}
        )


async def test_renewal_bills_the_next_period(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock, customer = await _clock_customer(client)
    price = await make_plan(client, amount=1500)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    first = sub.items.data[0]
    assert (first.current_period_start, sub.start_date) == (START, START)
    # Anchored on Jan 31: the next period ends on the last day of February.
    feb_end = int(datetime(2030, 2, 28, 12, 0, tzinfo=UTC).timestamp())
    assert first.current_period_end == feb_end

    await _advance(client, clock.id, feb_end + DAY)
    renewed = await client.v1.subscriptions.retrieve_async(sub.id)
    item = renewed.items.data[0]
    assert (item.current_period_start, item.current_period_end) == (
        feb_end,
        int(datetime(2030, 3, 31, 12, 0, tzinfo=UTC).timestamp()),
    )
    assert renewed.status == "active"
    invoices = await client.v1.invoices.list_async(params={"subscription": sub.id})
    latest = invoices.data[0]
    assert latest.id == renewed.latest_invoice
    assert (latest.billing_reason, latest.status, latest.amount_paid) == (
        "subscription_cycle",
        "paid",
        1500,
    )
    assert (latest.period_start, latest.period_end) == (START, feb_end)
    assert latest.lines.data[0].period.start == feb_end
    assert latest.created == feb_end  # made at the clock's time, not the wall clock's
    paid_events = emulator.events("invoice.paid")
    assert paid_events[0]["created"] == feb_end
    assert _types(emulator, "test_helpers") == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
    ]


async def test_trial_ends_into_a_paid_period(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock, customer = await _clock_customer(client)
    price = await make_plan(client, amount=900)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 14}
    )
    assert sub.status == "trialing"
    await _advance(client, clock.id, START + 12 * DAY)
    assert emulator.events("customer.subscription.trial_will_end")
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "trialing"

    await _advance(client, clock.id, START + 15 * DAY)
    active = await client.v1.subscriptions.retrieve_async(sub.id)
    assert active.status == "active"
    assert active.items.data[0].current_period_start == START + 14 * DAY
    invoice = await client.v1.invoices.retrieve_async(str(active.latest_invoice))
    assert (invoice.amount_paid, invoice.status) == (900, "paid")
    update = emulator.events("customer.subscription.updated")[-1]
    assert update["data"]["previous_attributes"]["status"] == "trialing"


async def test_cancel_at_period_end_takes_effect(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock, customer = await _clock_customer(client)
    price = await make_plan(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    await client.v1.subscriptions.update_async(sub.id, params={"cancel_at_period_end": True})
    await _advance(client, clock.id, START + 40 * DAY)
    ended = await client.v1.subscriptions.retrieve_async(sub.id)
    assert ended.status == "canceled"
    assert ended.ended_at == sub.items.data[0].current_period_end
    assert ended.canceled_at == START  # when it was requested, as Stripe reports it
    assert len((await client.v1.invoices.list_async(params={"subscription": sub.id})).data) == 1
    deleted = emulator.events("customer.subscription.deleted")
    assert deleted[0]["data"]["object"]["cancellation_details"]["reason"] == (
        "cancellation_requested"
    )


async def test_dunning_walks_past_due_to_canceled(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock, customer = await _clock_customer(client)
    price = await make_plan(client, amount=5000)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    pm = str(customer.invoice_settings.default_payment_method)
    emulator.set_card_decline(pm, "insufficient_funds")  # the card starts failing
    period_end = sub.items.data[0].current_period_end

    await _advance(client, clock.id, period_end + 60)
    past_due = await client.v1.subscriptions.retrieve_async(sub.id)
    assert past_due.status == "past_due"
    invoice = await client.v1.invoices.retrieve_async(str(past_due.latest_invoice))
    assert (invoice.status, invoice.attempt_count) == ("open", 1)
    assert invoice.next_payment_attempt == period_end + 3 * DAY
    failed = emulator.events("invoice.payment_failed")[0]["data"]["object"]
    assert failed["next_payment_attempt"] == period_end + 3 * DAY
    charge = emulator.events("charge.failed")[0]["data"]["object"]
    assert charge["outcome"]["reason"] == "insufficient_funds"

    await _advance(client, clock.id, period_end + 4 * DAY)
    retried = await client.v1.invoices.retrieve_async(invoice.id)
    assert retried.attempt_count == 2
    assert retried.next_payment_attempt == period_end + 8 * DAY

    await _advance(client, clock.id, period_end + 20 * DAY)
    canceled = await client.v1.subscriptions.retrieve_async(sub.id)
    assert canceled.status == "canceled"
    assert canceled.cancellation_details is not None
    assert canceled.cancellation_details.reason == "payment_failed"
    final = await client.v1.invoices.retrieve_async(invoice.id)
    assert (final.status, final.attempt_count, final.next_payment_attempt) == ("open", 4, None)
    statuses = [
        e["data"]["object"]["status"]
        for e in reversed(emulator.events())
        if e["type"].startswith("customer.subscription.")
    ]
    assert statuses[-2:] == ["past_due", "canceled"]
    assert len(emulator.events("invoice.payment_failed")) == 4


async def test_dunning_to_unpaid_and_recovery_by_paying(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    emulator.set_dunning(retry_days=[1, 2], final_action="unpaid")
    clock, customer = await _clock_customer(client, card="pm_card_visa")
    price = await make_plan(client, amount=1200)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    failing = await client.v1.payment_methods.attach_async(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    await client.v1.customers.update_async(
        customer.id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )
    end = sub.items.data[0].current_period_end
    await _advance(client, clock.id, end + 10 * DAY)
    unpaid = await client.v1.subscriptions.retrieve_async(sub.id)
    assert unpaid.status == "unpaid"
    invoice_id = str(unpaid.latest_invoice)
    paid = await client.v1.invoices.pay_async(invoice_id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "paid"
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "active"


async def test_a_new_card_recovers_a_past_due_subscription(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock, customer = await _clock_customer(client)
    price = await make_plan(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    pm = str(customer.invoice_settings.default_payment_method)
    emulator.set_card_decline(pm, "expired_card")
    end = sub.items.data[0].current_period_end
    await _advance(client, clock.id, end + 60)
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "past_due"
    emulator.set_card_decline(pm, None)  # e.g. the bank lifted the block
    await _advance(client, clock.id, end + 4 * DAY)
    recovered = await client.v1.subscriptions.retrieve_async(sub.id)
    assert recovered.status == "active"
    invoice = await client.v1.invoices.retrieve_async(str(recovered.latest_invoice))
    assert (invoice.status, invoice.attempt_count) == ("paid", 2)


async def test_incomplete_subscriptions_expire_after_23_hours(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock, customer = await _clock_customer(client, card="pm_card_chargeCustomerFail")
    price = await make_plan(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert sub.status == "incomplete"
    await _advance(client, clock.id, START + DAY)
    expired = await client.v1.subscriptions.retrieve_async(sub.id)
    assert expired.status == "incomplete_expired"
    invoice = await client.v1.invoices.retrieve_async(str(expired.latest_invoice))
    assert invoice.status == "void"
    assert emulator.events("customer.subscription.deleted")


async def test_events_of_an_advance_carry_no_request(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock, customer = await _clock_customer(client)
    price = await make_plan(client)
    await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": START + 32 * DAY}, options={"idempotency_key": "adv-1"}
    )
    events = list(reversed(emulator.events()))
    types = [e["type"] for e in events]
    advancing = types.index("test_helpers.test_clock.advancing")
    # The advance request caused the clock to start advancing: that event names it, as on
    # Stripe; the renewal and the clock becoming ready are Stripe's own work.
    assert events[advancing]["request"]["idempotency_key"] == "adv-1"
    assert events[advancing]["request"]["id"].startswith("req_")
    caused_by_time = events[advancing + 1 :]
    assert "invoice.paid" in [e["type"] for e in caused_by_time]
    assert caused_by_time[-1]["type"] == "test_helpers.test_clock.ready"
    assert {(e["request"]["id"], e["request"]["idempotency_key"]) for e in caused_by_time} == {
        (None, None)
    }


async def test_clock_list_and_delete(client: stripe.StripeClient) -> None:
    clock, customer = await _clock_customer(client)
    listed = await client.v1.test_helpers.test_clocks.list_async()
    assert [c.id for c in listed.data] == [clock.id]
    deleted = await client.v1.test_helpers.test_clocks.delete_async(clock.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.test_helpers.test_clocks.retrieve_async(clock.id)
    assert (await client.v1.customers.retrieve_async(customer.id)).to_dict()["deleted"] is True


async def test_past_due_recovered_through_hosted_pages(
    client: stripe.StripeClient, emulator: Emulator, http: httpx.AsyncClient
) -> None:
    clock, customer = await _clock_customer(client)
    price = await make_plan(client, amount=2500)
    first = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    emulator.set_card_decline(
        str(customer.invoice_settings.default_payment_method), "card_declined"
    )
    await _advance(client, clock.id, first.items.data[0].current_period_end + 60)
    past_due = await client.v1.subscriptions.retrieve_async(first.id)
    assert past_due.status == "past_due"

    # The customer pays the open invoice on its hosted page with another card.
    invoice = await client.v1.invoices.retrieve_async(str(past_due.latest_invoice))
    assert invoice.hosted_invoice_url is not None
    page = await http.get(invoice.hosted_invoice_url)
    assert "Pay $25.00" in page.text
    declined = await http.post(
        f"{invoice.hosted_invoice_url}/pay", data={"card": "pm_card_chargeCustomerFail"}
    )
    assert declined.status_code == 402
    paid = await http.post(f"{invoice.hosted_invoice_url}/pay", data={"card": "pm_card_visa"})
    assert paid.status_code == 303
    assert (await client.v1.invoices.retrieve_async(invoice.id)).status == "paid"
    assert (await client.v1.subscriptions.retrieve_async(first.id)).status == "active"

    # Next cycle fails again; this time a new card in the billing portal settles it.
    renewed = await client.v1.subscriptions.retrieve_async(first.id)
    await _advance(client, clock.id, renewed.items.data[0].current_period_end + 60)
    assert (await client.v1.subscriptions.retrieve_async(first.id)).status == "past_due"
    portal = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id, "return_url": "https://app.test/account"}
    )
    changed = await http.post(f"{portal.url}/payment_method", data={"card": "pm_card_visa"})
    assert changed.status_code == 303
    assert (await client.v1.subscriptions.retrieve_async(first.id)).status == "active"


async def test_a_renewal_on_a_card_that_always_asks_for_3ds_requires_action(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": START})
    customer = await make_customer(client, card=None, test_clock=clock.id)
    price = await make_plan(client, amount=1500)
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id}],
            "success_url": "https://app.test/done",
        }
    )
    assert session.url is not None
    # On the hosted page the buyer completes 3D Secure: the first invoice is paid.
    paid = await http.post(f"{session.url}/pay", data={"card": "pm_card_authenticationRequired"})
    assert paid.status_code == 303
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert done.payment_status == "paid"
    sub_id = str(done.subscription)
    assert (await client.v1.subscriptions.retrieve_async(sub_id)).status == "active"

    # The renewal is off-session: the bank asks for authentication nobody can give.
    await _advance(client, clock.id, START + 29 * DAY)  # the period ended on Feb 28
    sub = await client.v1.subscriptions.retrieve_async(sub_id)
    assert sub.status == "past_due"
    invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
    assert (invoice.billing_reason, invoice.status, invoice.attempt_count) == (
        "subscription_cycle",
        "open",
        1,
    )
    assert invoice.next_payment_attempt is not None  # the retry schedule still applies
    pi = (await client.v1.payment_intents.list_async(params={"customer": customer.id})).data[0]
    assert (pi.status, pi.amount) == ("requires_action", 1500)
    assert pi.next_action is not None
    [action] = emulator.events("invoice.payment_action_required")
    assert action["data"]["object"]["id"] == invoice.id
    assert action["request"] == {"id": None, "idempotency_key": None}
    types = _types(emulator)
    assert types.index("payment_intent.requires_action") < types.index("invoice.payment_failed")
    assert types.index("invoice.payment_failed") < types.index("invoice.payment_action_required")
    assert "payment_intent.succeeded" in types  # the first, authenticated payment only
    assert types.count("invoice.paid") == 1

    # The customer comes back to the hosted invoice page and authenticates there.
    assert invoice.hosted_invoice_url is not None
    on_page = await http.post(
        f"{invoice.hosted_invoice_url}/pay", data={"card": "pm_card_authenticationRequired"}
    )
    assert on_page.status_code == 303
    assert (await client.v1.invoices.retrieve_async(str(invoice.id))).status == "paid"
    assert (await client.v1.subscriptions.retrieve_async(sub_id)).status == "active"


async def test_a_subscription_created_off_page_with_a_3ds_card_is_incomplete(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    _, customer = await _clock_customer(client, card="pm_card_authenticationRequired")
    price = await make_plan(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    # Stripe: "Fails because of authentication" - requires_action, invoice open, incomplete.
    assert sub.status == "incomplete"
    invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
    assert invoice.status == "open"
    [pi] = (await client.v1.payment_intents.list_async()).data
    assert pi.status == "requires_action"
    assert emulator.events("invoice.payment_action_required")
