"""S1 (and S3) as a matrix generated over the schema.

Organization B gets real objects through the API and the emulator: a customer with a card, a
Checkout session, a subscription with its invoice, a paid one-time payment. Then organization
A's principal calls every root field of the schema (read from the schema itself, so a new field
cannot be forgotten: an argument the matrix does not know how to fill fails the test):

* every argument that names an object (``TARGETS``) is filled, in turn, with each of B's
  identifiers — Stripe ids and our own document ids — and with an id that exists nowhere; the
  answer must be the same as for the id that exists nowhere;
* fields without such an argument act on the caller's organization: the answer must not
  mention anything of B's;
* admin fields answer ``FORBIDDEN`` to A, who is not an admin (S3).

Afterwards B's documents and B's objects at Stripe are exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from graphql import (
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    get_nullable_type,
)
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from revenue_engine.documents import (
    CheckoutSession,
    Customer,
    Payment,
    Subscription,
    UsageCounter,
    UsageEvent,
)
from revenue_engine.schema import build_schema
from revenue_engine.settings import Settings
from tests.e2e.conftest import engine_settings
from tests.e2e.ops import CHECKOUT, CONFIRM_PI, CREATE_CUSTOMER, CREATE_PI, call, only

A, B = "org_a", "org_b"
BROKEN = {"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "INTERNAL_SERVER_ERROR"}
PUBLIC = {"plans", "plan", "viewer"}
ADMIN = {
    "customers",
    "webhookEvents",
    "meterErrorReports",
    "upsertPlan",
    "archivePlan",
    "replayWebhookEvent",
}
#: Tenant fields that also need the admin role (of the caller's own organization): probed by
#: an admin of A, who must still not reach B.
ORG_ADMIN = {"refundPayment"}
#: Arguments that name an object: filled with B's identifiers.
TARGETS = {"id", "sessionId", "paymentIntentId", "paymentMethod", "after", "organizationId"}
#: Other required (or meaningful) arguments: (field, argument) → value.
EXAMPLES: dict[tuple[str, str], Any] = {
    ("createCustomer", "input"): {"name": "A Corp"},
    ("updateCustomer", "input"): {"name": "A Corp 2"},
    ("createCheckoutSession", "input"): {"planUid": "pro", "billingInterval": "MONTH"},
    ("createSubscription", "input"): {"planUid": "starter", "billingInterval": "MONTH"},
    ("changeSubscriptionPlan", "input"): {"planUid": "pro", "billingInterval": "MONTH"},
    ("createPaymentIntent", "input"): {"amount": 700, "currency": "usd"},
    ("cancelSubscription", "atPeriodEnd"): False,
    ("refundPayment", "amount"): 100,
    ("createBillingPortalSession", "returnPath"): "/account",
    ("invoices", "first"): 100,
    ("upsertPlan", "input"): {
        "uid": "pro",
        "name": "Hijacked",
        "prices": [{"interval": "MONTH", "amount": 100, "currency": "usd"}],
    },
    ("archivePlan", "uid"): "pro",
    ("recordUsage", "input"): {"id": "evt_a_1", "feature": "api_calls", "quantity": 1},
    ("setOverage", "feature"): "api_calls",
    ("setOverage", "enabled"): True,
    ("previewSubscriptionChange", "input"): {"planUid": "pro", "billingInterval": "MONTH"},
    ("updateSeats", "quantity"): 7,
}
MISSING = "zz_missing_0000000000000000"
#: For the other target arguments while one varies (distinct from MISSING, which is replaced).
ELSEWHERE = "zz_elsewhere_00000000000000"


# --- building operations from the schema -------------------------------------------------


def root_fields(schema: GraphQLSchema) -> list[tuple[str, str, GraphQLField]]:
    rows = []
    for operation in ("Query", "Mutation"):
        root = schema.type_map[operation]
        assert isinstance(root, GraphQLObjectType)
        names = sorted(root.fields, key=lambda n: (n.startswith("delete"), n))  # deletes last
        rows += [(operation.lower(), name, root.fields[name]) for name in names]
    return rows


def selection(type_: Any, depth: int = 0) -> str:
    named = get_nullable_type(type_)
    while isinstance(named, GraphQLList | GraphQLNonNull):
        named = get_nullable_type(named.of_type)
    if isinstance(named, GraphQLUnionType):
        members = " ".join(f"... on {t.name} {selection(t, depth + 1)}" for t in named.types)
        return f"{{ __typename {members} }}"
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        parts = ["__typename"]
        for name, field in named.fields.items():
            if any(isinstance(a.type, GraphQLNonNull) for a in field.args.values()):
                continue
            inner = selection(field.type, depth + 1)
            if inner and depth >= 3:
                continue
            parts.append(f"{name} {inner}".strip())
        return "{ " + " ".join(parts) + " }"
    return ""


def operation(kind: str, name: str, field: GraphQLField, values: dict[str, Any]) -> dict[str, Any]:
    """A document calling ``name`` with ``values`` (as variables), selecting everything."""
    used = {arg: field.args[arg] for arg in values}
    params = ", ".join(f"${arg}: {a.type}" for arg, a in used.items())
    args = ", ".join(f"{arg}: ${arg}" for arg in used)
    head = f"{kind}({params})" if params else kind
    call_ = f"{name}({args})" if args else name
    return {"query": f"{head} {{ {call_} {selection(field.type)} }}", "variables": values}


def plan_arguments(name: str, field: GraphQLField) -> tuple[list[str], dict[str, Any]]:
    """(target argument names, example values); fails on an argument it cannot classify."""
    targets, examples = [], {}
    for arg_name, arg in field.args.items():
        if arg_name in TARGETS:
            targets.append(arg_name)
        elif (name, arg_name) in EXAMPLES:
            examples[arg_name] = EXAMPLES[(name, arg_name)]
        elif isinstance(arg.type, GraphQLNonNull) and arg.default_value in (None, Undefined):
            pytest.fail(f"{name}({arg_name}): add it to TARGETS or EXAMPLES in this test")
    return targets, examples


# --- organization B's world --------------------------------------------------------------


async def make_b(
    engine: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> dict[str, list[str]]:
    """Real objects for B, made the way the SPA and Stripe make them; B's identifiers."""
    checkout = only(
        await call(
            engine, CHECKOUT, {"input": {"planUid": "pro", "billingInterval": "MONTH"}}, org=B
        )
    )
    customer_id = only(await call(engine, CREATE_CUSTOMER, org=B))["customer"]["id"]
    pm = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer_id}
    )
    await stripe_client.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    subscribed = only(
        await call(
            engine,
            "mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) "
            "{ __typename ... on SubscriptionPayload { subscription { subscriptionId "
            "latestInvoiceId } } } }",
            {"input": {"planUid": "starter", "billingInterval": "MONTH"}},
            org=B,
        )
    )
    assert subscribed["__typename"] == "SubscriptionPayload", subscribed
    # B's own usage (self-reported, as the demo SPA does): a counter A must neither read nor add to.
    recorded = only(
        await call(
            engine,
            'mutation { recordUsage(input: {id: "evt_b_1", feature: "api_calls", '
            "quantity: 1234}) { __typename ... on UsageRecorded { status } } }",
            org=B,
        )
    )
    assert recorded == {"__typename": "UsageRecorded", "status": "ACCEPTED"}, recorded
    intent = only(
        await call(engine, CREATE_PI, {"input": {"amount": 2500, "currency": "usd"}}, org=B)
    )
    intent_id = intent["paymentIntent"]["id"]
    paid = only(await call(engine, CONFIRM_PI, {"id": intent_id, "pm": pm.id}, org=B))
    assert paid["paymentIntent"]["status"] == "succeeded", paid
    ours = [
        str(doc.id)
        for model in (Customer, Subscription, CheckoutSession, Payment)
        for doc in await model.find({"organization_id": B}).to_list()  # type: ignore[attr-defined]
    ]
    stripe_ids = [
        checkout["sessionId"],
        customer_id,
        pm.id,
        subscribed["subscription"]["subscriptionId"],
        subscribed["subscription"]["latestInvoiceId"],
        intent_id,
    ]
    assert all(stripe_ids)
    assert len(ours) == 4
    return {"stripe": stripe_ids, "ours": ours}


