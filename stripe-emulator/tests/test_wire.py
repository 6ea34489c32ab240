"""Stripe's wire conventions: form encoding, auth, versions, errors, idempotency, lists, expand."""

from __future__ import annotations

import httpx
import pytest
import stripe

from emulator_helpers import (
    API_KEY,
    API_VERSION,
    SDK_HTTPX_WARNING,
    auth,
    make_customer,
    make_plan,
    sdk_client,
)
from stripe_emulator import Emulator
from stripe_emulator.errors import StripeError
from stripe_emulator.forms import Params, decode, parse_pairs

pytestmark = [SDK_HTTPX_WARNING]


def test_decode_nests_brackets_indexes_and_appends() -> None:
    pairs = parse_pairs(
        "items[0][price]=price_a&items[0][quantity]=2&items[1][price]=price_b"
        "&metadata[org]=acme&metadata[tier]=&expand[]=customer&expand[]=latest_invoice"
        "&description=a%20b"
    )
    assert decode(pairs) == {
        "items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "metadata": {"org": "acme", "tier": ""},
        "expand": ["customer", "latest_invoice"],
        "description": "a b",
    }


def test_params_report_stripe_style_errors() -> None:
    params = Params(decode(parse_pairs("amount=12x&items[0][quantity]=1")))
    with pytest.raises(StripeError) as invalid:
        params.integer("amount")
    assert (invalid.value.status, invalid.value.code) == (400, "parameter_invalid_integer")
    with pytest.raises(StripeError) as missing:
        params.hashes("items")[0].string("price", required=True)
    assert missing.value.param == "items[0][price]"
    assert missing.value.code == "parameter_missing"
    with pytest.raises(StripeError) as unknown:
        params.only(("items",))
    assert unknown.value.message == "Received unknown parameter: amount"


