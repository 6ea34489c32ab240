"""Saved payment methods end to end, through the real app, the real SDK and the emulator:
adding a card with a SetupIntent (and the emulator's hosted page), the default for renewals
(the card paid at Checkout included), removing a card, double-submits, bad inputs, and the
webhooks that keep the stored view true."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from revenue_engine.documents import Customer
from revenue_engine.settings import Settings
from tests.conftest import serving_app
from tests.e2e.conftest import ENGINE_URL, engine_settings, pay
from tests.e2e.ops import (
    CHECKOUT,
    CREATE_CUSTOMER,
    ERRORS,
    PORTAL,
    VERIFY,
    call,
    only,
)
from tests.e2e.test_subscriptions import subscribe
from tests.stripe_events import SECRET, post

CARD = "id type brand last4 expMonth expYear isDefault"
LIST = f"query {{ paymentMethods {{ {CARD} }} }}"
CHANGED = f"__typename ... on PaymentMethodsPayload {{ paymentMethods {{ {CARD} }} }} {ERRORS}"
SETUP = f"""mutation($path: String) {{ createSetupIntent(returnPath: $path) {{ __typename
  ... on SetupIntentPayload {{ setupIntentId clientSecret confirmationUrl }} {ERRORS} }} }}"""
SET_DEFAULT = f"mutation($id: ID!) {{ setDefaultPaymentMethod(id: $id) {{ {CHANGED} }} }}"
DETACH = f"mutation($id: ID!) {{ detachPaymentMethod(id: $id) {{ {CHANGED} }} }}"


async def cards(engine: httpx.AsyncClient, org: str = "org_a") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await call(engine, LIST, org=org))["paymentMethods"]
    return found


async def setup(engine: httpx.AsyncClient, path: str | None = None, org: str = "org_a") -> Any:
    return only(await call(engine, SETUP, {"path": path}, org=org))


async def confirm_on_the_page(url: str, card: str = "pm_card_mastercard") -> httpx.Response:
    """Save a card on the emulator's hosted page as a browser would (no redirect followed)."""
    async with httpx.AsyncClient(timeout=5) as browser:
        shown = await browser.get(url)
        assert shown.status_code == 200, shown.text
        query = parse_qs(urlsplit(url).query)
        data = {k: v[0] for k, v in query.items()}
        base = url.split("?", 1)[0]
        return await browser.post(f"{base}/confirm", data={**data, "card": card})


async def saved_card(
    stripe_client: stripe.StripeClient, customer_id: str, card: str = "pm_card_visa"
) -> str:
    """A card saved to the customer on Stripe's side (as Stripe.js or the dashboard would)."""
    pm = await stripe_client.v1.payment_methods.attach_async(card, params={"customer": customer_id})
    return str(pm.id)


async def new_customer(engine: httpx.AsyncClient, org: str = "org_a") -> str:
    customer_id: str = only(await call(engine, CREATE_CUSTOMER, org=org))["customer"]["id"]
    return customer_id


def writes(emulator: Emulator) -> int:
    return emulator.request_count("POST") + emulator.request_count("DELETE")


# --- adding a card, choosing the default ------------------------------------------------------
async def test_add_a_card_on_the_hosted_page_and_make_it_the_default(
    engine: httpx.AsyncClient, emulator: Emulator, emulator_server: EmulatorServer
) -> None:
    assert await cards(engine) == []
    granted = await setup(engine, "/account/cards")
    assert granted["__typename"] == "SetupIntentPayload"
    seti_id = granted["setupIntentId"]
    assert granted["clientSecret"].startswith(f"{seti_id}_secret_")
    url = granted["confirmationUrl"]
    assert url.startswith(f"{emulator_server.url}/setup/{seti_id}?")
    [stored] = emulator.objects("setup_intent")
    assert (stored["usage"], stored["status"]) == ("off_session", "requires_payment_method")
    assert stored["metadata"] == {"organization_id": "org_a"}

    back = await confirm_on_the_page(url)
    assert back.status_code == 303
    location = urlsplit(back.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ENGINE_URL}/account/cards"
    assert parse_qs(location.query)["redirect_status"] == ["succeeded"]

    # No webhook has arrived (none is registered): the list reads Stripe.
    [card] = await cards(engine)
    assert {k: card[k] for k in ("type", "brand", "last4", "isDefault")} == {
        "type": "card",
        "brand": "mastercard",
        "last4": "4444",
        "isDefault": False,
    }
    assert (card["expMonth"], card["expYear"]) == (12, 2034)
    assert (await subscribe(engine))["code"] == "NO_PAYMENT_METHOD"

    made = only(await call(engine, SET_DEFAULT, {"id": card["id"]}))
    assert made["__typename"] == "PaymentMethodsPayload"
    assert [c["isDefault"] for c in made["paymentMethods"]] == [True]
    [customer] = emulator.objects("customer")
    assert customer["invoice_settings"]["default_payment_method"] == card["id"]
    doc = await Customer.find_one({"organization_id": "org_a"})
    assert doc is not None
    assert (doc.default_payment_method, [m.id for m in doc.payment_methods]) == (
        card["id"],
        [card["id"]],
    )
    assert (await subscribe(engine))["__typename"] == "SubscriptionPayload"
    [charge] = emulator.objects("charge")
    assert charge["payment_method"] == card["id"]


