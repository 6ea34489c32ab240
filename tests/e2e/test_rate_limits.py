"""S7 end to end: an organization over its limit of Stripe-calling mutations gets a typed
``RATE_LIMITED`` answer with a retry hint and nothing reaches Stripe; other organizations are
unaffected. Also: the Stripe share of a request shows in its ``Server-Timing`` header."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from revenue_engine.settings import Settings
from tests.e2e.conftest import engine_settings
from tests.e2e.ops import CHECKOUT, CREATE_CUSTOMER, call, only

RETRYABLE = "... on RetryableError { retryAfterSeconds }"


async def test_s7_an_organization_over_its_limit_is_refused_before_stripe(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    engine: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, rate_limit_stripe_mutations=3)
    )
    create = CREATE_CUSTOMER.replace("__typename", f"__typename {RETRYABLE}", 1)
    for _ in range(3):
        assert only(await call(engine, create))["__typename"] == "CustomerPayload"
    stripe_calls = len(emulator.requests.entries)
    refused = only(await call(engine, create))
    assert refused["__typename"] == "RetryableError"
    assert refused["code"] == "RATE_LIMITED"
    assert 0 < refused["retryAfterSeconds"] <= 60
    checkout = CHECKOUT.replace("__typename", f"__typename {RETRYABLE}", 1)
    also = only(
        await call(engine, checkout, {"input": {"planUid": "pro", "billingInterval": "MONTH"}})
    )
    assert also["code"] == "RATE_LIMITED"
    assert len(emulator.requests.entries) == stripe_calls  # nothing reached Stripe
    # Reads are not limited, and another organization is unaffected.
    assert (await call(engine, "{ customer { id } }"))["customer"]["id"]
    other = only(await call(engine, create, org="org_b"))
    assert other["__typename"] == "CustomerPayload"


async def test_stripe_time_shows_in_server_timing(engine: httpx.AsyncClient) -> None:
    response = await engine.post(
        "/graphql",
        json={"query": CREATE_CUSTOMER},
        headers={"x-organization-id": "org_t", "x-customer-email": "t@example.com"},
    )
    assert only(response.json()["data"])["__typename"] == "CustomerPayload"
    match = re.match(
        r"app;dur=([\d.]+), db;dur=([\d.]+), stripe;dur=([\d.]+)", response.headers["server-timing"]
    )
    assert match
    app, db, stripe = (float(v) for v in match.groups())
    assert stripe > 0
    assert db > 0
    assert app > 0
