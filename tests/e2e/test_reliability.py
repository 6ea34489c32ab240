"""RELIABILITY.md M1-M4, M6-M8 and bad input, end to end against the emulator's fault knobs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from beanie import Document
from pymongo.errors import ServerSelectionTimeoutError
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from revenue_engine.documents import CheckoutSession, Customer, Payment, Subscription
from revenue_engine.settings import Settings
from tests.e2e.conftest import engine_settings
from tests.e2e.ops import (
    CHANGE,
    CHECKOUT,
    CONFIRM_PI,
    CREATE_CUSTOMER,
    CREATE_PI,
    CREATE_SUBSCRIPTION,
    PORTAL_AT,
    REFUND,
    UPDATE_CUSTOMER,
    call,
    only,
)
from tests.e2e.test_subscriptions import customer_with_card, subscribe


def fail_next_write(
    monkeypatch: pytest.MonkeyPatch, document: type[Document], method: str = "insert_one"
) -> None:
    """The database drops the next ``method`` write of ``document`` (as an outage would), then
    recovers. The store is patched, not our code: the engine's own write path runs unchanged."""
    collection = document.get_motor_collection()
    original = getattr(collection, method)
    failures = {"left": 1}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise ServerSelectionTimeoutError("store unreachable")
        return await original(*args, **kwargs)

    monkeypatch.setattr(collection, method, flaky)


def fail_next_customer_write(monkeypatch: pytest.MonkeyPatch) -> None:
    fail_next_write(monkeypatch, Customer)


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
    hang = 8.0
    emulator.inject_fault(
        "timeout", method="POST", path="/v1/customers", when="after", hang_seconds=hang
    )
    started = time.monotonic()
    result = only(await call(engine, CREATE_CUSTOMER))
    took = time.monotonic() - started
    assert result["__typename"] == "CustomerPayload"
    # Our timeout fired: the answer came from a retry, long before Stripe's hang was over.
    assert took < hang / 2, took
    assert emulator.request_count("POST", "/v1/customers") == 2
    [(key, uses)] = emulator.idempotency_keys("POST", "/v1/customers").items()
    assert (key.startswith("re-customer.create-"), uses) == (True, 2)
    [customer] = emulator.objects("customer")
    assert result["customer"]["id"] == customer["id"]


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


