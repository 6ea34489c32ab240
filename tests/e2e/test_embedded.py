"""The embedded default as `make run` serves it: one uvicorn process with the emulator mounted,
the gateway talking to it over loopback HTTP, GraphiQL and the demo SPA on."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from revenue_engine.gateway import EMULATOR_API_KEY
from revenue_engine.webhooks.dispatch import MAX_ATTEMPTS
from tests.conftest import serving_app

HEADERS = {"x-organization-id": "org_demo", "x-customer-email": "demo@example.com"}


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with serving_app() as url:
        yield url


def gql(base: str, query: str) -> dict[str, object]:
    response = httpx.post(f"{base}/graphql", json={"query": query}, headers=HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def test_a_whole_purchase_offline(served: str) -> None:
    created = gql(
        served,
        'mutation { createCheckoutSession(input: {planUid: "starter", billingInterval: YEAR}) '
        "{ ... on CheckoutPayload { sessionId checkoutUrl } } }",
    )["createCheckoutSession"]
    assert isinstance(created, dict)
    assert created["checkoutUrl"].startswith(f"{served}/stripe-emulator/checkout/cs_test_")
    paid = httpx.post(f"{created['checkoutUrl']}/pay", data={"card": "pm_card_visa"}, timeout=10)
    assert paid.status_code == 303
    assert paid.headers["location"] == f"{served}/billing/success?session_id={created['sessionId']}"
    verified = gql(
        served,
        f'mutation {{ verifyCheckoutSession(sessionId: "{created["sessionId"]}") '
        "{ ... on VerifyCheckoutPayload { subscription { status isActive planUid billingInterval } } } }",
    )["verifyCheckoutSession"]
    assert verified == {
        "subscription": {
            "status": "active",
            "isActive": True,
            "planUid": "starter",
            "billingInterval": "YEAR",
        }
    }


def test_graphiql_and_the_demo_spa_are_served(served: str) -> None:
    ide = httpx.get(f"{served}/graphql", headers={"accept": "text/html"}, timeout=10)
    assert "graphiql" in ide.text.lower()
    spa = httpx.get(f"{served}/demo/", timeout=10)
    assert spa.status_code == 200
    assert "revenue-engine" in spa.text
    assert httpx.get(f"{served}/demo/app.js", timeout=10).status_code == 200
    root = httpx.get(f"{served}/", timeout=10)
    assert root.status_code == 307
    assert root.headers["location"] == "/demo/"


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_pay_and_close_the_tab_still_subscribes(served: str) -> None:
    """No verifyCheckoutSession: the emulator's signed webhooks bring the news."""
    headers = {"x-organization-id": "org_tab", "x-customer-email": "tab@example.com"}

    def ask(query: str) -> dict[str, Any]:
        response = httpx.post(
            f"{served}/graphql", json={"query": query}, headers=headers, timeout=10
        )
        data: dict[str, Any] = response.json()["data"]
        return data

    created = ask(
        'mutation { createCheckoutSession(input: {planUid: "pro", billingInterval: MONTH}) '
        "{ ... on CheckoutPayload { sessionId checkoutUrl } } }"
    )["createCheckoutSession"]
    paid = httpx.post(f"{created['checkoutUrl']}/pay", data={"card": "pm_card_visa"}, timeout=10)
    assert paid.status_code == 303  # ... and the buyer closes the tab here

    status_query = (
        '{ subscriptionStatus { status isActive planUid } checkoutSession(id: "%s") { status } }'
    )
    # The subscription's events and the session's own event arrive in any order: wait for both.
    wait_for(
        lambda: (
            (seen := ask(status_query % created["sessionId"]))["subscriptionStatus"]["isActive"]
            and seen["checkoutSession"]["status"] == "COMPLETED"
        )
    )
    final = ask(status_query % created["sessionId"])
    assert final["subscriptionStatus"] == {"status": "active", "isActive": True, "planUid": "pro"}
    assert final["checkoutSession"] == {"status": "COMPLETED"}
    deliveries = httpx.get(f"{served}/stripe-emulator/_emulator/deliveries", timeout=10).json()[
        "deliveries"
    ]
    types = {d["event_type"] for d in deliveries}
    assert {"checkout.session.completed", "customer.subscription.created", "invoice.paid"} <= types
    statuses = {a["status"] for d in deliveries for a in d["attempts"]}
    assert statuses == {200}, "every delivery was verified and acknowledged"


def test_the_emulator_delivers_as_often_as_the_engine_retries(served: str) -> None:
    """The engine parks a still-failing event on its MAX_ATTEMPTS-th delivery: the embedded
    emulator must not give up before that, or the event would stay ``processing``."""
    knobs = httpx.get(f"{served}/stripe-emulator/_emulator/deliveries", timeout=10).json()["knobs"]
    assert knobs["max_attempts"] == MAX_ATTEMPTS


