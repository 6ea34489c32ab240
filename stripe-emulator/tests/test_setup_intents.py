"""SetupIntents, their hosted confirmation page (mounted under a prefix), a customer's default
payment method and default source, and which card a renewal charges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.routing import Mount

from emulator_helpers import SDK_HTTPX_WARNING, as_dict, auth, make_customer, make_plan
from stripe_emulator import Emulator
from test_shapes import _fixtures, shape_problems

pytestmark = [SDK_HTTPX_WARNING]

PREFIX = "/stripe-emulator"
RETURN = "https://app.test/billing?tab=cards"
START = int(datetime(2031, 3, 1, 12, 0, tzinfo=UTC).timestamp())
DAY = 86400


def _types(emulator: Emulator, prefix: str = "") -> list[str]:
    return [e["type"] for e in reversed(emulator.events()) if e["type"].startswith(prefix)]


async def _intent(client: stripe.StripeClient, **params: Any) -> stripe.SetupIntent:
    return await client.v1.setup_intents.create_async(params=params)  # type: ignore[arg-type]


async def test_create_and_retrieve_have_stripes_shape(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    seti = await _intent(
        client, customer=customer.id, usage="off_session", payment_method_types=["card"]
    )
    assert seti.id.startswith("seti_")
    assert seti.client_secret is not None
    assert seti.client_secret.startswith(f"{seti.id}_secret_")
    assert (seti.status, seti.usage, seti.customer) == (
        "requires_payment_method",
        "off_session",
        customer.id,
    )
    assert seti.payment_method_types == ["card"]
    again = await client.v1.setup_intents.retrieve_async(seti.id)
    assert as_dict(again) == as_dict(seti)
    listed = await client.v1.setup_intents.list_async(params={"customer": customer.id})
    assert [s.id for s in listed.data] == [seti.id]
    assert _types(emulator, "setup_intent.") == ["setup_intent.created"]
    default = await _intent(client)
    assert default.usage == "off_session"  # Stripe's defaults
    assert default.automatic_payment_methods is not None
    assert default.automatic_payment_methods.enabled is True


async def test_confirm_saves_the_card_to_the_customer(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    seti = await _intent(client, customer=customer.id)
    done = await client.v1.setup_intents.confirm_async(
        seti.id, params={"payment_method": "pm_card_mastercard"}
    )
    assert done.status == "succeeded"
    assert done.last_setup_error is None
    pm = await client.v1.payment_methods.retrieve_async(str(done.payment_method))
    assert (pm.customer, pm.card and pm.card.last4) == (customer.id, "4444")
    saved = await client.v1.customers.payment_methods.list_async(customer.id)
    assert [m.id for m in saved.data] == [pm.id]
    assert _types(emulator)[-3:] == [
        "setup_intent.created",
        "payment_method.attached",
        "setup_intent.succeeded",
    ]
    attempts = await client.v1.setup_attempts.list_async(params={"setup_intent": seti.id})
    assert [(a.id, a.status) for a in attempts.data] == [(done.latest_attempt, "succeeded")]
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.setup_intents.confirm_async(
            seti.id, params={"payment_method": "pm_card_visa"}
        )
    assert again.value.code == "setup_intent_unexpected_state"
    # Objects and event payloads follow Stripe's fixtures.
    fixtures = _fixtures()
    samples = [as_dict(done), *emulator.objects("setup_attempt")]
    samples += [e["data"]["object"] for e in emulator.events()]
    problems = [
        p for obj in samples for p in shape_problems(obj["object"], obj, fixtures[obj["object"]])
    ]
    assert problems == []


async def test_a_refused_card_records_the_failed_attempt(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    seti = await _intent(client, customer=customer.id)
    with pytest.raises(stripe.CardError) as refused:
        await client.v1.setup_intents.confirm_async(
            seti.id, params={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
        )
    assert refused.value.code == "card_declined"
    failed = await client.v1.setup_intents.retrieve_async(seti.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_setup_error is not None
    assert failed.last_setup_error.decline_code == "insufficient_funds"
    assert "setup_intent.setup_failed" in _types(emulator)
    assert (await client.v1.customers.payment_methods.list_async(customer.id)).data == []
    # The customer tries another card: the same intent succeeds.
    ok = await client.v1.setup_intents.confirm_async(
        seti.id, params={"payment_method": "pm_card_visa"}
    )
    assert ok.status == "succeeded"
    attempts = await client.v1.setup_attempts.list_async(params={"setup_intent": seti.id})
    assert [a.status for a in attempts.data] == ["succeeded", "failed"]


async def test_three_d_secure_needs_the_customer_and_cancel_ends_it(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    seti = await _intent(client, payment_method="pm_card_authenticationRequired", confirm=True)
    assert seti.status == "requires_action"
    assert seti.next_action is not None
    assert seti.next_action.type == "use_stripe_sdk"
    canceled = await client.v1.setup_intents.cancel_async(
        seti.id, params={"cancellation_reason": "abandoned"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.setup_intents.cancel_async(seti.id)
    assert _types(emulator, "setup_intent.")[-2:] == [
        "setup_intent.requires_action",
        "setup_intent.canceled",
    ]


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"payment_method_types[0]": "sepa_debit"}, "payment_method_types"),
        ({"mandate_data[customer_acceptance][type]": "online"}, "mandate_data"),
        ({"payment_method_options[card][request_three_d_secure]": "any"}, "payment_method_options"),
        ({"on_behalf_of": "acct_1"}, "on_behalf_of"),
    ],
)
async def test_unsupported_parameters_are_refused(
    http: httpx.AsyncClient, emulator: Emulator, data: dict[str, str], param: str
) -> None:
    answer = await http.post("/v1/setup_intents", headers=auth(), data=data)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param
    assert "not supported by the emulator" in error["message"]
    assert emulator.objects("setup_intent") == []


async def test_bad_inputs_are_stripes_errors(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await _intent(client, customer="cus_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as usage:
        await _intent(client, usage="sometimes")
    assert usage.value.param == "usage"
    with pytest.raises(stripe.InvalidRequestError) as alone:
        await _intent(client, return_url="https://app.test/back")
    assert alone.value.param == "return_url"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.setup_intents.retrieve_async("seti_missing")
    assert unknown.value.http_status == 404
    assert emulator.objects("setup_intent") == []


async def test_an_idempotency_key_makes_one_intent(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    options: Any = {"idempotency_key": "seti-1"}
    one = await client.v1.setup_intents.create_async(
        params={"customer": customer.id}, options=options
    )
    two = await client.v1.setup_intents.create_async(
        params={"customer": customer.id}, options=options
    )
    assert one.id == two.id
    assert len(emulator.objects("setup_intent")) == 1


# --- the hosted page, mounted under a prefix -------------------------------------------------
@pytest.fixture
async def mounted() -> AsyncIterator[tuple[Emulator, httpx.AsyncClient]]:
    """The emulator mounted at /stripe-emulator inside a host app, driven in-process."""
    emulator = Emulator("http://host.test" + PREFIX)
    host = Starlette(routes=[Mount(PREFIX, app=emulator.app)])
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://host.test") as browser:
        yield emulator, browser


async def _api(browser: httpx.AsyncClient, path: str, data: dict[str, str]) -> dict[str, Any]:
    answer = await browser.post(f"{PREFIX}/v1/{path}", headers=auth(), data=data)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _action(page: httpx.Response) -> str:
    """The absolute URL the page's form posts to, resolved as a browser resolves it."""
    marker = "<form method='post' action='"
    start = page.text.index(marker) + len(marker)
    return urljoin(str(page.url), page.text[start : page.text.index("'", start)])