async def test_a_new_default_is_what_the_live_subscription_charges(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    created = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )
    await pay(created["checkoutUrl"])
    await call(engine, VERIFY, {"id": created["sessionId"]})
    [customer] = emulator.objects("customer")
    other = await saved_card(stripe_client, customer["id"], "pm_card_amex")
    made = only(await call(engine, SET_DEFAULT, {"id": other}))
    assert made["__typename"] == "PaymentMethodsPayload"
    # Checkout named its card on the subscription: the subscription moves to the new default.
    [sub] = emulator.objects("subscription")
    assert sub["default_payment_method"] == other
    # The old card paid for the live subscription before; it may go now, the new one may not.
    old = next(c["id"] for c in made["paymentMethods"] if c["id"] != other)
    assert only(await call(engine, DETACH, {"id": old}))["__typename"] == "PaymentMethodsPayload"
    refused = only(await call(engine, DETACH, {"id": other}))
    assert (refused["__typename"], refused["code"]) == (
        "BillingStateError",
        "PAYMENT_METHOD_IN_USE",
    )
    assert emulator.request_count("POST", f"/v1/payment_methods/{other}/detach") == 0
    assert [c["id"] for c in await cards(engine)] == [other]


async def test_the_card_paid_at_checkout_becomes_the_default_for_renewals(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    # The newcomer's finding: "Payment method: none" in the portal right after paying by Visa.
    created = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )
    await pay(created["checkoutUrl"])
    for _ in range(2):  # verified twice (a reload): adopted once
        verified = only(await call(engine, VERIFY, {"id": created["sessionId"]}))
        assert verified["subscription"]["isActive"] is True
    [sub] = emulator.objects("subscription")
    [customer] = emulator.objects("customer")
    assert customer["invoice_settings"]["default_payment_method"] == sub["default_payment_method"]
    keys = emulator.idempotency_keys("POST", f"/v1/customers/{customer['id']}")
    assert sum(keys.values()) == 1
    [card] = await cards(engine)
    assert (card["id"], card["isDefault"], card["last4"]) == (
        sub["default_payment_method"],
        True,
        "4242",
    )
    portal = only(await call(engine, PORTAL))
    async with httpx.AsyncClient(timeout=5) as browser:
        page = await browser.get(portal["url"])
    assert "Payment method: visa •••• 4242" in page.text


