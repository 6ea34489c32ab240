"""What Stripe refuses, the emulator refuses too: currencies, emails, URLs, amounts, webhook
endpoint settings — each with Stripe's error envelope, status and ``param``."""

from __future__ import annotations

import typing
from typing import Any

import httpx
import pytest
import stripe
from stripe.params import WebhookEndpointCreateParams

from emulator_helpers import SDK_HTTPX_WARNING, auth, make_customer, make_plan
from stripe_emulator import reference

pytestmark = [SDK_HTTPX_WARNING]


def _sdk_literal(field: str) -> set[str]:
    annotation = WebhookEndpointCreateParams.__annotations__[field]
    while typing.get_origin(annotation) is not typing.Literal:
        (annotation,) = typing.get_args(annotation)
    return set(typing.get_args(annotation))


def test_the_emulator_knows_every_version_and_event_type_the_sdk_knows() -> None:
    assert set(reference.STRIPE_API_VERSIONS) == _sdk_literal("api_version")
    assert reference.EVENT_TYPES | {"*"} == _sdk_literal("enabled_events")
    assert set(reference.EMULATED_API_VERSIONS) <= set(reference.STRIPE_API_VERSIONS)


def _error(exc: pytest.ExceptionInfo[stripe.StripeError]) -> dict[str, Any]:
    assert exc.value.http_status == 400
    body = exc.value.json_body
    assert body is not None
    error: dict[str, Any] = body["error"]
    assert error["type"] == "invalid_request_error"
    return error


async def test_unknown_currency_is_refused_on_prices_intents_and_checkout(
    client: stripe.StripeClient,
) -> None:
    product = await client.v1.products.create_async(params={"name": "Pro"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.prices.create_async(
            params={"product": product.id, "currency": "zzz", "unit_amount": 100}
        )
    error = _error(exc)
    assert error["param"] == "currency"
    assert error["message"].startswith("Invalid currency: zzz. Stripe currently supports")

    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.create_async(params={"amount": 500, "currency": "zzz"})
    assert _error(exc)["param"] == "currency"

    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.checkout.sessions.create_async(
            params={
                "mode": "payment",
                "success_url": "https://shop.test/ok",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "zzz",
                            "unit_amount": 500,
                            "product_data": {"name": "Sticker"},
                        },
                    }
                ],
            }
        )
    assert _error(exc)["param"] == "line_items[0][price_data][currency]"
    # Upper case is accepted and stored lower case, as on Stripe.
    price = await client.v1.prices.create_async(
        params={"product": product.id, "currency": "EUR", "unit_amount": 100}
    )
    assert price.currency == "eur"


@pytest.mark.parametrize("email", ["otameshi@com", "user@gmail", " a@example.com", "no-at-sign"])
async def test_invalid_customer_email_is_refused(client: stripe.StripeClient, email: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.customers.create_async(params={"email": email})
    error = _error(exc)
    assert (error["code"], error["param"]) == ("email_invalid", "email")
    assert error["message"] == f"Invalid email address: {email}"


async def test_customer_email_update_is_validated_too(client: stripe.StripeClient) -> None:
    customer = await client.v1.customers.create_async(params={"email": "ok@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.customers.update_async(customer.id, params={"email": "broken@"})
    assert _error(exc)["code"] == "email_invalid"
    assert (await client.v1.customers.retrieve_async(customer.id)).email == "ok@example.com"
    cleared = await client.v1.customers.update_async(customer.id, params={"email": ""})
    assert cleared.email is None


@pytest.mark.parametrize("key", ["success_url", "cancel_url"])
async def test_checkout_urls_must_be_urls(client: stripe.StripeClient, key: str) -> None:
    price = await make_plan(client)
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": "https://shop.test/ok?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.test/cancel",
    }
    await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]
    params[key] = "not a url"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]
    error = _error(exc)
    assert (error["code"], error["param"], error["message"]) == (
        "url_invalid",
        key,
        "Not a valid URL",
    )


async def test_checkout_customer_email_is_validated(client: stripe.StripeClient) -> None:
    price = await make_plan(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "https://shop.test/ok",
                "customer_email": "buyer@localhost",
            }
        )
    assert (_error(exc)["param"]) == "customer_email"