async def test_m7_checkout_session_stored_on_retry(
    engine: httpx.AsyncClient, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    await call(engine, CREATE_CUSTOMER)
    fail_next_write(monkeypatch, CheckoutSession)
    data = {"input": {"planUid": "pro", "billingInterval": "MONTH"}}
    failed = only(await call(engine, CHECKOUT, data))
    assert (failed["__typename"], failed["code"]) == ("RetryableError", "UNAVAILABLE")
    [session] = emulator.objects("checkout.session")
    assert await CheckoutSession.find_all().count() == 0

    retried = only(await call(engine, CHECKOUT, data))
    assert retried["sessionId"] == session["id"]
    assert len(emulator.objects("checkout.session")) == 1
    [stored] = await CheckoutSession.find_all().to_list()
    assert stored.stripe_session_id == session["id"]


async def test_m7_direct_subscription_stored_on_retry(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    fail_next_write(monkeypatch, Subscription)
    failed = await subscribe(engine)
    assert (failed["__typename"], failed["code"]) == ("RetryableError", "UNAVAILABLE")
    [created] = emulator.objects("subscription")
    assert await Subscription.find_all().count() == 0

    retried = await subscribe(engine)
    assert retried["__typename"] == "SubscriptionPayload", retried
    assert retried["subscription"]["subscriptionId"] == created["id"]  # type: ignore[index]
    assert len(emulator.objects("subscription")) == 1
    assert len(emulator.objects("invoice")) == 1  # charged once
    assert await Subscription.find_all().count() == 1


async def test_m7_payment_intent_stored_on_retry(
    engine: httpx.AsyncClient, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {"input": {"amount": 700, "currency": "eur"}}
    fail_next_write(monkeypatch, Payment)
    failed = only(await call(engine, CREATE_PI, data))
    assert (failed["__typename"], failed["code"]) == ("RetryableError", "UNAVAILABLE")
    [intent] = emulator.objects("payment_intent")
    assert await Payment.find_all().count() == 0

    retried = only(await call(engine, CREATE_PI, data))
    assert retried["paymentIntent"]["id"] == intent["id"]
    assert len(emulator.objects("payment_intent")) == 1
    assert await Payment.find_all().count() == 1


async def test_m7_refund_recorded_on_retry(
    engine: httpx.AsyncClient, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = only(await call(engine, CREATE_PI, {"input": {"amount": 700, "currency": "eur"}}))
    pid = created["paymentIntent"]["id"]
    await call(engine, CONFIRM_PI, {"id": pid, "pm": "pm_card_visa"})
    fail_next_write(monkeypatch, Payment, "update_one")
    failed = only(await call(engine, REFUND, {"id": pid, "amount": None}, admin=True))
    assert (failed["__typename"], failed["code"]) == ("RetryableError", "UNAVAILABLE")
    [refund] = emulator.objects("refund")
    payment = await Payment.find_one({"stripe_payment_intent_id": pid})
    assert payment is not None
    assert (payment.amount_refunded, payment.refund_ids) == (0, [])

    retried = only(await call(engine, REFUND, {"id": pid, "amount": None}, admin=True))
    assert retried["paymentIntent"]["amountRefunded"] == 700
    assert len(emulator.objects("refund")) == 1
    payment = await Payment.find_one({"stripe_payment_intent_id": pid})
    assert payment is not None
    assert (payment.amount_refunded, payment.refund_ids) == (700, [refund["id"]])


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


async def stored_state() -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection but the rate-limit counters (which count every
    request, refused or not): what a refused request must leave as it was."""
    db = Customer.get_motor_collection().database
    names = sorted(set(await db.list_collection_names()) - {"rate_limit_counters"})
    return {name: await db[name].find({}).sort("_id").to_list(None) for name in names}


async def assert_refused_untouched(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    op: str,
    variables: dict[str, Any],
    fields: list[str],
) -> None:
    """``op`` answers ``ValidationError`` on exactly ``fields``, without a request to Stripe
    and without a change to any stored document."""
    requests, before = emulator.request_count(), await stored_state()
    result = only(await call(engine, op, variables))
    assert result["__typename"] == "ValidationError", result
    assert [f["field"] for f in result["fields"]] == fields
    assert emulator.request_count() == requests
    assert await stored_state() == before


def entries(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"amount": 10, "currency": "usd"}, ["amount"]),  # under Stripe's 50 cents
        ({"amount": 29, "currency": "gbp"}, ["amount"]),  # under 30 pence
        ({"amount": 49, "currency": "jpy"}, ["amount"]),  # under ¥50
        ({"amount": 999, "currency": "mxn"}, ["amount"]),  # under $10 MXN
        ({"amount": 1005, "currency": "kwd"}, ["amount"]),  # three decimals: ends in 0
        ({"amount": 100, "currency": "usd", "metadata": entries({"a[b]": "x"})}, ["metadata.a[b]"]),
        (
            {"amount": 100, "currency": "usd", "metadata": entries({"k" * 41: "x"})},
            ["metadata." + "k" * 41],
        ),
        ({"amount": 100, "currency": "usd", "metadata": entries({"k": "v" * 501})}, ["metadata.k"]),
        ({"amount": 100, "currency": "usd", "metadata": entries({"": "x"})}, ["metadata."]),
        (
            {"amount": 100, "currency": "usd", "metadata": entries({"organization_id": "x"})},
            ["metadata.organization_id"],
        ),
        (
            {
                "amount": 100,
                "currency": "usd",
                "metadata": entries({f"k{i}": "v" for i in range(50)}),
            },
            ["metadata"],
        ),
        (
            {
                "amount": 100,
                "currency": "usd",
                "metadata": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}],
            },
            ["metadata.k"],
        ),
    ],
)
async def test_payment_limits_are_checked_before_anything_is_created(
    engine: httpx.AsyncClient, emulator: Emulator, data: dict[str, Any], fields: list[str]
) -> None:
    await assert_refused_untouched(engine, emulator, CREATE_PI, {"input": data}, fields)
    assert emulator.objects("customer") == []


async def test_payment_limits_accept_what_stripe_accepts(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    most = {f"k{i}": "v" * 500 for i in range(48)} | {"k" * 40: "x"}
    result = only(
        await call(
            engine,
            CREATE_PI,
            {"input": {"amount": 50, "currency": "usd", "metadata": entries(most)}},
        )
    )
    assert result["__typename"] == "PaymentIntentPayload", result
    [intent] = emulator.objects("payment_intent")
    assert intent["metadata"] == {**most, "organization_id": "org_a"}
    yen = only(await call(engine, CREATE_PI, {"input": {"amount": 50, "currency": "jpy"}}))
    assert yen["__typename"] == "PaymentIntentPayload", yen


BAD_PATHS = [
    "/billing done",
    "/billing\tx",
    "/billing\nSet-Cookie:x",
    '/billing"onload="x',
    "/<script>",
    "/billing\u0000",
    "/billing\u0085",
    "/" + "a" * 512,
]


@pytest.mark.parametrize("path", BAD_PATHS)
async def test_unsafe_checkout_paths_are_refused(
    engine: httpx.AsyncClient, emulator: Emulator, path: str
) -> None:
    data = {"planUid": "pro", "billingInterval": "MONTH", "successPath": path, "cancelPath": path}
    await assert_refused_untouched(
        engine, emulator, CHECKOUT, {"input": data}, ["successPath", "cancelPath"]
    )


@pytest.mark.parametrize("path", [*BAD_PATHS, "https://evil.example/", "//evil.example", "/a\\b"])
async def test_unsafe_portal_paths_are_refused(
    engine: httpx.AsyncClient, emulator: Emulator, path: str
) -> None:
    await call(engine, CREATE_CUSTOMER)
    await assert_refused_untouched(engine, emulator, PORTAL_AT, {"path": path}, ["returnPath"])
    assert emulator.objects("billing_portal.session") == []


async def test_a_portal_path_of_512_characters_is_accepted(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    await call(engine, CREATE_CUSTOMER)
    path = "/" + "a" * 511
    result = only(await call(engine, PORTAL_AT, {"path": path}))
    assert result["__typename"] == "PortalPayload", result
    [session] = emulator.objects("billing_portal.session")
    assert session["return_url"] == "http://testserver" + path


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"planUid": "starter", "billingInterval": "MONTH", "trialDays": 0}, ["trialDays"]),
        ({"planUid": "starter", "billingInterval": "MONTH", "trialDays": 731}, ["trialDays"]),
        ({"planUid": "starter", "billingInterval": "MONTH", "overages": ["nope"]}, ["overages"]),
        (
            {"planUid": "starter", "billingInterval": "MONTH", "overages": ["bandwidth"]},
            ["overages"],
        ),
    ],
)
async def test_bad_subscription_input_is_typed_and_touches_nothing(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    data: dict[str, Any],
    fields: list[str],
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await assert_refused_untouched(engine, emulator, CREATE_SUBSCRIPTION, {"input": data}, fields)
    assert emulator.objects("subscription") == []


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"planUid": "pro", "billingInterval": "MONTH", "overages": ["nope"]}, ["overages"]),
        (
            {"planUid": "starter", "billingInterval": "MONTH", "overages": ["bandwidth"]},
            ["overages"],
        ),
        ({"planUid": "starter", "billingInterval": "MONTH"}, ["planUid"]),  # the current plan
    ],
)
async def test_bad_plan_change_is_typed_and_touches_nothing(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    data: dict[str, Any],
    fields: list[str],
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    assert (await subscribe(engine))["__typename"] == "SubscriptionPayload"
    await assert_refused_untouched(engine, emulator, CHANGE, {"input": data}, fields)


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"email": "not-an-email"}, ["email"]),
        ({"email": "a b@example.com"}, ["email"]),
        ({"name": "   "}, ["name"]),
        ({"name": "n" * 257}, ["name"]),
        ({"email": "x", "name": ""}, ["email", "name"]),
    ],
)
async def test_bad_customer_update_is_typed_and_touches_nothing(
    engine: httpx.AsyncClient, emulator: Emulator, data: dict[str, Any], fields: list[str]
) -> None:
    await call(engine, CREATE_CUSTOMER, {"input": {"name": "Acme"}})
    await assert_refused_untouched(engine, emulator, UPDATE_CUSTOMER, {"input": data}, fields)
    assert emulator.objects("customer")[0]["name"] == "Acme"


@pytest.mark.parametrize("pm", ["card_visa", "", "pm_", "pm_card visa", "pm_" + "x" * 256])
async def test_bad_payment_method_is_typed_and_touches_nothing(
    engine: httpx.AsyncClient, emulator: Emulator, pm: str
) -> None:
    created = only(await call(engine, CREATE_PI, {"input": {"amount": 500, "currency": "usd"}}))
    pid = created["paymentIntent"]["id"]
    await assert_refused_untouched(
        engine, emulator, CONFIRM_PI, {"id": pid, "pm": pm}, ["paymentMethod"]
    )
    assert emulator.objects("charge") == []


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
