"""Fault injection: the SDK retries with the same idempotency key and exactly one object exists."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, sdk_client
from stripe_emulator import Emulator, EmulatorServer

pytestmark = [SDK_HTTPX_WARNING]

ROUTE = ("POST", "/v1/customers")


def _one_key_seen(emulator: Emulator, times: int) -> str:
    keys = emulator.idempotency_keys(*ROUTE)
    assert len(keys) == 1, keys
    ((key, seen),) = keys.items()
    assert seen == times
    return key


@pytest.mark.parametrize("kind", ["409", "500", "503", "reset"])
async def test_failures_before_execution_are_retried(
    client: stripe.StripeClient, emulator: Emulator, kind: str
) -> None:
    emulator.inject_fault(kind, count=2, method="POST", path="/v1/customers")
    customer = await client.v1.customers.create_async(
        params={"email": "retry@example.com"}, options={"idempotency_key": "org-1:customer"}
    )
    assert _one_key_seen(emulator, 3) == "org-1:customer"
    assert [c["id"] for c in emulator.objects("customer")] == [customer.id]
    assert [e.fault for e in emulator.requests.entries] == [kind, kind, None]


@pytest.mark.parametrize("kind", ["500", "reset"])
async def test_lost_responses_are_replayed_not_repeated(
    client: stripe.StripeClient, emulator: Emulator, kind: str
) -> None:
    emulator.inject_fault(kind, when="after", path="/v1/customers")
    customer = await client.v1.customers.create_async(params={"email": "once@example.com"})
    _one_key_seen(emulator, 2)  # the SDK's own generated key, reused for its retry
    assert [c["id"] for c in emulator.objects("customer")] == [customer.id]
    assert [e.replayed for e in emulator.requests.entries] == [False, True]
    assert len(emulator.events("customer.created")) == 1


@pytest.mark.parametrize("when", ["before", "after"])
async def test_timeouts_are_retried_and_create_one_object(
    server: EmulatorServer, emulator: Emulator, when: str
) -> None:
    emulator.inject_fault("timeout", when=when, hang_seconds=10, path="/v1/customers")
    started = time.monotonic()
    async with sdk_client(server.url, http_timeout=0.3) as impatient:
        customer = await impatient.v1.customers.create_async(
            params={"email": "slow@example.com"}, options={"idempotency_key": "org-3:customer"}
        )
    assert time.monotonic() - started < 5  # our timeout fired; the hang did not run out
    _one_key_seen(emulator, 2)
    assert [c["id"] for c in emulator.objects("customer")] == [customer.id]


async def test_rate_limits_are_not_retried_unless_stripe_says_so(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    emulator.inject_fault("429", rate_limited_reason="endpoint-rate", path="/v1/customers")
    with pytest.raises(stripe.RateLimitError) as limited:
        await client.v1.customers.create_async(params={"email": "busy@example.com"})
    assert limited.value.http_status == 429
    assert limited.value.headers is not None
    assert limited.value.headers["stripe-rate-limited-reason"] == "endpoint-rate"
    assert limited.value.error is not None
    assert limited.value.error.code == "rate_limit"
    assert emulator.request_count(*ROUTE) == 1
    assert emulator.objects("customer") == []

    # Lock timeouts come with Stripe-Should-Retry: true, which the SDK honours.
    emulator.inject_fault("429", should_retry=True, path="/v1/customers")
    await client.v1.customers.create_async(params={"email": "busy@example.com"})
    assert emulator.request_count(*ROUTE) == 3
    assert len(emulator.objects("customer")) == 1


async def test_retries_run_out_and_nothing_is_created(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    emulator.inject_fault("503", count=5)
    with pytest.raises(stripe.APIError) as unavailable:
        await client.v1.customers.create_async(params={"email": "gone@example.com"})
    assert unavailable.value.http_status == 503
    _one_key_seen(emulator, 3)  # max_network_retries=2
    assert emulator.objects("customer") == []
    assert len(emulator.faults.armed()) == 1  # two shots left


async def test_faults_target_a_path_and_method(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    emulator.inject_fault("500", path="/v1/prices*", method="POST")
    await client.v1.customers.create_async(params={"email": "unaffected@example.com"})
    await client.v1.products.list_async()
    assert [e.fault for e in emulator.requests.entries] == [None, None]
    assert emulator.request_count("GET", "/v1/products") == 1


async def test_fault_and_counter_control_api(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    armed = await http.post(
        "/_emulator/faults", json={"kind": "503", "count": 1, "path": "/v1/customers"}
    )
    assert armed.json()["fault"]["kind"] == "503"
    await client.v1.customers.create_async(
        params={"email": "ctl@example.com"}, options={"idempotency_key": "k-1"}
    )
    counters = (await http.get("/_emulator/requests?method=POST&path=/v1/customers")).json()
    assert counters["count"] == 2
    assert counters["matching_idempotency_keys"] == {"k-1": 2}
    assert counters["counts"]["POST /v1/customers"] == 2
    assert (await http.get("/_emulator/faults")).json() == {"faults": []}
    state = (await http.get("/_emulator/state")).json()
    assert state["objects"]["customer"] == 1
    bad = await http.post("/_emulator/faults", json={"kind": "418"})
    assert bad.status_code == 400
    reset = await http.post("/_emulator/reset")
    assert reset.json() == {"ok": True}
    assert (await http.get("/_emulator/state")).json()["objects"]["customer"] == 0