async def test_portal_return_url_must_be_a_url(client: stripe.StripeClient) -> None:
    customer = await make_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.billing_portal.sessions.create_async(
            params={"customer": customer.id, "return_url": "/account"}
        )
    assert (_error(exc)["code"], _error(exc)["param"]) == ("url_invalid", "return_url")


async def test_payment_intent_amount_above_stripe_maximum(client: stripe.StripeClient) -> None:
    top = await client.v1.payment_intents.create_async(
        params={"amount": 99_999_999, "currency": "usd"}
    )
    assert top.amount == 99_999_999
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.create_async(
            params={"amount": 100_000_000, "currency": "usd"}
        )
    error = _error(exc)
    assert (error["code"], error["param"]) == ("amount_too_large", "amount")
    assert error["message"] == "Amount must be no more than 999,999.99 usd."
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.update_async(top.id, params={"amount": 100_000_000})
    assert _error(exc)["code"] == "amount_too_large"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.create_async(
            params={"amount": 100_000_000, "currency": "jpy"}
        )
    assert _error(exc)["message"] == "Amount must be no more than 99,999,999 jpy."
    rupiah = await client.v1.payment_intents.create_async(
        params={"amount": 999_999_999_999, "currency": "idr"}  # twelve digits for idr
    )
    assert rupiah.amount == 999_999_999_999
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.create_async(
            params={"amount": 1_000_000_000_000, "currency": "idr"}
        )
    assert _error(exc)["code"] == "amount_too_large"


async def test_payment_intent_amount_below_stripe_minimum(client: stripe.StripeClient) -> None:
    for amount, currency in ((1499, "czk"), (999, "mxn"), (29, "gbp")):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            await client.v1.payment_intents.create_async(
                params={"amount": amount, "currency": currency}
            )
        assert (_error(exc)["code"], _error(exc)["param"]) == ("amount_too_small", "amount")
    assert _error(exc)["message"] == "Amount must be at least 0.30 gbp."
    least = await client.v1.payment_intents.create_async(params={"amount": 1500, "currency": "czk"})
    assert least.amount == 1500
    # Other currencies are checked by Stripe after conversion, which the emulator cannot do.
    assert (
        await client.v1.payment_intents.create_async(params={"amount": 1, "currency": "idr"})
    ).amount == 1


async def _endpoint(http: httpx.AsyncClient, data: dict[str, Any]) -> httpx.Response:
    return await http.post(
        "/v1/webhook_endpoints", headers=auth(), data={"url": "https://hooks.test/x", **data}
    )


@pytest.mark.parametrize(
    "events", [["customer.created", "customer.exploded"], ["customer.*"], [""]]
)
async def test_webhook_endpoint_enabled_events_must_be_stripe_event_types(
    http: httpx.AsyncClient, events: list[str]
) -> None:
    answer = await _endpoint(
        http, {f"enabled_events[{i}]": event for i, event in enumerate(events)}
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == f"enabled_events[{len(events) - 1}]"
    assert error["message"].startswith(f"Invalid enabled_events[{len(events) - 1}]: must be one")
    assert (await http.get("/v1/webhook_endpoints", headers=auth())).json()["data"] == []


async def test_webhook_endpoint_update_checks_enabled_events(
    client: stripe.StripeClient,
) -> None:
    endpoint = await client.v1.webhook_endpoints.create_async(
        params={"url": "https://hooks.test/x", "enabled_events": ["invoice.paid"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.webhook_endpoints.update_async(
            endpoint.id,
            params={"enabled_events": ["invoice.paid", "invoice.nope"]},  # type: ignore[list-item]
        )
    assert _error(exc)["param"] == "enabled_events[1]"


async def test_webhook_endpoint_api_version_must_be_known(http: httpx.AsyncClient) -> None:
    invented = await _endpoint(http, {"enabled_events[0]": "*", "api_version": "2099-01-01"})
    assert invented.status_code == 400
    assert invented.json()["error"] == {
        "type": "invalid_request_error",
        "message": "Invalid Stripe API version: 2099-01-01",
        "param": "api_version",
    }
    old = await _endpoint(http, {"enabled_events[0]": "*", "api_version": "2020-08-27"})
    assert old.status_code == 400
    assert "not supported by the emulator" in old.json()["error"]["message"]
    pinned = await _endpoint(http, {"enabled_events[0]": "*", "api_version": "2026-09-30.endive"})
    assert pinned.status_code == 200
    assert pinned.json()["api_version"] == "2026-09-30.endive"
