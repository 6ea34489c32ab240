"""Customers end to end: get-or-create, update, delete, admin listing, double-submits."""

from __future__ import annotations

import asyncio

import httpx
import stripe
from stripe_emulator import Emulator

from revenue_engine.documents import AuditEntry, Customer
from tests.e2e.ops import (
    CHANGE,
    CONFIRM_PI,
    CREATE_CUSTOMER,
    CREATE_PI,
    REFUND,
    UPDATE_CUSTOMER,
    call,
    only,
)
from tests.e2e.test_subscriptions import customer_with_card, subscribe

UPDATE = """mutation($input: CustomerInput!) { updateCustomer(input: $input) { __typename
  ... on CustomerPayload { customer { id email name } } ... on UserError { code } } }"""
DELETE = "mutation { deleteCustomer { __typename ... on DeletedPayload { id } ... on UserError { code } } }"
LIST = "query($after: String) { customers(first: 2, after: $after) { nodes { organizationId } pageInfo { endCursor hasNextPage } } }"
ADMIN = {"x-organization-id": "ops", "x-roles": "admin"}


async def test_create_carries_the_organization_and_is_get_or_create(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    first = only(await call(engine, CREATE_CUSTOMER, {"input": {"name": "Acme"}}))["customer"]
    again = only(await call(engine, CREATE_CUSTOMER))["customer"]
    assert first == again
    [stripe_customer] = emulator.objects("customer")
    assert stripe_customer["metadata"] == {"organization_id": "org_a"}
    assert stripe_customer["email"] == "org_a@example.com"
    mine = await call(engine, "{ customer { id organizationId } }")
    assert mine == {"customer": {"id": first["id"], "organizationId": "org_a"}}
    assert await call(engine, "{ customer { id } }", org="org_b") == {"customer": None}


async def test_update_and_delete(engine: httpx.AsyncClient, emulator: Emulator) -> None:
    missing = only(await call(engine, UPDATE, {"input": {"name": "X"}}))
    assert missing["code"] == "NOT_FOUND"
    await call(engine, CREATE_CUSTOMER)
    updated = only(
        await call(engine, UPDATE, {"input": {"name": "Acme Inc", "email": "billing@acme.test"}})
    )
    assert updated["customer"]["name"] == "Acme Inc"
    assert emulator.objects("customer")[0]["email"] == "billing@acme.test"
    deleted = only(await call(engine, DELETE))
    assert deleted["__typename"] == "DeletedPayload"
    assert emulator.objects("customer") == []
    assert await Customer.find_all().count() == 0
    assert await AuditEntry.find({"kind": "customer.deleted"}).count() == 1
    # A new customer after a deletion is a new intent: a new Stripe customer.
    recreated = only(await call(engine, CREATE_CUSTOMER))["customer"]
    assert recreated["id"] != deleted["id"]
    assert len(emulator.objects("customer")) == 1


async def test_delete_is_refused_while_subscribed(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    await subscribe(engine)
    refused = only(await call(engine, DELETE))
    assert refused == {"__typename": "AlreadySubscribedError", "code": "ALREADY_SUBSCRIBED"}
    assert len(emulator.objects("customer")) == 1


async def test_admin_lists_customers_with_a_cursor(engine: httpx.AsyncClient) -> None:
    for org in ("org_1", "org_2", "org_3"):
        await call(engine, CREATE_CUSTOMER, org=org)
    page = await engine.post("/graphql", json={"query": LIST}, headers=ADMIN)
    first = page.json()["data"]["customers"]
    assert [n["organizationId"] for n in first["nodes"]] == ["org_1", "org_2"]
    assert first["pageInfo"]["hasNextPage"] is True
    page = await engine.post(
        "/graphql",
        json={"query": LIST, "variables": {"after": first["pageInfo"]["endCursor"]}},
        headers=ADMIN,
    )
    second = page.json()["data"]["customers"]
    assert [n["organizationId"] for n in second["nodes"]] == ["org_3"]
    assert second["pageInfo"]["hasNextPage"] is False
    too_many = await engine.post(
        "/graphql", json={"query": LIST.replace("first: 2", "first: 101")}, headers=ADMIN
    )
    assert too_many.json()["errors"][0]["extensions"]["code"] == "VALIDATION"
    member = await engine.post(
        "/graphql", json={"query": LIST}, headers={"x-organization-id": "org_1"}
    )
    assert member.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_double_submits_of_every_writing_mutation_make_one_object(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    created = await asyncio.gather(subscribe(engine), subscribe(engine))
    kinds = sorted(r["__typename"] for r in created)
    assert kinds in (
        ["SubscriptionPayload", "SubscriptionPayload"],
        ["AlreadySubscribedError", "SubscriptionPayload"],
    )
    assert len(emulator.objects("subscription")) == 1

    change = {"input": {"planUid": "pro", "billingInterval": "MONTH", "prorationBehavior": "NONE"}}
    await asyncio.gather(call(engine, CHANGE, change), call(engine, CHANGE, change))
    keys = emulator.idempotency_keys("POST", "/v1/subscriptions/sub_*")
    assert len(keys) == 1

    pi = only(await call(engine, CREATE_PI, {"input": {"amount": 500, "currency": "usd"}}))
    pid = pi["paymentIntent"]["id"]
    await asyncio.gather(
        *(call(engine, CONFIRM_PI, {"id": pid, "pm": "pm_card_visa"}) for _ in range(2))
    )
    assert len([c for c in emulator.objects("charge") if c["payment_intent"] == pid]) == 1
    refunds = await asyncio.gather(
        *(call(engine, REFUND, {"id": pid, "amount": None}, admin=True) for _ in range(2))
    )
    assert len(emulator.objects("refund")) == 1
    assert {only(r)["paymentIntent"]["amountRefunded"] for r in refunds} == {500}


async def test_double_submitted_update_makes_one_stripe_write(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    await call(engine, CREATE_CUSTOMER)
    data = {"input": {"name": "Acme Inc", "email": "billing@acme.test"}}
    results = await asyncio.gather(*(call(engine, UPDATE_CUSTOMER, data) for _ in range(2)))
    first, second = (only(r) for r in results)
    assert first == second
    assert first["customer"]["name"] == "Acme Inc"
    keys = emulator.idempotency_keys("POST", "/v1/customers/cus_*")
    assert list(keys.values()) == [2]  # both submits carried the same derived key
    [stripe_customer] = emulator.objects("customer")
    assert (stripe_customer["name"], stripe_customer["email"]) == ("Acme Inc", "billing@acme.test")


async def test_double_submitted_delete_deletes_once(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    customer_id = only(await call(engine, CREATE_CUSTOMER))["customer"]["id"]
    results = [only(r) for r in await asyncio.gather(*(call(engine, DELETE) for _ in range(2)))]
    # Each answer is the deletion of that customer or, for the one that came second, that
    # there is no customer any more: never an error about the deletion itself.
    deleted = {"__typename": "DeletedPayload", "id": customer_id}
    assert deleted in results
    assert all(r == deleted or r["__typename"] == "NotFoundError" for r in results)
    assert len(emulator.idempotency_keys("DELETE", "/v1/customers/cus_*")) == 1
    assert emulator.objects("customer") == []
    assert await Customer.find_all().count() == 0
    # The next customer is a new one at Stripe, made once.
    recreated = only(await call(engine, CREATE_CUSTOMER))["customer"]["id"]
    assert recreated != customer_id
    assert len(emulator.objects("customer")) == 1
