"""Every hosted page's POST lands the browser on a page, wherever the emulator is served.

The same round trips run against the emulator standalone, mounted under a prefix in a host app
with its public URL set (how the engine embeds it), and mounted with no public URL at all (the
emulator then finds its own address from the request, mount prefix included). A POST answers
303 to the page it came from, or to the flow's redirect, never 500; the page's way back leads
to the app's ``return_url``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from emulator_helpers import SDK_HTTPX_WARNING, make_customer, make_plan, sdk_client
from stripe_emulator import Emulator, EmulatorServer, UvicornThread
from stripe_emulator.billing import TIMES
from stripe_emulator.pages import invoice_view

pytestmark = [SDK_HTTPX_WARNING]

PREFIX = "/stripe-emulator"
BACK_IN_THE_APP = "back in the app"


@dataclass
class Site:
    emulator: Emulator
    api: str  # where the SDK reaches the emulator
    app: str  # the integrating app, where return URLs lead


async def _account(request: Request) -> PlainTextResponse:
    return PlainTextResponse(BACK_IN_THE_APP)


@pytest.fixture(scope="module", params=["standalone", "mounted", "mounted-no-public-url"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    emulator = Emulator()
    if request.param == "standalone":
        app = Starlette(routes=[Route("/account", _account)])
        with UvicornThread(app) as app_server, EmulatorServer(emulator) as server:
            yield Site(emulator, server.url, app_server.url)
        return
    host = Starlette(routes=[Route("/account", _account), Mount(PREFIX, app=emulator.app)])
    with UvicornThread(host) as served:
        if request.param == "mounted":
            emulator.public_url = served.url + PREFIX
        yield Site(emulator, served.url + PREFIX, served.url)


async def _subscribed(client: stripe.StripeClient) -> tuple[stripe.Customer, stripe.Subscription]:
    customer = await make_customer(client)
    price = await make_plan(client)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    return customer, sub


def _links(html: str) -> list[str]:
    return [unescape(href) for href in re.findall(r"<a href='([^']+)'", html)]


async def test_portal_actions_land_back_on_the_portal_and_its_way_back(site: Site) -> None:
    async with sdk_client(site.api) as client, httpx.AsyncClient(timeout=5) as browser:
        customer, sub = await _subscribed(client)
        return_url = f"{site.app}/account"
        session = await client.v1.billing_portal.sessions.create_async(
            params={"customer": customer.id, "return_url": return_url}
        )
        assert session.url.startswith(site.api + "/billing_portal/")
        assert (await browser.get(session.url)).status_code == 200

        canceled = await browser.post(f"{session.url}/cancel", data={"subscription": sub.id})
        assert (canceled.status_code, canceled.headers["location"]) == (303, session.url)
        assert (await client.v1.subscriptions.retrieve_async(sub.id)).cancel_at_period_end
        page = await browser.get(canceled.headers["location"])
        assert page.status_code == 200
        assert "Cancels on" in page.text

        renewed = await browser.post(f"{session.url}/renew", data={"subscription": sub.id})
        assert (renewed.status_code, renewed.headers["location"]) == (303, session.url)
        assert not (await client.v1.subscriptions.retrieve_async(sub.id)).cancel_at_period_end

        changed = await browser.post(
            f"{session.url}/payment_method", data={"card": "pm_card_mastercard"}
        )
        assert (changed.status_code, changed.headers["location"]) == (303, session.url)
        page = await browser.get(changed.headers["location"])
        assert "mastercard •••• 4444" in page.text

        assert return_url in _links(page.text)
        back = await browser.get(return_url)
        assert back.text == BACK_IN_THE_APP


async def test_the_portal_shows_a_default_source_as_the_payment_method(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    # A card saved through the legacy Sources API pays the renewals too: the portal says so.
    customer = await make_customer(client, card=None, source="tok_mastercard")
    assert customer.default_source is not None
    assert customer.invoice_settings.default_payment_method is None
    session = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id, "return_url": "https://app.test/account"}
    )
    page = await http.get(session.url)
    assert "Payment method: mastercard •••• 4444" in page.text


async def test_a_portal_flow_redirects_to_its_return_url(site: Site) -> None:
    async with sdk_client(site.api) as client, httpx.AsyncClient(timeout=5) as browser:
        customer, sub = await _subscribed(client)
        done_url = f"{site.app}/account?flow=done"
        session = await client.v1.billing_portal.sessions.create_async(
            params={
                "customer": customer.id,
                "return_url": f"{site.app}/account",
                "flow_data": {
                    "type": "subscription_cancel",
                    "subscription_cancel": {"subscription": sub.id},
                    "after_completion": {"type": "redirect", "redirect": {"return_url": done_url}},
                },
            }
        )
        canceled = await browser.post(
            f"{session.url}/cancel", data={"subscription": sub.id}, follow_redirects=True
        )
    assert canceled.status_code == 200
    assert str(canceled.url) == done_url
    assert canceled.text == BACK_IN_THE_APP


async def test_paying_an_invoice_lands_back_on_the_invoice(site: Site) -> None:
    async with sdk_client(site.api) as client, httpx.AsyncClient(timeout=5) as browser:
        customer = await make_customer(client, card=None)
        price = await make_plan(client, amount=2500)
        sub = await client.v1.subscriptions.create_async(
            params={"customer": customer.id, "items": [{"price": price.id}]}
        )
        invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
        assert invoice.status == "open"
        assert invoice.hosted_invoice_url is not None
        assert invoice.hosted_invoice_url.startswith(site.api + "/invoices/")

        declined = await browser.post(
            f"{invoice.hosted_invoice_url}/pay", data={"card": "pm_card_chargeDeclined"}
        )
        assert declined.status_code == 402
        paid = await browser.post(
            f"{invoice.hosted_invoice_url}/pay", data={"card": "pm_card_visa"}
        )
        assert (paid.status_code, paid.headers["location"]) == (303, invoice.hosted_invoice_url)
        page = await browser.get(paid.headers["location"])
        assert page.status_code == 200
        assert "status <strong>paid</strong>" in page.text
        assert (await client.v1.invoices.retrieve_async(invoice.id)).status == "paid"


async def test_checkout_pay_and_cancel_reach_the_apps_urls(site: Site) -> None:
    async with sdk_client(site.api) as client, httpx.AsyncClient(timeout=5) as browser:
        price = await make_plan(client)
        session = await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": f"{site.app}/account?session_id={{CHECKOUT_SESSION_ID}}",
                "cancel_url": f"{site.app}/account?canceled=1",
            }
        )
        assert session.url is not None
        assert session.url.startswith(site.api + "/checkout/")
        canceled = await browser.post(f"{session.url}/cancel", follow_redirects=True)
        assert (str(canceled.url), canceled.text) == (
            f"{site.app}/account?canceled=1",
            BACK_IN_THE_APP,
        )
        paid = await browser.post(
            f"{session.url}/pay", data={"card": "pm_card_visa"}, follow_redirects=True
        )
    assert str(paid.url) == f"{site.app}/account?session_id={session.id}"
    assert paid.text == BACK_IN_THE_APP


def _text(html: str) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_the_invoice_page_and_pdf_say_what_the_invoice_says(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    customer = await make_customer(client, name="Ada Lovelace", email="ada@example.com")
    price = await make_plan(client, amount=1250, name="Seats")
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id, "quantity": 3}]}
    )
    portal = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id, "return_url": "https://app.test/account"}
    )
    invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
    assert invoice.hosted_invoice_url is not None
    assert invoice.invoice_pdf is not None
    assert invoice.status_transitions.paid_at is not None
    [line] = invoice.lines.data
    issued = time.strftime("%Y-%m-%d", time.gmtime(invoice.created))
    paid = time.strftime("%Y-%m-%d", time.gmtime(invoice.status_transitions.paid_at))
    start, end = (
        time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (line.period.start, line.period.end)
    )
    period = f"{start} {invoice_view.DASH} {end}"
    expected = [
        f"Invoice number {invoice.number}",
        "Status paid",
        f"Date of issue {issued}",
        f"Date due {issued}",
        f"Paid on {paid}",
        f"Billing period {period}",
        "Billed to Ada Lovelace <ada@example.com>",
        f"{line.description} {period} 3 $12.50 $37.50",
        "Subtotal $37.50",
        "Discount $0.00",
        "Tax $0.00",
        "Total $37.50",
        "Amount paid $37.50",
        "Amount remaining $0.00",
    ]
    page = await http.get(invoice.hosted_invoice_url)
    shown = _text(page.text)
    assert [fact for fact in expected if fact not in shown] == []
    links = [str(page.url.join(href)) for href in _links(page.text)]
    assert links == [invoice.invoice_pdf, portal.url, "https://app.test/account"]

    pdf = await http.get(invoice.invoice_pdf)
    assert pdf.content.startswith(b"%PDF-")
    text = pdf.content.decode("cp1252")
    in_pdf = [
        f"Invoice number: {invoice.number}",
        f"Paid on: {paid}",
        f"Billing period: {period}",
        "Billed to: Ada Lovelace <ada@example.com>",
        f"Qty 3 {TIMES} $12.50 = $37.50",
        "Subtotal: $37.50",
        "Total: $37.50",
        "Amount paid: $37.50",
        "Amount remaining: $0.00",
        invoice.hosted_invoice_url,
    ]
    assert [fact for fact in in_pdf if fact not in text] == []

    # The portal lists the invoice and links to its page: portal -> invoice -> portal -> app.
    history = await http.get(portal.url)
    assert invoice.hosted_invoice_url in _links(history.text)


async def test_an_open_invoice_shows_what_is_left_to_pay(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    customer = await make_customer(client, card=None, email="due@example.com")
    price = await make_plan(client, amount=4000)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
    assert invoice.hosted_invoice_url is not None
    page = await http.get(invoice.hosted_invoice_url)
    shown = _text(page.text)
    for fact in ("Status open", "Billed to due@example.com", "Amount paid $0.00",
                 "Amount remaining $40.00", "Pay $40.00"):  # fmt: skip
        assert fact in shown
    assert "Paid on" not in shown
    assert _links(page.text) == [f"{invoice.id}/pdf"]  # no portal session: no way back yet

    declined = await http.post(
        f"{invoice.hosted_invoice_url}/pay", data={"card": "pm_card_chargeDeclined"}
    )
    assert declined.status_code == 402
    # Re-rendered at …/{id}/pay: its links and form still reach …/{id}/<action>.
    assert [str(declined.url.join(href)) for href in _links(declined.text)] == [invoice.invoice_pdf]
    [action] = re.findall(r"<form method='post' action='([^']+)'", declined.text)
    assert str(declined.url.join(action)) == f"{invoice.hosted_invoice_url}/pay"


def test_credits_and_discounts_read_as_negative_amounts() -> None:
    invoice = {
        "currency": "usd",
        "subtotal": 5000,
        "total_discount_amounts": [{"amount": 500, "discount": "di_1"}],
        "total_taxes": [{"amount": 405}],
        "total": 4905,
        "amount_paid": 0,
        "amount_remaining": 4905,
    }
    assert invoice_view.totals(invoice) == [
        ("Subtotal", "$50.00"),
        ("Discount", "-$5.00"),
        ("Tax", "$4.05"),
        ("Total", "$49.05"),
        ("Amount paid", "$0.00"),
        ("Amount remaining", "$49.05"),
    ]


def test_no_emulator_code_builds_urls_with_url_for() -> None:
    """``request.url_for`` raises ``NoMatchFound`` inside a mounted emulator; pages build their
    redirects with ``layout.page_url`` (a page added later is not in the round trips above)."""
    package = Path(invoice_view.__file__).parents[1]
    users = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if "url_for(" in path.read_text(encoding="utf-8")
    ]
    assert users == []