async def snapshot_b(emulator: Emulator, customer_id: str) -> str:
    """B's documents and B's objects at Stripe, as comparable text."""
    docs = {
        model.__name__: sorted(
            (d.model_dump(mode="json") for d in await model.find({"organization_id": B}).to_list()),  # type: ignore[attr-defined]
            key=json.dumps,
        )
        for model in (Customer, Subscription, CheckoutSession, Payment, UsageCounter, UsageEvent)
    }
    at_stripe = {
        kind: [o for o in emulator.objects(kind) if customer_id in (o.get("id"), o.get("customer"))]
        for kind in (
            "customer",
            "payment_method",
            "subscription",
            "invoice",
            "payment_intent",
            "checkout.session",
            "refund",
        )
    }
    at_stripe["refund"] = [
        r for r in emulator.objects("refund") if r.get("payment_intent") in _intents(at_stripe)
    ]
    return json.dumps({"docs": docs, "stripe": at_stripe}, sort_keys=True, default=str)


def _intents(at_stripe: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {str(p["id"]) for p in at_stripe["payment_intent"]}


# --- the matrix --------------------------------------------------------------------------


async def ask(
    engine: httpx.AsyncClient, document: dict[str, Any], org: str, roles: str = ""
) -> str:
    headers = {"x-organization-id": org, "x-customer-email": f"{org}@example.com"}
    if roles:
        headers["x-roles"] = roles
    response = await engine.post("/graphql", json=document, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    body.pop("extensions", None)
    for error in body.get("errors", []):
        # A generated document the schema rejects would "agree" for every id: never let it pass.
        assert error["extensions"]["code"] not in BROKEN, (document, error)
        error.get("extensions", {}).pop("requestId", None)
        error["message"] = error["message"].split(" (request id")[0]
    return json.dumps(body, sort_keys=True)


async def probe(
    engine: httpx.AsyncClient,
    kind: str,
    name: str,
    field: GraphQLField,
    values: dict[str, Any],
    target: str,
    value: str,
) -> str:
    """A's answer with ``target`` = ``value``, the value itself masked for comparison."""
    roles = "admin" if name in ORG_ADMIN else ""
    text = await ask(engine, operation(kind, name, field, {**values, target: value}), A, roles)
    return text.replace(value, "<ID>")


@pytest.fixture
async def engine(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> httpx.AsyncClient:
    # The rate limit is not under test here (A makes many calls in a row).
    client: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, rate_limit_stripe_mutations=0)
    )
    return client


async def test_s1_every_field_isolates_organizations(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    ids = await make_b(engine, stripe_client)
    b_identifiers = [*ids["stripe"], *ids["ours"], f"{B}@example.com"]
    before = await snapshot_b(emulator, ids["stripe"][1])
    # A is a customer too, with a Checkout session of its own (so "acts on A" has something).
    await call(engine, CREATE_CUSTOMER, org=A)
    await call(engine, CHECKOUT, {"input": {"planUid": "pro", "billingInterval": "MONTH"}}, org=A)

    schema = build_schema()._schema  # type: ignore[attr-defined]
    checked: dict[str, int] = {}
    for kind, name, field in root_fields(schema):
        if name in PUBLIC or name in ADMIN:
            continue
        targets, examples = plan_arguments(name, field)
        if not targets:
            answer = await ask(engine, operation(kind, name, field, examples), A)
            for identifier in b_identifiers:
                assert identifier not in answer, (name, identifier, answer)
            checked[name] = 1
            continue
        for target in targets:
            # Other target arguments get an id that exists nowhere, so only one varies.
            values = {**examples, **{t: ELSEWHERE for t in targets if t != target}}
            missing = await probe(engine, kind, name, field, values, target, MISSING)
            # B's organization id too: ``usage`` and ``recordUsage`` take one.
            for identifier in [*ids["stripe"], *ids["ours"], B]:
                got = await probe(engine, kind, name, field, values, target, identifier)
                assert got == missing, (name, target, identifier, got, missing)
                for other in b_identifiers:
                    assert other not in got, (name, target, identifier, other)
            checked[name] = checked.get(name, 0) + 1
    # ``recordUsage`` names its organization inside the input: B's answers as one that exists
    # nowhere does, and B's usage is left as it was (the snapshot below).
    record = schema.type_map["Mutation"].fields["recordUsage"]
    reports = []
    for org in (B, MISSING):
        event = {**EXAMPLES[("recordUsage", "input")], "organizationId": org}
        text = await ask(engine, operation("mutation", "recordUsage", record, {"input": event}), A)
        reports.append(text.replace(org, "<ID>"))
    assert reports[0] == reports[1], reports
    assert '"FORBIDDEN"' in reports[0]
    assert await snapshot_b(emulator, ids["stripe"][1]) == before
    tenant_fields = {
        name for _, name, _ in root_fields(schema) if name not in PUBLIC and name not in ADMIN
    }
    assert set(checked) == tenant_fields
    assert {"checkoutSession", "paymentIntent", "verifyCheckoutSession", "refundPayment"} <= {
        n for n, c in checked.items() if c and n in tenant_fields
    }


async def test_s3_admin_fields_are_forbidden_to_members(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    schema = build_schema()._schema  # type: ignore[attr-defined]
    described = {
        name
        for _, name, field in root_fields(schema)
        if (field.description or "").startswith("Admin:")
    }
    assert described == ADMIN  # the list here and the schema's own "Admin:" notes agree
    for kind, name, field in root_fields(schema):
        if name not in ADMIN:
            continue
        targets, examples = plan_arguments(name, field)
        values = {**examples, **{t: "evt_123" for t in targets}}
        answer = json.loads(await ask(engine, operation(kind, name, field, values), A))
        assert answer["data"] is None or answer["data"][name] is None, (name, answer)
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", (name, answer)
    plans = json.loads(await ask(engine, {"query": '{ plan(uid: "pro") { name active } }'}, A))
    assert plans["data"]["plan"] == {"name": "Pro", "active": True}  # nothing was changed


async def test_s1_a_card_of_another_organization_cannot_pay_for_mine(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    ids = await make_b(engine, stripe_client)
    b_card = ids["stripe"][2]
    await call(engine, CREATE_CUSTOMER, org=A)
    mine = only(await call(engine, CREATE_PI, {"input": {"amount": 900, "currency": "usd"}}, org=A))
    intent_id = mine["paymentIntent"]["id"]
    before = await snapshot_b(emulator, ids["stripe"][1])
    result = only(await call(engine, CONFIRM_PI, {"id": intent_id, "pm": b_card}, org=A))
    # The engine refuses another customer's card itself (issue 11), before Stripe confirms.
    assert result["__typename"] == "NotFoundError", result
    [intent] = [p for p in emulator.objects("payment_intent") if p["id"] == intent_id]
    assert intent["status"] != "succeeded"
    assert await snapshot_b(emulator, ids["stripe"][1]) == before