def _subscribe(served: str, headers: dict[str, str]) -> Callable[[str], dict[str, Any]]:
    """A paid Starter subscription for the caller's organization; returns its GraphQL caller."""

    def ask(query: str) -> dict[str, Any]:
        response = httpx.post(
            f"{served}/graphql", json={"query": query}, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    created = ask(
        'mutation { createCheckoutSession(input: {planUid: "starter", billingInterval: MONTH}) '
        "{ ... on CheckoutPayload { sessionId checkoutUrl } } }"
    )["createCheckoutSession"]
    paid = httpx.post(f"{created['checkoutUrl']}/pay", data={"card": "pm_card_visa"}, timeout=10)
    assert paid.status_code == 303
    ask(
        f'mutation {{ verifyCheckoutSession(sessionId: "{created["sessionId"]}") {{ __typename }} }}'
    )
    return ask


def test_the_billing_portal_round_trip_through_the_mounted_emulator(served: str) -> None:
    """Cancel, undo and a new card on the portal page, each a 303 back to the page (never a 500:
    ``url_for`` cannot name the emulator's routes from inside the engine), then the way back."""
    ask = _subscribe(served, {"x-organization-id": "org_portal", "x-customer-email": "p@x.test"})
    portal = ask(
        'mutation { createBillingPortalSession(returnPath: "/demo/") { ... on PortalPayload { url } } }'
    )
    url = portal["createBillingPortalSession"]["url"]
    assert url.startswith(f"{served}/stripe-emulator/billing_portal/bps_")
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    [sub_id] = re.findall(r"name='subscription' value='([^']+)'", page.text)

    canceled = httpx.post(f"{url}/cancel", data={"subscription": sub_id}, timeout=10)
    assert (canceled.status_code, canceled.headers["location"]) == (303, url)
    assert "Cancels on" in httpx.get(url, timeout=10).text
    wait_for(
        lambda: ask("{ subscriptionStatus { cancelAtPeriodEnd } }")["subscriptionStatus"][
            "cancelAtPeriodEnd"
        ]
    )

    renewed = httpx.post(f"{url}/renew", data={"subscription": sub_id}, timeout=10)
    assert (renewed.status_code, renewed.headers["location"]) == (303, url)
    card = httpx.post(f"{url}/payment_method", data={"card": "pm_card_mastercard"}, timeout=10)
    assert (card.status_code, card.headers["location"]) == (303, url)
    page = httpx.get(url, timeout=10)
    assert "mastercard •••• 4444" in page.text
    assert "Renews on" in page.text
    wait_for(
        lambda: (
            not ask("{ subscriptionStatus { cancelAtPeriodEnd } }")["subscriptionStatus"][
                "cancelAtPeriodEnd"
            ]
        )
    )

    [back] = re.findall(r"<a href='([^']+)'>Return</a>", page.text)
    assert back == f"{served}/demo/"
    assert "revenue-engine" in httpx.get(back, timeout=10).text

    # The portal's invoice history links to the paid first invoice, whose page links back.
    [invoice_url] = re.findall(r"<a href='([^']+/invoices/in_[^']+)'>", page.text)
    assert invoice_url.startswith(f"{served}/stripe-emulator/invoices/")
    invoice_page = httpx.get(invoice_url, timeout=10)
    assert "status <strong>paid</strong>" in invoice_page.text
    assert "p@x.test" in invoice_page.text
    assert re.findall(r"<a href='(http[^']+)'>", invoice_page.text) == [url, f"{served}/demo/"]


def test_the_hosted_invoice_page_through_the_mounted_emulator() -> None:
    """An open invoice paid on its page answers 303 back to the page, under the mount prefix.
    Its own app: the invoice's customer is not the engine's, whose webhooks the engine retries."""
    with serving_app() as served:
        _pay_an_open_invoice_on_its_page(served)


def _pay_an_open_invoice_on_its_page(served: str) -> None:
    api = f"{served}/stripe-emulator/v1"
    auth = {"authorization": f"Bearer {EMULATOR_API_KEY}"}
    customer = httpx.post(f"{api}/customers", data={"email": "inv@x.test"}, headers=auth).json()
    product = httpx.post(f"{api}/products", data={"name": "Page"}, headers=auth).json()
    price = httpx.post(
        f"{api}/prices",
        data={
            "product": product["id"],
            "currency": "usd",
            "unit_amount": "1200",
            "recurring[interval]": "month",
        },
        headers=auth,
    ).json()
    sub = httpx.post(
        f"{api}/subscriptions",
        data={"customer": customer["id"], "items[0][price]": price["id"]},
        headers=auth,
    ).json()
    invoice = httpx.get(f"{api}/invoices/{sub['latest_invoice']}", headers=auth).json()
    url = invoice["hosted_invoice_url"]
    assert url == f"{served}/stripe-emulator/invoices/{invoice['id']}"
    assert "Pay $12.00" in httpx.get(url, timeout=10).text
    paid = httpx.post(f"{url}/pay", data={"card": "pm_card_visa"}, timeout=10)
    assert (paid.status_code, paid.headers["location"]) == (303, url)
    assert "status <strong>paid</strong>" in httpx.get(url, timeout=10).text
    pdf = httpx.get(invoice["invoice_pdf"], timeout=10)
    assert pdf.headers["content-type"] == "application/pdf"
