"""Webhook delivery: Stripe's signature, retries, and the ordering/duplication/delay knobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe

from emulator_helpers import RECEIVER_URL, SDK_HTTPX_WARNING, Receiver, make_customer, sdk_client
from stripe_emulator import Emulator, EmulatorServer, UvicornThread
from stripe_emulator.signing import signature_header

pytestmark = [SDK_HTTPX_WARNING]


@pytest.fixture
async def endpoint(client: stripe.StripeClient, receiver: Receiver) -> stripe.WebhookEndpoint:
    created = await client.v1.webhook_endpoints.create_async(
        params={"url": RECEIVER_URL, "enabled_events": ["*"]}
    )
    receiver.secret = created.secret
    return created


def test_signature_header_matches_the_sdk_verifier() -> None:
    payload = '{"id": "evt_1", "object": "event"}'
    header = signature_header(["whsec_abc"], 1_700_000_000, payload)
    assert header.startswith("t=1700000000,v1=")
    stripe.WebhookSignature.verify_header(payload, header, "whsec_abc", tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, header, "whsec_other", tolerance=None)


@pytest.mark.usefixtures("endpoint")
async def test_events_arrive_signed_and_verifiable(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    customer = await client.v1.customers.create_async(
        params={"email": "hook@example.com"}, options={"idempotency_key": "org-9:customer"}
    )
    await emulator.flush_deliveries()
    assert receiver.rejected == []
    assert receiver.types() == ["customer.created"]
    event = receiver.events[0]
    assert event.data.object["id"] == customer.id
    assert event.request is not None
    assert event.request.idempotency_key == "org-9:customer"
    assert event.api_version == "2026-10-28.endive"
    stored = await client.v1.events.retrieve_async(event.id)
    assert stored.pending_webhooks == 0
    assert (await client.v1.events.list_async(params={"delivery_success": False})).data == []


async def test_non_2xx_is_retried_with_backoff(
    client: stripe.StripeClient,
    emulator: Emulator,
    receiver: Receiver,
    endpoint: stripe.WebhookEndpoint,
) -> None:
    emulator.configure_deliveries(retry_base_seconds=0.01, max_attempts=5)
    receiver.fail_next = 2
    await client.v1.customers.create_async(params={"email": "retry@example.com"})
    await emulator.flush_deliveries()
    assert receiver.hits == 3
    assert receiver.types() == ["customer.created"]
    (delivery,) = emulator.deliveries()
    assert [a["status"] for a in delivery["attempts"]] == [503, 503, 200]
    assert delivery["state"] == "succeeded"
    assert delivery["endpoint_id"] == endpoint.id
    gaps = [
        b["at"] - a["at"]
        for a, b in zip(delivery["attempts"], delivery["attempts"][1:], strict=False)
    ]
    assert all(gap >= 0.005 for gap in gaps)


@pytest.mark.usefixtures("endpoint")
async def test_exhausted_deliveries_are_listed_as_not_delivered(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    emulator.configure_deliveries(retry_base_seconds=0.01, max_attempts=2)
    receiver.fail_next = 10
    customer = await client.v1.customers.create_async(params={"email": "down@example.com"})
    await emulator.flush_deliveries()
    assert receiver.hits == 2
    missed = await client.v1.events.list_async(params={"delivery_success": False})
    assert [e.data.object["id"] for e in missed.data] == [customer.id]
    assert missed.data[0].pending_webhooks == 1
    assert emulator.deliveries()[0]["state"] == "failed"


async def test_wrong_secret_is_rejected_by_the_receiver(
    client: stripe.StripeClient,
    emulator: Emulator,
    receiver: Receiver,
    endpoint: stripe.WebhookEndpoint,
) -> None:
    emulator.configure_deliveries(max_attempts=1)
    receiver.secret = "whsec_not_the_right_one"
    await client.v1.customers.create_async(params={"email": "x@example.com"})
    await emulator.flush_deliveries()
    assert receiver.events == []
    assert len(receiver.rejected) == 1
    assert "No signatures found matching the expected signature" in receiver.rejected[0]
    assert endpoint.secret is not None


@pytest.mark.usefixtures("endpoint")
async def test_pause_resume_and_out_of_order(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    emulator.pause_deliveries()
    customer = await client.v1.customers.create_async(params={"email": "o@example.com"})
    await client.v1.customers.update_async(customer.id, params={"name": "Later"})
    await emulator.flush_deliveries()  # paused: returns at once, nothing sent
    assert receiver.hits == 0
    assert emulator.pending_deliveries() == 2

    emulator.configure_deliveries(out_of_order=True)
    emulator.resume_deliveries()
    await emulator.flush_deliveries()
    assert receiver.types() == ["customer.updated", "customer.created"]
    assert receiver.events[0].data.previous_attributes is not None
    assert receiver.events[0].data.previous_attributes.to_dict() == {"name": None}


@pytest.mark.usefixtures("endpoint")
async def test_duplicates_carry_the_same_event_id(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    emulator.configure_deliveries(duplicates=2)
    await client.v1.customers.create_async(params={"email": "dup@example.com"})
    await emulator.flush_deliveries()
    assert receiver.types() == ["customer.created"] * 3
    assert len({e.id for e in receiver.events}) == 1
    assert (await client.v1.events.list_async(params={"delivery_success": True})).data


@pytest.mark.usefixtures("endpoint")
async def test_delay_holds_deliveries_until_flushed(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    emulator.configure_deliveries(delay_seconds=60)
    await client.v1.customers.create_async(params={"email": "late@example.com"})
    await asyncio.sleep(0.1)  # the worker is running; it must hold the delivery back
    assert receiver.hits == 0
    await emulator.flush_deliveries()
    assert receiver.types() == ["customer.created"]


async def test_enabled_events_filter_and_secret_roll(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    only_payments = await client.v1.webhook_endpoints.create_async(
        params={"url": RECEIVER_URL, "enabled_events": ["payment_intent.succeeded"]}
    )
    old_secret = only_payments.secret
    assert old_secret is not None
    rolled = await http.post(f"/_emulator/webhook_endpoints/{only_payments.id}/roll_secret")
    new_secret = rolled.json()["secret"]
    receiver.secret = new_secret
    await make_customer(client, card=None)
    await client.v1.payment_intents.create_async(
        params={"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    await emulator.flush_deliveries()
    assert receiver.types() == ["payment_intent.succeeded"]
    deliveries = emulator.deliveries()
    assert len(deliveries) == 1
    # During a roll both secrets sign: a receiver still on the old secret verifies too.
    receiver.secret = old_secret
    await client.v1.payment_intents.create_async(
        params={"amount": 800, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    await emulator.flush_deliveries()
    assert receiver.rejected == []
    assert len(receiver.events) == 2


async def test_delivery_knobs_over_the_control_api(
    client: stripe.StripeClient,
    http: httpx.AsyncClient,
    receiver: Receiver,
    endpoint: stripe.WebhookEndpoint,
) -> None:
    assert endpoint.id.startswith("we_")
    paused = await http.post("/_emulator/deliveries/pause")
    assert paused.json()["knobs"]["paused"] is True
    await client.v1.customers.create_async(params={"email": "ctl@example.com"})
    listing = await http.get("/_emulator/deliveries")
    assert [d["state"] for d in listing.json()["deliveries"]] == ["pending"]
    await http.post(
        "/_emulator/deliveries/config", json={"paused": False, "retry_base_seconds": 0.01}
    )
    flushed = await http.post("/_emulator/deliveries/flush", json={"timeout": 5})
    assert flushed.json() == {"pending": 0}
    assert receiver.types() == ["customer.created"]
    bad = await http.post("/_emulator/deliveries/config", json={"nonsense": 1})
    assert bad.status_code == 400


@pytest.fixture
async def real_receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    with UvicornThread(hook.app) as served:
        yield hook, f"{served.url}/webhook"


async def test_delivery_over_real_http_from_the_server_thread(
    real_receiver: tuple[Receiver, str],
) -> None:
    hook, url = real_receiver
    emulator = Emulator()  # its own httpx client, worker on the server's loop (lifespan)
    with EmulatorServer(emulator) as served:
        async with sdk_client(served.url) as sdk:
            created = await sdk.v1.webhook_endpoints.create_async(
                params={"url": url, "enabled_events": ["customer.created"]}
            )
            hook.secret = created.secret
            await sdk.v1.customers.create_async(params={"email": "wire@example.com"})
            await emulator.flush_deliveries(timeout=5)
    assert hook.types() == ["customer.created"]
    assert hook.rejected == []


async def test_in_process_delivery_without_a_server(receiver: Receiver) -> None:
    """Mounted or in-process use: no lifespan, deliveries start lazily on the caller's loop."""
    emulator = Emulator(
        "http://emulator.test",
        delivery_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app)),
    )
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as raw:
        headers = {"Authorization": "Bearer sk_test_inprocess"}
        created = await raw.post(
            "/v1/webhook_endpoints",
            data={"url": RECEIVER_URL, "enabled_events[]": "*"},
            headers=headers,
        )
        receiver.secret = created.json()["secret"]
        await raw.post("/v1/customers", data={"email": "inproc@example.com"}, headers=headers)
    await emulator.flush_deliveries()
    await emulator.aclose()
    assert receiver.types() == ["customer.created"]


async def test_payload_reports_pending_webhooks_and_the_endpoint_api_version(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    pinned = await client.v1.webhook_endpoints.create_async(
        params={
            "url": RECEIVER_URL,
            "enabled_events": ["customer.created"],
            "api_version": "2026-09-30.endive",
        }
    )
    receiver.secret = pinned.secret
    assert pinned.api_version == "2026-09-30.endive"
    await client.v1.customers.create_async(params={"email": "pinned@example.com"})
    await emulator.flush_deliveries()
    (delivered,) = receiver.events
    # Rendered in the endpoint's version; the payload counts this delivery as still pending.
    assert delivered.api_version == "2026-09-30.endive"
    assert delivered.pending_webhooks == 1
    stored = await client.v1.events.retrieve_async(delivered.id)
    assert stored.api_version == "2026-10-28.endive"
    assert stored.pending_webhooks == 0