async def test_the_hosted_page_confirms_and_redirects_under_a_prefix(
    mounted: tuple[Emulator, httpx.AsyncClient],
) -> None:
    emulator, browser = mounted
    customer = await _api(browser, "customers", {"email": "page@example.com"})
    seti = await _api(browser, "setup_intents", {"customer": customer["id"]})
    page_url = f"{PREFIX}/setup/{seti['id']}"
    params = {"client_secret": seti["client_secret"], "return_url": RETURN}
    shown = await browser.get(page_url, params=params)
    assert shown.status_code == 200
    assert "Save card" in shown.text
    assert "page@example.com" in shown.text
    action = _action(shown)
    assert action == f"http://host.test{PREFIX}/setup/{seti['id']}/confirm"

    # A refused card: the page again (402), the attempt recorded, forms still post right.
    refused = await browser.post(action, data={**params, "card": "pm_card_chargeDeclined"})
    assert refused.status_code == 402
    assert "declined" in refused.text
    assert _action(refused) == action
    [stored] = emulator.objects("setup_intent")
    assert stored["status"] == "requires_payment_method"
    assert stored["last_setup_error"]["decline_code"] == "generic_decline"

    # 3D Secure is completed on the page: the customer is there.
    done = await browser.post(action, data={**params, "card": "pm_card_authenticationRequired"})
    assert done.status_code == 303
    location = urlsplit(done.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "app.test", "/billing")
    query = parse_qs(location.query)
    assert query == {
        "tab": ["cards"],
        "setup_intent": [seti["id"]],
        "setup_intent_client_secret": [seti["client_secret"]],
        "redirect_status": ["succeeded"],
    }
    [stored] = emulator.objects("setup_intent")
    assert stored["status"] == "succeeded"
    pm = next(p for p in emulator.objects("payment_method") if p["id"] == stored["payment_method"])
    assert (pm["customer"], pm["card"]["last4"]) == (customer["id"], "3184")
    # A double-submit lands on the same redirect and saves nothing more.
    twice = await browser.post(action, data={**params, "card": "pm_card_visa"})
    assert twice.status_code == 303
    assert twice.headers["location"] == done.headers["location"]
    attached = [p for p in emulator.objects("payment_method") if p["customer"] == customer["id"]]
    assert len(attached) == 1
    again = await browser.get(page_url, params=params)
    assert "This card is saved" in again.text


