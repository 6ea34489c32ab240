"""Scale-out: two engine processes behind one MongoDB (the wire-protocol server) and one Stripe
(the emulator). What must be shared is shared: the webhook ledger (each event applied once), the
idempotency of Stripe writes (one object for a double-submit spread over both), the purchase
lease (two different purchases spread over both leave one payable session), usage events (the
same batches posted to both are counted once, and their billable units reported to Stripe
once by the two background reporters), the plan catalog (a change written through one is
served by the other within 1 s, under the same HTTP entity tag)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator, EmulatorServer

from revenue_engine.db import connect
from revenue_engine.documents import (
    AuditEntry,
    CheckoutSession,
    UsageCounter,
    UsageEvent,
    WebhookEvent,
)
from tests.conftest import make_settings
from tests.stripe_events import SECRET, event, post
from tests.wire import WireServer, free_port

pytestmark = pytest.mark.wire

HEADERS = {"x-organization-id": "org_scale", "x-customer-email": "scale@example.com"}
USAGE_KEY = "uk_scale_" + "s3" * 16


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as server:
        yield server


@pytest.fixture
def engines(
    wire_server: WireServer | None, stripe_server: EmulatorServer
) -> Iterator[tuple[list[str], str]]:
    """Two `revenue-engine serve` processes on one database; yields their URLs and the db name."""
    if wire_server is None:
        pytest.skip("no MongoDB wire server")
    stripe_server.emulator.reset()
    database = f"t_scale_{uuid.uuid4().hex[:8]}"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MONGODB_", "AUTH_"))
    }
    env.update(
        ENVIRONMENT="development",
        AUTH_DEV_HEADERS="true",
        MONGODB_URI=wire_server.uri,
        MONGODB_DATABASE=database,
        STRIPE_SECRET_KEY="sk_test_scale",
        STRIPE_API_BASE=stripe_server.url,
        STRIPE_WEBHOOK_SECRET=SECRET,
        LOG_LEVEL="WARNING",
        # Behind one load balancer every instance has the same public address.
        PUBLIC_BASE_URL="https://billing.example.com",
        RATE_LIMIT_STRIPE_MUTATIONS="6",
        RATE_LIMIT_WINDOW_SECONDS="600",
        USAGE_API_KEYS=USAGE_KEY,
        # Both background loops report usage, often: they race for the same counters.
        USAGE_REPORT_INTERVAL_SECONDS="0.2",
    )
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    for _ in range(2):
        port = free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "revenue_engine", "serve", "--port", str(port)],
                env=dict(env),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "engine did not become ready"
                time.sleep(0.2)
        yield urls, database
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
async def store(engines: tuple[list[str], str], wire_server: WireServer) -> AsyncIterator[None]:
    """This test process looks at the same database the engines write."""
    db = await connect(make_settings(mongodb_uri=wire_server.uri, mongodb_database=engines[1]))
    yield
    db.close()


async def gql(client: httpx.AsyncClient, url: str, query: str) -> dict[str, Any]:
    response = await client.post(f"{url}/graphql", json={"query": query}, headers=HEADERS)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


CHECKOUT = (
    'mutation { createCheckoutSession(input: {planUid: "pro", billingInterval: MONTH}) '
    "{ __typename ... on CheckoutPayload { sessionId } ... on UserError { code } } }"
)


async def test_a_double_submit_across_instances_makes_one_session(
    engines: tuple[list[str], str], stripe_server: EmulatorServer, store: None
) -> None:
    urls, _ = engines
    # The customer first (its own race is covered elsewhere), then the same purchase sent to
    # both instances at once.
    async with httpx.AsyncClient(timeout=30) as client:
        await gql(client, urls[0], "mutation { createCustomer { __typename } }")
        results = await asyncio.gather(*(gql(client, url, CHECKOUT) for url in urls))
    ids = {r["createCheckoutSession"].get("sessionId") for r in results}
    assert len(ids) == 1, results
    assert len(stripe_server.emulator.objects("checkout.session")) == 1
    assert await CheckoutSession.find_all().count() == 1


async def test_two_different_purchases_across_instances_leave_one_open_session(
    engines: tuple[list[str], str], stripe_server: EmulatorServer, store: None
) -> None:
    urls, _ = engines
    starter = CHECKOUT.replace('"pro"', '"starter"')
    async with httpx.AsyncClient(timeout=30) as client:
        await gql(client, urls[0], "mutation { createCustomer { __typename } }")
        results = await asyncio.gather(
            gql(client, urls[0], CHECKOUT), gql(client, urls[1], starter)
        )
    assert all(r["createCheckoutSession"]["__typename"] == "CheckoutPayload" for r in results)
    statuses = sorted(s["status"] for s in stripe_server.emulator.objects("checkout.session"))
    assert statuses == ["expired", "open"]  # the purchase lease is shared by the instances


async def test_the_same_events_to_both_instances_apply_once(
    engines: tuple[list[str], str], stripe_server: EmulatorServer, store: None
) -> None:
    urls, _ = engines
    emulator = stripe_server.emulator
    async with httpx.AsyncClient(timeout=30) as client:
        started = (await gql(client, urls[0], CHECKOUT))["createCheckoutSession"]
        [session] = emulator.objects("checkout.session")
        paid = await client.post(f"{session['url']}/pay", data={"card": "pm_card_visa"})
        assert paid.status_code == 303
        assert started["sessionId"] == session["id"]
        [sub] = emulator.objects("subscription")
        payload = event("customer.subscription.created", sub, created=sub["created"])
        clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in urls]
        try:
            answers = await asyncio.gather(*(post(clients[i % 2], payload) for i in range(10)))
        finally:
            for c in clients:
                await c.aclose()
    assert {a.status_code for a in answers} <= {200, 409}
    assert any(a.status_code == 200 for a in answers)
    assert await WebhookEvent.find({"event_id": payload["id"]}).count() == 1
    created = await AuditEntry.find({"kind": "subscription.created"}).to_list()
    assert len(created) == 1
    assert created[0].to_status == "active"


async def test_an_organizations_rate_limit_is_shared_by_the_instances(
    engines: tuple[list[str], str], stripe_server: EmulatorServer, store: None
) -> None:
    urls, _ = engines
    query = (
        'mutation { createPaymentIntent(input: {amount: %d, currency: "usd"}) '
        "{ __typename ... on RetryableError { code retryAfterSeconds } } }"
    )
    async with httpx.AsyncClient(timeout=30) as client:
        # Alternate instances: 6 allowed in all, whichever instance counts them.
        answers = [
            (await gql(client, urls[i % 2], query % (100 + i)))["createPaymentIntent"]
            for i in range(8)
        ]
        other = await client.post(
            f"{urls[1]}/graphql",
            json={"query": query % 999},
            headers={"x-organization-id": "org_other"},
        )
    kinds = [a["__typename"] for a in answers]
    assert kinds[:6] == ["PaymentIntentPayload"] * 6
    assert kinds[6:] == ["RetryableError"] * 2
    assert answers[6]["code"] == "RATE_LIMITED"
    assert answers[6]["retryAfterSeconds"] > 0
    made = [p for p in stripe_server.emulator.objects("payment_intent") if p["amount"] != 999]
    assert len(made) == 6
    assert other.json()["data"]["createPaymentIntent"]["__typename"] == "PaymentIntentPayload"


SUBSCRIBE_PRO_WITH_OVERAGE = (
    'mutation { createSubscription(input: {planUid: "pro", billingInterval: MONTH, '
    'overages: ["api_calls"]}) { __typename ... on SubscriptionPayload '
    "{ subscription { subscriptionId } } ... on UserError { code message } } }"
)


def _usage_batches() -> tuple[list[list[dict[str, Any]]], int]:
    """Six batches of 600 events: 500 new ids of 100 calls each, 50 ids of the batch before
    and 50 repeated from this one; and the calls of the distinct ids (300,000)."""
    batches: list[list[dict[str, Any]]] = []
    for k in range(6):
        ids = [f"s{k}_{n}" for n in range(500)]
        ids += [f"s{k - 1}_{n}" for n in range(450, 500)] if k else [f"s0_{n}" for n in range(50)]
        ids += [f"s{k}_{n}" for n in range(50, 100)]
        batches.append(
            [
                {"id": i, "organization_id": "org_scale", "feature": "api_calls", "quantity": 100}
                for i in ids
            ]
        )
    return batches, 6 * 500 * 100


async def test_the_same_usage_to_both_instances_counts_and_reports_once(
    engines: tuple[list[str], str], stripe_server: EmulatorServer, store: None
) -> None:
    urls, _ = engines
    emulator = stripe_server.emulator
    async with httpx.AsyncClient(timeout=120) as client:
        created = await gql(
            client,
            urls[0],
            "mutation { createCustomer { ... on CustomerPayload { customer { id } } } }",
        )
        customer = created["createCustomer"]["customer"]["id"]
        url = stripe_server.url
        http_client = stripe.HTTPXClient(timeout=5)
        sdk = stripe.StripeClient(
            "sk_test_scale",
            http_client=http_client,
            base_addresses={"api": url, "connect": url, "files": url, "meter_events": url},
        )
        try:
            pm = await sdk.v1.payment_methods.attach_async(
                "pm_card_visa", params={"customer": customer}
            )
            await sdk.v1.customers.update_async(
                customer, params={"invoice_settings": {"default_payment_method": pm.id}}
            )
        finally:
            await http_client.close_async()
        subscribed = (await gql(client, urls[1], SUBSCRIBE_PRO_WITH_OVERAGE))["createSubscription"]
        assert subscribed["__typename"] == "SubscriptionPayload", subscribed

        batches, distinct_calls = _usage_batches()
        headers = {"authorization": f"Bearer {USAGE_KEY}"}
        # Every batch to both instances, all at once.
        answers = await asyncio.gather(
            *(
                client.post(f"{url}/v1/usage", json={"events": batch}, headers=headers)
                for batch in batches
                for url in urls
            )
        )
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
    bodies = [a.json() for a in answers]
    sent = sum(len(b) for b in batches) * 2
    assert sum(b["accepted"] for b in bodies) == 3000  # the distinct ids
    assert sum(b["duplicates"] for b in bodies) == sent - 3000
    assert sum(b["rejected"] for b in bodies) == 0
    [counter] = await UsageCounter.find({"organization_id": "org_scale"}).to_list()
    assert counter.used == distinct_calls
    assert await UsageEvent.find({"organization_id": "org_scale"}).count() == 3000
    assert await UsageEvent.find({"counted": False}).count() == 0

    billable = distinct_calls - 250_000
    deadline = time.monotonic() + 60
    while True:
        current = await UsageCounter.get(counter.id)
        assert current is not None
        if current.reported == billable and current.inflight is None and not current.report_due:
            break
        assert time.monotonic() < deadline, f"not reported: {current}"
        await asyncio.sleep(0.1)
    [meter] = emulator.objects("billing.meter")
    assert emulator.meter_usage(meter["id"], customer) == billable
    await asyncio.sleep(1)  # several more passes of both reporters: nothing more is sent
    assert emulator.meter_usage(meter["id"], customer) == billable
    final = await UsageCounter.get(counter.id)
    assert final is not None
    assert (final.used, final.reported) == (distinct_calls, billable)


async def test_a_catalog_change_on_one_instance_is_served_by_the_other_within_a_second(
    engines: tuple[list[str], str],
) -> None:
    """The plan cache's promise (``services.plan_cache``): the writing instance serves the
    change at once, every other one within 1 s; their HTTP entity tags agree."""
    urls, _ = engines
    admin = {**HEADERS, "x-roles": "admin"}
    plans = {"query": "{ plans { uid } }"}

    async def on_sale(client: httpx.AsyncClient, url: str) -> list[str]:
        response = await client.get(f"{url}/graphql", params=plans)
        assert response.status_code == 200, response.text
        return [p["uid"] for p in response.json()["data"]["plans"]]

    async with httpx.AsyncClient(timeout=30) as client:
        for url in urls:  # both caches built, before the write
            assert "starter" in await on_sale(client, url)
        archived = await client.post(
            f"{urls[0]}/graphql",
            json={"query": 'mutation { archivePlan(uid: "starter") { __typename } }'},
            headers=admin,
        )
        written = time.perf_counter()
        assert archived.json()["data"]["archivePlan"]["__typename"] == "PlanPayload"
        assert "starter" not in await on_sale(client, urls[0])  # the writer: at once
        while "starter" in await on_sale(client, urls[1]):
            assert time.perf_counter() - written <= 1.0, "the other instance still sells it"
            await asyncio.sleep(0.02)
        seen_after = time.perf_counter() - written
        tags = [(await client.get(f"{url}/graphql", params=plans)).headers["etag"] for url in urls]
    assert seen_after <= 1.0
    assert tags[0] == tags[1]  # one catalog, one tag: a CDN in front of both can revalidate
