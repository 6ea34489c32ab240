"""Checkout Sessions and the hosted checkout page, driven over plain HTTP like a browser."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, make_customer, make_plan
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]

SUCCESS = "https://app.test/billing/done?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://app.test/billing/canceled"


async def _session(client: stripe.StripeClient, **extra: object) -> stripe.checkout.Session:
    price = await make_plan(client, amount=2900, name="Team")
    params: dict[str, object] = {
        "mode": "subscription",
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "client_reference_id": "org_42",
        "metadata": {"organization_id": "org_42"},
        "subscription_data": {"metadata": {"organization_id": "org_42"}},
        "customer_email": "owner@org42.test",
    }
    params.update(extra)
    return await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]


async def test_page_names_plan_amount_and_interval(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    session = await _session(client)
    assert session.url is not None
    assert session.url.endswith(f"/checkout/{session.id}")
    assert (session.status, session.payment_status, session.mode) == (
        "open",
        "unpaid",
        "subscription",
    )
    page = await http.get(session.url)
    assert page.status_code == 200
    assert "Team" in page.text
    assert "$29.00" in page.text
    assert "/ month" in page.text
    assert "pm_card_chargeDeclined" in page.text
    assert re.search(r"action='cs_test_\w+/pay'", page.text)


async def test_pay_completes_and_redirects_with_the_session_id(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    session = await _session(client)
    assert session.url is not None
    paid = await http.post(f"{session.url}/pay", data={"card": "pm_card_visa", "email": ""})
    assert paid.status_code == 303
    location = paid.headers["location"]
    assert location.startswith("https://app.test/billing/done")
    assert parse_qs(urlsplit(location).query)["session_id"] == [session.id]

    done = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["subscription", "line_items", "customer"]}
    )
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.client_reference_id == "org_42"
    sub = done.subscription
    assert isinstance(sub, stripe.Subscription)
    assert sub.status == "active"
    assert sub.metadata.to_dict() == {"organization_id": "org_42"}
    assert isinstance(sub.default_payment_method, str)
    customer = done.customer
    assert isinstance(customer, stripe.Customer)
    assert customer.email == "owner@org42.test"
    assert done.customer_details is not None
    assert done.customer_details.email == "owner@org42.test"
    assert done.line_items is not None
    assert done.line_items.data[0].amount_total == 2900
    invoice = await client.v1.invoices.retrieve_async(str(done.invoice))
    assert (invoice.status, invoice.amount_paid) == ("paid", 2900)

    types = [e["type"] for e in reversed(emulator.events())]
    assert types[-1] == "checkout.session.completed"
    for expected in (
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "payment_intent.succeeded",
        "customer.subscription.updated",
    ):
        assert expected in types

    again = await http.get(session.url)
    assert "Payment complete" in again.text
    second = await http.post(f"{session.url}/pay", data={"card": "pm_card_visa"})
    assert "Payment complete" in second.text  # a double submit charges nothing more
    assert len(emulator.objects("subscription")) == 1


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("pm_card_chargeDeclined", "Your card was declined."),
        ("pm_card_chargeDeclinedInsufficientFunds", "Your card has insufficient funds."),
    ],
)
async def test_declines_show_on_the_page_and_activate_nothing(
    client: stripe.StripeClient,
    http: httpx.AsyncClient,
    emulator: Emulator,
    card: str,
    message: str,
) -> None:
    session = await _session(client)
    assert session.url is not None
    declined = await http.post(f"{session.url}/pay", data={"card": card})
    assert declined.status_code == 402
    assert message in declined.text
    assert "role='alert'" in declined.text
    still_open = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (still_open.status, still_open.payment_status) == ("open", "unpaid")
    assert emulator.objects("subscription") == []
    assert emulator.objects("customer") == []
    assert emulator.events("checkout.session.completed") == []

    recovered = await http.post(f"{session.url}/pay", data={"card": "pm_card_visa"})
    assert recovered.status_code == 303


def _form_actions(page: httpx.Response) -> list[str]:
    """The page's form actions resolved against its own URL, as a browser does."""
    return [
        str(page.url.join(a))
        for a in re.findall(r"<form method='post' action='([^']+)'", page.text)
    ]


