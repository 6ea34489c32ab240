"""Scale-out: two engine processes (uvicorn, one worker each) on one wire-protocol database,
talking to one Stripe emulator, share what they must:

* the same webhook events POSTed to both at once are each applied once, with one ledger row;
* a checkout double-submitted across both makes one Stripe session and one customer;
* an organization's rate limit is one limit, whichever process counts the calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from revenue_engine.db import connect
from revenue_engine.documents import WebhookEvent
from revenue_engine.emulator import Emulator
from revenue_engine.emulator.server import EmulatorServer
from tests.conftest import make_settings
from tests.e2e.ops import CHECKOUT, CREATE_CUSTOMER
from tests.stripe_events import SECRET, body_of, event, signature, stripe_object
from tests.wire import ROOT, WireServer, free_port

pytestmark = pytest.mark.wire

JWT_SECRET = "s" * 48
RETRYABLE = "... on RetryableError { retryAfterSeconds }"


def start_engine(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "revenue_engine.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def shared_database(wire_server: WireServer | None) -> tuple[str, str]:
    if wire_server is None:
        pytest.skip("no MongoDB wire server: set MONGODB_URI or run `npm install` (see README)")
    return wire_server.uri, f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def engines(
    shared_database: tuple[str, str], emulator_server: EmulatorServer, emulator: Emulator
) -> AsyncIterator[list[httpx.AsyncClient]]:
    uri, name = shared_database
    env = {k: v for k, v in os.environ.items() if k.isupper() and not k.startswith("PYTEST")}
    for setting in ("MONGODB_URI", "STRIPE_SECRET_KEY", "STRIPE_API_BASE"):
        env.pop(setting, None)
    env.update(
        {
            "ENVIRONMENT": "development",
            "MONGODB_URI": uri,
            "MONGODB_DATABASE": name,
            "STRIPE_API_BASE": emulator_server.url,
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "AUTH_JWT_SECRET": JWT_SECRET,
            "PUBLIC_BASE_URL": "http://testserver",
            "RATE_LIMIT_STRIPE_MUTATIONS": "4",
            "PYTHONPATH": str(ROOT),
        }
    )
    ports = [free_port(), free_port()]
    processes = [start_engine(port, env) for port in ports]
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
    try:
        deadline = time.monotonic() + 60
        for client, process in zip(clients, processes, strict=True):
            while True:
                assert process.poll() is None, "an engine process exited"
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "an engine process did not become ready"
                await asyncio.sleep(0.2)
        yield clients
    finally:
        for client in clients:
            await client.aclose()
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None, org: str
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"x-organization-id": org, "x-customer-email": f"{org}@example.com"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    [value] = body["data"].values()
    result: dict[str, Any] = value
    return result


def price_event(index: int) -> bytes:
    price = stripe_object(
        "price",
        id=f"price_scale_{index}",
        lookup_key="starter_month" if index % 2 else "pro_month",
        unit_amount=1900 if index % 2 else 4900,
        currency="usd",
    )
    return body_of(event("price.updated", price))


async def deliver(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/json", "stripe-signature": signature(body)}
    return await client.post("/webhooks/stripe", content=body, headers=headers)


async def test_two_processes_share_the_ledger_checkout_and_rate_limit(
    engines: list[httpx.AsyncClient],
    emulator: Emulator,
    shared_database: tuple[str, str],
) -> None:
    first, second = engines

    # Checkout: the SPA's double-submit lands on both processes.
    variables = {"input": {"planUid": "pro", "billingInterval": "MONTH"}}
    started = await asyncio.gather(
        gql(first, CHECKOUT, variables, "org_scale"), gql(second, CHECKOUT, variables, "org_scale")
    )
    assert [s["__typename"] for s in started] == ["CheckoutPayload", "CheckoutPayload"]
    assert started[0]["sessionId"] == started[1]["sessionId"]
    mine = [
        c for c in emulator.objects("customer") if c["metadata"] == {"organization_id": "org_scale"}
    ]
    assert len(mine) == 1
    sessions = [s for s in emulator.objects("checkout.session") if s["customer"] == mine[0]["id"]]
    assert len(sessions) == 1

    # Rate limit (4 per window): calls alternate between the processes.
    create = CREATE_CUSTOMER.replace("__typename", f"__typename {RETRYABLE}", 1)
    results = []
    for index in range(6):
        client = engines[index % 2]
        results.append(await gql(client, create, None, "org_limited"))
    assert [r["__typename"] for r in results[:4]] == ["CustomerPayload"] * 4
    assert [r.get("code") for r in results[4:]] == ["RATE_LIMITED", "RATE_LIMITED"]

    # Webhooks (last: these relink the catalog's prices to ids the emulator does not know):
    # each event to both processes, three times each, all at once.
    bodies = [price_event(i) for i in range(10)]
    answers = list(
        await asyncio.gather(
            *(deliver(client, body) for body in bodies for client in engines for _ in range(3))
        )
    )
    # 409: another delivery holds the event; 503: a slow store spent the ack budget. Stripe
    # redelivers both later — as here, to either process, until every answer is 2xx.
    assert {a.status_code for a in answers} <= {200, 409, 503}
    for round_ in range(10):
        again = await asyncio.gather(*(deliver(engines[round_ % 2], b) for b in bodies))
        answers += again
        if {a.json().get("status") for a in again} == {"duplicate"}:
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail("deliveries did not settle")
    statuses = [a.json().get("status") for a in answers if a.status_code == 200]
    assert statuses.count("processed") == len(bodies)  # each applied once, by one process

    # The ledger, read directly: one row per event, every one processed.
    uri, name = shared_database
    database = await connect(make_settings(mongodb_uri=uri, mongodb_database=name))
    try:
        rows = await WebhookEvent.find_all().to_list()
        ids = sorted(json.loads(b)["id"] for b in bodies)
        assert sorted(r.event_id for r in rows) == ids
        assert {r.status.value for r in rows} == {"processed"}
    finally:
        database.close()