async def test_the_hosted_page_needs_the_client_secret_and_a_return_url(
    mounted: tuple[Emulator, httpx.AsyncClient],
) -> None:
    emulator, browser = mounted
    seti = await _api(browser, "setup_intents", {})
    page_url = f"{PREFIX}/setup/{seti['id']}"
    wrong = await browser.get(page_url, params={"client_secret": "nope", "return_url": RETURN})
    assert wrong.status_code == 404
    missing = await browser.get(f"{PREFIX}/setup/seti_missing", params={"client_secret": "x"})
    assert missing.status_code == 404
    bad_url = await browser.get(
        page_url, params={"client_secret": seti["client_secret"], "return_url": "javascript:1"}
    )
    assert bad_url.status_code == 400
    posted = await browser.post(
        f"{page_url}/confirm", data={"client_secret": "nope", "return_url": RETURN}
    )
    assert posted.status_code == 404
    assert emulator.objects("payment_method") == []
    [stored] = emulator.objects("setup_intent")
    assert stored["status"] == "requires_payment_method"


# --- the customer's default payment method and default source --------------------------------
async def test_default_payment_method_and_detach_send_stripes_events(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    pm = await client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer.id}
    )
    updated = await client.v1.customers.update_async(
        customer.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    assert updated.invoice_settings is not None
    assert updated.invoice_settings.default_payment_method == pm.id
    [changed] = [
        e
        for e in emulator.events("customer.updated")
        if e["data"]["object"]["invoice_settings"]["default_payment_method"] == pm.id
    ]
    assert changed["data"]["previous_attributes"] == {
        "invoice_settings": {"default_payment_method": None}
    }
    await client.v1.payment_methods.detach_async(pm.id)
    [detached] = emulator.events("payment_method.detached")
    assert detached["data"]["object"]["customer"] is None
    assert detached["data"]["previous_attributes"] == {"customer": customer.id}
    after = await client.v1.customers.retrieve_async(customer.id)
    assert after.invoice_settings is not None
    assert after.invoice_settings.default_payment_method is None
    assert emulator.events("customer.updated")[0]["data"]["previous_attributes"] == {
        "invoice_settings": {"default_payment_method": pm.id}
    }


async def test_a_source_becomes_the_default_source_and_pays(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    with_source = await client.v1.customers.update_async(customer.id, params={"source": "tok_visa"})
    source = str(with_source.default_source)
    assert source.startswith("card_")
    [created] = emulator.events("customer.source.created")
    assert created["data"]["object"]["object"] == "card"
    problems = shape_problems("card", created["data"]["object"], _fixtures()["card"])
    assert problems == []
    second = await client.v1.customers.update_async(
        customer.id, params={"source": "tok_mastercard"}
    )
    assert second.default_source == source  # a default exists: the new card does not take over
    listed = await client.v1.customers.payment_methods.list_async(customer.id)
    assert {m.id for m in listed.data} >= {source}
    # No default payment method: the default source pays, even with error_if_incomplete.
    price = await make_plan(client, amount=1200)
    sub = await client.v1.subscriptions.create_async(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "payment_behavior": "error_if_incomplete",
            "expand": ["latest_invoice.payments"],
        }
    )
    assert sub.status == "active"
    charges = emulator.objects("charge")
    assert [c["payment_method"] for c in charges] == [source]
    # Detaching the default source hands the default to the other card.
    await client.v1.payment_methods.detach_async(source)
    after = await client.v1.customers.retrieve_async(customer.id)
    assert after.default_source not in (None, source)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.customers.update_async(customer.id, params={"default_source": "card_x"})
    assert unknown.value.param == "default_source"
    with pytest.raises(stripe.InvalidRequestError) as token:
        await client.v1.customers.update_async(customer.id, params={"source": "tok_nope"})
    assert token.value.param == "source"


async def test_a_renewal_charges_the_customers_current_default(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": START})
    customer = await make_customer(client, test_clock=clock.id)
    price = await make_plan(client, amount=900)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert sub.default_payment_method is None
    # The customer saves a new card and makes it the default: the renewal charges it.
    seti = await _intent(client, customer=customer.id, payment_method="pm_card_amex", confirm=True)
    await client.v1.customers.update_async(
        customer.id, params={"invoice_settings": {"default_payment_method": seti.payment_method}}
    )
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": sub.items.data[0].current_period_end + DAY}
    )
    renewal = emulator.objects("charge")[0]
    assert (renewal["payment_method"], renewal["status"]) == (seti.payment_method, "succeeded")