async def test_the_page_after_a_decline_still_pays_and_cancels(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    session = await _session(client)
    assert session.url is not None
    declined = await http.post(f"{session.url}/pay", data={"card": "pm_card_chargeDeclined"})
    assert declined.status_code == 402
    # Rendered at …/{id}/pay, its forms must still reach …/{id}/pay and …/{id}/cancel.
    assert _form_actions(declined) == [f"{session.url}/pay", f"{session.url}/cancel"]
    again = await http.post(f"{session.url}/pay", data={"card": "pm_card_chargeDeclined"})
    canceled = await http.post(_form_actions(again)[1])
    assert (canceled.status_code, canceled.headers["location"]) == (303, CANCEL)
    paid = await http.post(_form_actions(again)[0], data={"card": "pm_card_visa"})
    assert paid.status_code == 303
    assert paid.headers["location"].startswith("https://app.test/billing/done?session_id=cs_")


async def test_cancel_redirects_to_cancel_url_and_keeps_the_session_open(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    session = await _session(client)
    assert session.url is not None
    canceled = await http.post(f"{session.url}/cancel")
    assert canceled.status_code == 303
    assert canceled.headers["location"] == CANCEL
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"


async def test_following_the_forms_like_a_browser(
    client: stripe.StripeClient, server: object, emulator: Emulator
) -> None:
    session = await _session(client, success_url=f"{emulator.public_url}/")
    assert session.url is not None
    async with httpx.AsyncClient(follow_redirects=True, timeout=5) as browser:
        page = await browser.get(session.url)
        action = re.search(r"<form method='post' action='([^']+/pay)'", page.text)
        assert action is not None
        landed = await browser.post(
            str(page.url.join(action.group(1))),
            data={"card": "pm_card_visa", "email": "person@example.com", "name": "Ada"},
        )
    assert landed.status_code == 200
    assert landed.json()["emulator"] == "stripe"
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert done.customer_details is not None
    assert (done.customer_details.email, done.customer_details.name) == (
        "person@example.com",
        "Ada",
    )


async def test_existing_customer_trial_and_expiry(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    trial = await _session(
        client,
        customer=customer.id,
        customer_email=None,
        subscription_data={"trial_period_days": 7},
    )
    assert trial.url is not None
    assert trial.amount_total == 0
    assert "7-day free trial" in (await http.get(trial.url)).text
    await http.post(f"{trial.url}/pay", data={"card": "pm_card_visa"})
    done = await client.v1.checkout.sessions.retrieve_async(trial.id)
    assert (done.payment_status, done.customer) == ("no_payment_required", customer.id)
    sub = await client.v1.subscriptions.retrieve_async(str(done.subscription))
    assert sub.status == "trialing"
    assert len(emulator.objects("customer")) == 1

    abandoned = await _session(client)
    expired = await client.v1.checkout.sessions.expire_async(abandoned.id)
    assert expired.status == "expired"
    assert emulator.events("checkout.session.expired")[0]["data"]["object"]["id"] == abandoned.id
    assert abandoned.url is not None
    assert (await http.get(abandoned.url)).status_code == 410
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(abandoned.id)
    listed = await client.v1.checkout.sessions.list_async(params={"status": "expired"})
    assert [s.id for s in listed.data] == [abandoned.id]


async def test_payment_mode_creates_a_payment_intent(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    product = await client.v1.products.create_async(params={"name": "Setup fee"})
    price = await client.v1.prices.create_async(
        params={"product": product.id, "currency": "usd", "unit_amount": 4900}
    )
    with pytest.raises(stripe.InvalidRequestError):
        await _session(client, mode="payment")  # a recurring price needs subscription mode
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": SUCCESS,
            "payment_intent_data": {"metadata": {"order": "o-9"}},
        }
    )
    assert session.url is not None
    assert session.amount_total == 9800
    paid = await http.post(f"{session.url}/pay", data={"card": "pm_card_visa"})
    assert paid.status_code == 303
    done = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["payment_intent"]}
    )
    intent = done.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert (intent.status, intent.amount, intent.metadata.to_dict()) == (
        "succeeded",
        9800,
        {"order": "o-9"},
    )
    assert done.customer is None  # guest checkout: customer_creation=if_required


async def test_events_of_hosted_pages_and_expiry_carry_no_request(
    client: stripe.StripeClient,
    http: httpx.AsyncClient,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paid = await _session(client)
    assert paid.url is not None
    await http.post(f"{paid.url}/pay", data={"card": "pm_card_visa"})
    completed = emulator.events("checkout.session.completed")[0]
    assert completed["request"] == {"id": None, "idempotency_key": None}

    lapsed = await _session(client)
    later = time.time() + 2 * 86400
    monkeypatch.setattr(emulator.state, "wall_clock", lambda: later)
    # The retrieve that notices the expiry did not cause it.
    seen = await client.v1.checkout.sessions.retrieve_async(lapsed.id)
    assert seen.status == "expired"
    expired = emulator.events("checkout.session.expired")[0]
    assert expired["data"]["object"]["id"] == lapsed.id
    assert expired["request"] == {"id": None, "idempotency_key": None}