# --- double-submits -------------------------------------------------------------------------
async def test_double_submits_make_one_stripe_effect(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    first, second = await asyncio.gather(setup(engine), setup(engine))
    assert first["setupIntentId"] == second["setupIntentId"]
    assert len(emulator.objects("customer")) == 1
    assert len(emulator.objects("setup_intent")) == 1
    # Still to be confirmed: handed out again; once confirmed, the next request makes a new one.
    assert (await setup(engine))["setupIntentId"] == first["setupIntentId"]
    await confirm_on_the_page(first["confirmationUrl"], "pm_card_visa")
    renewed = await setup(engine)
    assert renewed["setupIntentId"] != first["setupIntentId"]
    assert len(emulator.objects("setup_intent")) == 2

    [customer] = emulator.objects("customer")
    visa = next(p["id"] for p in emulator.objects("payment_method") if p["customer"])
    amex = await saved_card(stripe_client, customer["id"], "pm_card_amex")
    path = f"/v1/customers/{customer['id']}"
    before = emulator.request_count("POST", path)
    both = await asyncio.gather(*(call(engine, SET_DEFAULT, {"id": amex}) for _ in range(2)))
    assert {only(r)["__typename"] for r in both} == {"PaymentMethodsPayload"}
    assert len(emulator.idempotency_keys("POST", path)) == 1
    assert emulator.request_count("POST", path) - before in (1, 2)  # the twins, one key
    # Sent again later: it is the default already, nothing is sent.
    after_twins = emulator.request_count("POST", path)
    await call(engine, SET_DEFAULT, {"id": amex})
    assert emulator.request_count("POST", path) == after_twins
    moved = [
        e
        for e in emulator.events("customer.updated")
        if "invoice_settings" in e["data"]["previous_attributes"]
    ]
    assert len(moved) == 1
    # A change after that is a new request (a new key), and takes effect.
    back = only(await call(engine, SET_DEFAULT, {"id": visa}))
    assert [c["id"] for c in back["paymentMethods"] if c["isDefault"]] == [visa]
    assert len(emulator.idempotency_keys("POST", path)) == 2

    detach = f"/v1/payment_methods/{amex}/detach"
    gone = await asyncio.gather(*(call(engine, DETACH, {"id": amex}) for _ in range(2)))
    assert {only(r)["__typename"] for r in gone} == {"PaymentMethodsPayload"}
    assert len(emulator.idempotency_keys("POST", detach)) == 1
    assert len(emulator.events("payment_method.detached")) == 1
    again = only(await call(engine, DETACH, {"id": amex}))  # after it went: the same answer
    assert again["__typename"] == "PaymentMethodsPayload"
    assert [c["id"] for c in again["paymentMethods"]] == [visa]
    assert len(emulator.events("payment_method.detached")) == 1


# --- bad inputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("op", [SET_DEFAULT, DETACH])
@pytest.mark.parametrize("bad", ["nope", "pm_", "pm_" + "a" * 300, "pm_a b", "cus_123"])
async def test_an_id_of_the_wrong_shape_is_not_found_and_nothing_is_sent(
    engine: httpx.AsyncClient, emulator: Emulator, op: str, bad: str
) -> None:
    await new_customer(engine)
    sent = emulator.request_count()
    result = only(await call(engine, op, {"id": bad}))
    assert (result["__typename"], result["code"]) == ("NotFoundError", "NOT_FOUND")
    assert emulator.request_count() == sent


@pytest.mark.parametrize("op", [SET_DEFAULT, DETACH])
async def test_another_organizations_card_is_not_found_and_nothing_is_written(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient, op: str
) -> None:
    await new_customer(engine, org="org_a")
    theirs = await saved_card(stripe_client, await new_customer(engine, org="org_b"))
    before, sent = writes(emulator), emulator.request_count()
    for card in (theirs, "pm_1Unknown000000000000", "pm_card_visa"):  # theirs, unknown, unsaved
        result = only(await call(engine, op, {"id": card}))
        assert (result["__typename"], result["code"]) == ("NotFoundError", "NOT_FOUND")
    assert writes(emulator) == before
    assert emulator.request_count() - sent == 3  # one ownership read each
    [pm] = [p for p in emulator.objects("payment_method") if p["id"] == theirs]
    assert pm["customer"] is not None
    org_b = await Customer.find_one({"organization_id": "org_b"})
    assert org_b is not None
    assert org_b.default_payment_method is None


async def test_without_a_customer_nothing_is_made(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    assert await cards(engine, org="org_new") == []
    result = only(await call(engine, SET_DEFAULT, {"id": "pm_1Something"}, org="org_new"))
    assert result["__typename"] == "NotFoundError"
    bad_path = await setup(engine, "https://elsewhere.test/", org="org_new")
    assert bad_path["__typename"] == "ValidationError"
    assert bad_path["fields"][0]["field"] == "returnPath"
    assert emulator.objects("customer") == []
    assert emulator.objects("setup_intent") == []
    assert await Customer.find_all().count() == 0


# --- webhooks keep the stored view true -----------------------------------------------------
@pytest.fixture
async def hooked(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, stripe_webhook_secrets=[SECRET])
    )
    return client


async def view(customer_id: str) -> Customer:
    doc = await Customer.find_one({"stripe_customer_id": customer_id})
    assert doc is not None
    return doc


async def deliver(engine: httpx.AsyncClient, event: dict[str, Any]) -> str:
    answer = await post(engine, event)
    status: str = answer.json()["status"]
    return status


async def test_payment_method_and_customer_events_keep_the_view_true(
    hooked: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = await new_customer(hooked)
    visa = await saved_card(stripe_client, customer_id)
    [attached] = emulator.events("payment_method.attached")
    assert await deliver(hooked, attached) == "processed"
    assert [m.id for m in (await view(customer_id)).payment_methods] == [visa]

    await stripe_client.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": visa}}
    )
    [updated] = emulator.events("customer.updated")
    assert await deliver(hooked, updated) == "processed"
    assert (await view(customer_id)).default_payment_method == visa

    # A card saved through a SetupIntent confirmed in the browser.
    seti = await stripe_client.v1.setup_intents.create_async(
        params={"customer": customer_id, "payment_method": "pm_card_amex", "confirm": True}
    )
    [succeeded] = emulator.events("setup_intent.succeeded")
    assert await deliver(hooked, succeeded) == "processed"
    assert {m.id for m in (await view(customer_id)).payment_methods} == {
        visa,
        str(seti.payment_method),
    }

    # Detached: the event names the customer only in previous_attributes.
    await stripe_client.v1.payment_methods.detach_async(visa)
    [detached] = emulator.events("payment_method.detached")
    assert detached["data"]["object"]["customer"] is None
    assert await deliver(hooked, detached) == "processed"
    doc = await view(customer_id)
    assert ([m.id for m in doc.payment_methods], doc.default_payment_method) == (
        [str(seti.payment_method)],
        None,
    )
    # An older event arriving late (another delivery of the attach) re-reads: still true.
    late = attached | {"id": "evt_1LateAttach000000000000"}
    assert await deliver(hooked, late) == "processed"
    assert [m.id for m in (await view(customer_id)).payment_methods] == [str(seti.payment_method)]
    # Stripe down while re-reading: 503, so Stripe redelivers; the view is left alone.
    emulator.inject_fault("503", count=10, path=f"/v1/customers/{customer_id}*")
    answer = await post(hooked, succeeded | {"id": "evt_1Redelivered0000000000"})
    assert answer.status_code == 503
    emulator.clear_faults()
    assert [m.id for m in (await view(customer_id)).payment_methods] == [str(seti.payment_method)]


async def test_a_default_source_is_kept_and_listed_as_the_default(
    hooked: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = await new_customer(hooked)
    await stripe_client.v1.customers.update_async(customer_id, params={"source": "tok_visa"})
    [updated] = emulator.events("customer.updated")
    assert await deliver(hooked, updated) == "processed"
    doc = await view(customer_id)
    assert doc.default_source is not None
    assert doc.default_source.startswith("card_")
    [card] = await cards(hooked)
    assert (card["id"], card["isDefault"]) == (doc.default_source, True)


async def test_events_of_strangers_are_ignored(
    hooked: httpx.AsyncClient, stripe_client: stripe.StripeClient, emulator: Emulator
) -> None:
    stranger = await stripe_client.v1.customers.create_async(params={"email": "x@example.com"})
    await saved_card(stripe_client, stranger.id)
    await stripe_client.v1.setup_intents.create_async(
        params={"payment_method": "pm_card_visa", "confirm": True}
    )
    for kind in ("payment_method.attached", "setup_intent.succeeded"):
        [event] = emulator.events(kind)
        assert await deliver(hooked, event) == "ignored"


async def test_the_list_answers_from_the_view_while_stripe_is_down(
    hooked: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    customer_id = await new_customer(hooked)
    visa = await saved_card(stripe_client, customer_id)
    assert [c["id"] for c in await cards(hooked)] == [visa]  # read from Stripe, stored
    emulator.inject_fault("503", count=20, path=f"/v1/customers/{customer_id}*")
    assert [c["id"] for c in await cards(hooked)] == [visa]


# --- the embedded default: the page mounted under /stripe-emulator --------------------------
@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with serving_app() as url:
        yield url


def test_the_hosted_page_of_the_embedded_emulator_returns_to_the_app(served: str) -> None:
    headers = {"x-organization-id": "org_cards", "x-customer-email": "cards@example.com"}

    def gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"query": query, "variables": variables or {}}
        answer = httpx.post(f"{served}/graphql", json=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    granted = only(gql(SETUP, {"path": "/demo/"}))
    url = granted["confirmationUrl"]
    assert url.startswith(f"{served}/stripe-emulator/setup/{granted['setupIntentId']}?")
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    action = f"{url.split('?', 1)[0]}/confirm"
    assert f"action='{granted['setupIntentId']}/confirm'" in page.text  # relative: any mount
    back = httpx.post(action, data={**form, "card": "pm_card_visa"}, timeout=10)
    assert back.status_code == 303
    assert back.headers["location"].startswith(f"{served}/demo/?setup_intent=")
    [card] = gql(LIST)["paymentMethods"]
    assert (card["brand"], card["last4"]) == ("visa", "4242")