async def test_missing_and_malformed_keys_get_401(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/customers")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in missing.json()["error"]["message"]

    malformed = await http.get("/v1/customers", headers=auth("pk_test_publishable"))
    assert malformed.status_code == 401
    assert malformed.json()["error"]["message"].startswith("Invalid API Key provided")

    async with sdk_client(str(http.base_url), api_key="sk_live_not_accepted_here") as live:
        with pytest.raises(stripe.AuthenticationError):
            await live.v1.customers.list_async()


async def test_stripe_version_is_echoed_and_validated(http: httpx.AsyncClient) -> None:
    ok = await http.get("/v1/customers", headers={**auth(), "Stripe-Version": API_VERSION})
    assert ok.status_code == 200
    assert ok.headers["stripe-version"] == API_VERSION
    assert ok.headers["request-id"].startswith("req_")
    bad = await http.get("/v1/customers", headers={**auth(), "Stripe-Version": "yesterday"})
    assert bad.status_code == 400
    assert "Invalid Stripe API version" in bad.json()["error"]["message"]


@pytest.mark.parametrize("version", ["2099-01-01", "2026-10-29.endive", "2026-10-28.zinnia"])
async def test_a_version_stripe_never_published_is_refused(
    http: httpx.AsyncClient, version: str
) -> None:
    answer = await http.get("/v1/customers", headers={**auth(), "Stripe-Version": version})
    assert answer.status_code == 400
    # Stripe's own answer: no code, no param.
    assert answer.json()["error"] == {
        "type": "invalid_request_error",
        "message": f"Invalid Stripe API version: {version}",
    }


async def test_a_real_version_the_emulator_does_not_render_is_refused_clearly(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post(
        "/v1/customers", headers={**auth(), "Stripe-Version": "2025-08-27.basil"}, data={}
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "not supported by the emulator" in error["message"]
    assert (await http.get("/v1/customers", headers=auth())).json()["data"] == []
    same_release = await http.get(
        "/v1/customers", headers={**auth(), "Stripe-Version": "2026-09-30.endive"}
    )
    assert same_release.status_code == 200
    assert same_release.headers["stripe-version"] == "2026-09-30.endive"


async def test_unknown_url_parameter_and_object(
    http: httpx.AsyncClient, client: stripe.StripeClient
) -> None:
    nowhere = await http.post("/v1/widgets", headers=auth())
    assert nowhere.status_code == 404
    assert "Unrecognized request URL (POST: /v1/widgets)" in nowhere.json()["error"]["message"]

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.customers.create_async(params={"emial": "typo@example.com"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.http_status == 400
    assert unknown.value.code == "parameter_unknown"
    assert unknown.value.param == "emial"

    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.customers.retrieve_async("cus_doesnotexist")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    assert missing.value.param == "id"


async def test_idempotent_replay_returns_the_first_response(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "org-1:create-customer"}
    first = await client.v1.customers.create_async(
        params={"email": "one@example.com"}, options=options
    )
    again = await client.v1.customers.create_async(
        params={"email": "one@example.com"}, options=options
    )
    assert again.id == first.id
    assert len(emulator.objects("customer")) == 1
    assert len(emulator.events("customer.created")) == 1

    raw = await http.post(
        "/v1/customers",
        content="email=one%40example.com",
        headers={
            **auth(),
            "Idempotency-Key": "org-1:create-customer",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert raw.status_code == 200
    assert raw.headers["idempotent-replayed"] == "true"
    assert raw.json()["id"] == first.id


async def test_idempotency_key_with_different_parameters_is_refused(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "org-2:create-customer"}
    await client.v1.customers.create_async(params={"email": "a@example.com"}, options=options)
    with pytest.raises(stripe.IdempotencyError) as conflict:
        await client.v1.customers.create_async(params={"email": "b@example.com"}, options=options)
    assert conflict.value.http_status == 400
    assert len(emulator.objects("customer")) == 1


async def test_declines_are_replayed_with_their_402(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "order-7:pay"}
    params: stripe.PaymentIntentService.CreateParams = {
        "amount": 1500,
        "currency": "usd",
        "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
        "confirm": True,
    }
    for _ in range(2):
        with pytest.raises(stripe.CardError) as declined:
            await client.v1.payment_intents.create_async(params=params, options=options)
        assert declined.value.http_status == 402
        assert declined.value.code == "card_declined"
        assert declined.value.error is not None
        assert declined.value.error.decline_code == "insufficient_funds"
    assert len(emulator.objects("payment_intent")) == 1
    assert len(emulator.objects("charge")) == 1


async def test_validation_failures_do_not_burn_the_key(client: stripe.StripeClient) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "fix-and-retry"}
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.prices.create_async(params={"currency": "usd"}, options=options)  # type: ignore[typeddict-item]
    product = await client.v1.products.create_async(params={"name": "Fixed"})
    price = await client.v1.prices.create_async(
        params={"currency": "usd", "unit_amount": 100, "product": product.id}, options=options
    )
    assert price.unit_amount == 100


async def test_cursor_pagination(client: stripe.StripeClient) -> None:
    created = [
        (await client.v1.customers.create_async(params={"email": f"c{i}@example.com"})).id
        for i in range(5)
    ]
    newest_first = list(reversed(created))
    page = await client.v1.customers.list_async(params={"limit": 2})
    assert [c.id for c in page.data] == newest_first[:2]
    assert page.has_more is True
    assert page.url == "/v1/customers"
    following = await client.v1.customers.list_async(
        params={"limit": 2, "starting_after": page.data[-1].id}
    )
    assert [c.id for c in following.data] == newest_first[2:4]
    before = await client.v1.customers.list_async(
        params={"limit": 2, "ending_before": newest_first[4]}
    )
    assert [c.id for c in before.data] == newest_first[2:4]
    assert before.has_more is True
    everything = [
        c.id
        async for c in (
            await client.v1.customers.list_async(params={"limit": 2})
        ).auto_paging_iter()
    ]
    assert everything == newest_first
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.customers.list_async(params={"limit": 101})


async def test_expand_subscription_and_list_members(client: stripe.StripeClient) -> None:
    price = await make_plan(client)
    customer = await make_customer(client)
    sub = await client.v1.subscriptions.create_async(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice", "customer", "items.data.price.product"],
        }
    )
    assert sub.latest_invoice.object == "invoice"  # type: ignore[union-attr]
    assert sub.customer.email == "buyer@example.com"  # type: ignore[union-attr]
    assert sub.items.data[0].price.product.name == "Pro"  # type: ignore[union-attr]

    listed = await client.v1.subscriptions.list_async(params={"expand": ["data.customer"]})
    assert listed.data[0].customer.id == customer.id  # type: ignore[union-attr]

    with pytest.raises(stripe.InvalidRequestError) as bad:
        await client.v1.subscriptions.retrieve_async(sub.id, params={"expand": ["nonsense"]})
    assert "cannot be expanded" in str(bad.value.user_message)


async def test_search_by_metadata(client: stripe.StripeClient) -> None:
    await client.v1.customers.create_async(
        params={"email": "x@example.com", "metadata": {"org": "a"}}
    )
    wanted = await client.v1.customers.create_async(
        params={"email": "y@example.com", "metadata": {"org": "b"}}
    )
    found = await client.v1.customers.search_async(params={"query": "metadata['org']:'b'"})
    assert [c.id for c in found.data] == [wanted.id]
    both = await client.v1.customers.search_async(
        params={"query": "email~'example.com' AND -metadata['org']:'zzz'"}
    )
    assert len(both.data) == 2


async def test_basic_auth_and_api_key_variants(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/customers", auth=(API_KEY, ""))
    assert response.status_code == 200
    assert response.json()["object"] == "list"


async def test_a_failed_write_changes_nothing(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    await client.v1.webhook_endpoints.create_async(
        params={"url": "https://hooks.test/x", "enabled_events": ["*"]}
    )
    emulator.pause_deliveries()
    other = await make_customer(client)
    foreign_pm = str(other.invoice_settings.default_payment_method)
    events_before = len(emulator.events())
    with pytest.raises(stripe.InvalidRequestError):
        # The customer would be created before its default payment method is found foreign.
        await client.v1.customers.create_async(
            params={
                "email": "half@example.com",
                "invoice_settings": {"default_payment_method": foreign_pm},
            }
        )
    assert [c["id"] for c in emulator.objects("customer")] == [other.id]
    assert len(emulator.events()) == events_before
    assert emulator.pending_deliveries() == events_before
