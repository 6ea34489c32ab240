"""RELIABILITY.md M1-M4, M6-M8 and bad input, end to end against the emulator's fault knobs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from revenue_engine.documents import CheckoutSession, Customer, Payment
from revenue_engine.emulator import Emulator
from revenue_engine.emulator.server import EmulatorServer
from revenue_engine.settings import Settings
from tests.e2e.conftest import engine_settings
from tests.e2e.ops import CHECKOUT, CREATE_CUSTOMER, CREATE_PI, call, only


def fail_next_customer_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database drops the next customer insert (as an outage would), then recovers. The
    store is patched, not our code: the engine's own write path runs unchanged."""
    collection = Customer.get_motor_collection()
    original = collection.insert_one
    failures = {"left": 1}

    async def flaky_insert(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise ServerSelectionTimeoutError("store unreachable")
        return await original(*args, **kwargs)

    monkeypatch.setattr(collection, "insert_one", flaky_insert)


async def test_m1_stripe_500_is_retried_with_the_same_key(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.inject_fault("500", method="POST", path="/v1/customers")
    result = only(await call(engine, CREATE_CUSTOMER))
    assert result["__typename"] == "CustomerPayload"
    assert emulator.request_count("POST", "/v1/customers") == 2
    [(key, uses)] = emulator.idempotency_keys("POST", "/v1/customers").items()
    assert uses == 2
    assert key.startswith("re-customer.create-")
    assert len(emulator.objects("customer")) == 1


async def test_m1_response_lost_after_success_makes_one_object(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    # Stripe created the customer, then the connection dropped before we saw the answer.
    emulator.inject_fault("reset", method="POST", path="/v1/customers", when="after")
    result = only(await call(engine, CREATE_CUSTOMER))
    assert result["__typename"] == "CustomerPayload"
    assert len(emulator.objects("customer")) == 1
    assert result["customer"]["id"] == emulator.objects("customer")[0]["id"]


async def test_m2_timeout_fires_and_the_retry_returns_the_original(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    engine: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, stripe_timeout_seconds=0.5)
    )
    emulator.inject_fault(
        "timeout", method="POST", path="/v1/customers", when="after", hang_seconds=5
    )
    result = only(await call(engine, CREATE_CUSTOMER))
    assert result["__typename"] == "CustomerPayload"
    assert len(emulator.objects("customer")) == 1


async def test_m3_ten_concurrent_creates_make_one_customer(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    results = await asyncio.gather(*(call(engine, CREATE_CUSTOMER) for _ in range(10)))
    ids = {only(r)["customer"]["id"] for r in results}
    assert len(ids) == 1
    assert len(emulator.objects("customer")) == 1
    assert await Customer.find_all().count() == 1


async def test_m4_same_intent_different_parameters_is_a_typed_conflict(
    engine: httpx.AsyncClient, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first creation reached Stripe, then our write failed; the retry changes the name:
    # same intent (the organization's first customer), different parameters.
    fail_next_customer_write(monkeypatch)
    first = only(await call(engine, CREATE_CUSTOMER, {"input": {"name": "Acme"}}))
    assert first["code"] == "UNAVAILABLE"
    conflict = only(await call(engine, CREATE_CUSTOMER, {"input": {"name": "Other"}}))
    assert (conflict["__typename"], conflict["code"]) == (
        "IdempotencyConflictError",
        "IDEMPOTENCY_CONFLICT",
    )
    assert len(emulator.objects("customer")) == 1
    assert await Customer.find_all().count() == 0
    # The original parameters complete the work.
    done = only(await call(engine, CREATE_CUSTOMER, {"input": {"name": "Acme"}}))
    assert done["__typename"] == "CustomerPayload"
    assert len(emulator.objects("customer")) == 1


async def test_m6_rate_limit_is_retried_then_typed(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.inject_fault("429", method="POST", path="/v1/customers", count=1)
    ok = only(await call(engine, CREATE_CUSTOMER))
    assert ok["__typename"] == "CustomerPayload"  # one 429, then the backoff retry succeeds

    emulator.inject_fault("429", method="POST", path="/v1/payment_intents", count=10)
    limited = only(await call(engine, CREATE_PI, {"input": {"amount": 100, "currency": "usd"}}))
    assert limited["__typename"] == "RetryableError"
    assert limited["code"] == "RATE_LIMITED"
    assert emulator.request_count("POST", "/v1/payment_intents") == 3  # bounded
    assert await Payment.find_all().count() == 0


async def test_m7_db_write_fails_after_stripe_succeeded_then_the_retry_completes(
    engine: httpx.AsyncClient, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_next_customer_write(monkeypatch)
    failed = only(await call(engine, CREATE_CUSTOMER))
    assert (failed["__typename"], failed["code"]) == ("RetryableError", "UNAVAILABLE")
    assert len(emulator.objects("customer")) == 1
    assert await Customer.find_all().count() == 0

    retried = only(await call(engine, CREATE_CUSTOMER))
    assert retried["__typename"] == "CustomerPayload"
    assert retried["customer"]["id"] == emulator.objects("customer")[0]["id"]
    assert len(emulator.objects("customer")) == 1
    assert await Customer.find_all().count() == 1


async def test_m8_stripe_down_is_a_typed_retryable_error(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.inject_fault("503", method="POST", path="/v1/customers", count=10)
    result = only(await call(engine, CREATE_CUSTOMER))
    assert (result["__typename"], result["code"]) == ("RetryableError", "UNAVAILABLE")
    assert await Customer.find_all().count() == 0


@pytest.mark.parametrize(
    ("data", "typename", "field"),
    [
        ({"planUid": "ghost", "billingInterval": "MONTH"}, "NotFoundError", None),
        (
            {"planUid": "pro", "billingInterval": "MONTH", "overages": ["nope"]},
            "ValidationError",
            "overages",
        ),
        (
            {"planUid": "starter", "billingInterval": "MONTH", "overages": ["bandwidth"]},
            "ValidationError",
            "overages",
        ),
        (
            {"planUid": "pro", "billingInterval": "MONTH", "successPath": "https://evil.example/"},
            "ValidationError",
            "successPath",
        ),
        (
            {"planUid": "pro", "billingInterval": "MONTH", "cancelPath": "//evil.example"},
            "ValidationError",
            "cancelPath",
        ),
    ],
)
async def test_bad_checkout_input_is_typed_and_touches_nothing(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    data: dict[str, Any],
    typename: str,
    field: str | None,
) -> None:
    result = only(await call(engine, CHECKOUT, {"input": data}))
    assert result["__typename"] == typename
    if field:
        assert field in [f["field"] for f in result["fields"]]
    assert emulator.request_count() == 0
    assert await CheckoutSession.find_all().count() == 0
    assert await Customer.find_all().count() == 0


async def test_archived_plan_cannot_be_bought(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    archive = 'mutation { archivePlan(uid: "starter") { __typename } }'
    response = await engine.post(
        "/graphql",
        json={"query": archive},
        headers={"x-organization-id": "ops", "x-roles": "admin"},
    )
    assert response.json()["data"]["archivePlan"]["__typename"] == "PlanPayload"
    result = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "starter", "billingInterval": "YEAR"}})
    )
    assert (result["__typename"], result["code"]) == ("BillingStateError", "PLAN_ARCHIVED")
    assert emulator.request_count() == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": -1, "currency": "usd"}, "amount"),
        ({"amount": 0, "currency": "usd"}, "amount"),
        ({"amount": 100, "currency": "xxx"}, "currency"),
        ({"amount": 100_000_000, "currency": "usd"}, "amount"),
    ],
)
async def test_bad_payment_input_is_typed_and_touches_nothing(
    engine: httpx.AsyncClient, emulator: Emulator, data: dict[str, Any], field: str
) -> None:
    result = only(await call(engine, CREATE_PI, {"input": data}))
    assert result["__typename"] == "ValidationError"
    assert [f["field"] for f in result["fields"]] == [field]
    assert emulator.request_count() == 0
    assert await Payment.find_all().count() == 0


async def test_bad_customer_input_is_typed(engine: httpx.AsyncClient, emulator: Emulator) -> None:
    result = only(await call(engine, CREATE_CUSTOMER, {"input": {"email": "not-an-email"}}))
    assert result["__typename"] == "ValidationError"
    assert emulator.request_count() == 0


async def test_tenant_fields_need_a_principal(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    response = await engine.post(
        "/graphql", json={"query": "mutation { createCustomer { __typename } }"}
    )
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert emulator.request_count() == 0
