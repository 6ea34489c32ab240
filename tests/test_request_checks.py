"""Text that is not valid Unicode is refused at the edge of ``/graphql`` (issue 11, break 2).

A lone surrogate (``"a\\ud800b"``, written as a JSON escape: valid JSON) in any string of a
request — a variable at any depth or a key of one, a literal in the query text, the operation
name, the extensions, a GET request's variables — is ``BAD_USER_INPUT`` on both stores, and
nothing is written to the store or sent to Stripe (the emulator, over real HTTP, counts the
engine's requests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    build_schema,
    get_named_type,
    is_composite_type,
)
from stripe_emulator import Emulator, EmulatorServer

from revenue_engine.documents import DOCUMENT_MODELS
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.gql import ADMIN, MEMBER

#: A lone high surrogate between two letters: JSON can carry it, UTF-8 cannot.
S = "a\ud800b"


@dataclass(frozen=True)
class Case:
    """One request with ``S`` in one place; ``needle`` must appear in the error message."""

    name: str
    query: str
    variables: dict[str, Any]
    needle: str
    headers: dict[str, str]
    operation_name: str | None = None
    extensions: dict[str, Any] | None = None


def member(name: str, query: str, variables: dict[str, Any], needle: str) -> Case:
    return Case(name, query, variables, needle, MEMBER)


def admin(name: str, query: str, variables: dict[str, Any], needle: str) -> Case:
    return Case(name, query, variables, needle, ADMIN)


PLAN = {
    "uid": "text-plan",
    "name": "Text plan",
    "prices": [{"interval": "MONTH", "amount": 900, "currency": "usd"}],
}
UPSERT = "mutation($input: PlanInput!) { upsertPlan(input: $input) { __typename } }"
CHECKOUT = (
    "mutation($input: CheckoutInput!) { createCheckoutSession(input: $input) { __typename } }"
)
SUBSCRIBE = (
    "mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) "
    "{ __typename } }"
)
CHANGE = (
    "mutation($input: ChangePlanInput!) { changeSubscriptionPlan(input: $input) { __typename } }"
)
PAY = "mutation($input: PaymentIntentInput!) { createPaymentIntent(input: $input) { __typename } }"
CUSTOMER = "mutation($input: CustomerInput) { createCustomer(input: $input) { __typename } }"
UPDATE_CUSTOMER = (
    "mutation($input: CustomerInput!) { updateCustomer(input: $input) { __typename } }"
)


def plan(**overrides: Any) -> dict[str, Any]:
    return {**PLAN, **overrides}


def checkout(**overrides: Any) -> dict[str, Any]:
    return {"planUid": "starter", "billingInterval": "MONTH", **overrides}


def payment(**overrides: Any) -> dict[str, Any]:
    return {"amount": 1200, "currency": "usd", **overrides}


def _cases() -> list[Case]:
    price = {"interval": "MONTH", "amount": 900, "currency": S}
    return [
        # --- queries: ids, cursors, filters ----------------------------------------------
        member("plan(uid:)", "query($u: ID!) { plan(uid: $u) { uid } }", {"u": S}, "'$u'"),
        member(
            "checkoutSession(id:)",
            "query($id: ID!) { checkoutSession(id: $id) { sessionId } }",
            {"id": S},
            "'$id'",
        ),
        member(
            "invoices(after:)",
            "query($c: String) { invoices(after: $c) { pageInfo { hasNextPage } } }",
            {"c": S},
            "'$c'",
        ),
        member(
            "paymentIntent(id:)",
            "query($id: ID!) { paymentIntent(id: $id) { id } }",
            {"id": S},
            "'$id'",
        ),
        admin(
            "webhookEvents(type:)",
            "query($t: String) { webhookEvents(type: $t) { pageInfo { hasNextPage } } }",
            {"t": S},
            "'$t'",
        ),
        admin(
            "webhookEvents(after:)",
            "query($c: String) { webhookEvents(after: $c) { pageInfo { hasNextPage } } }",
            {"c": S},
            "'$c'",
        ),
        admin(
            "customers(after:)",
            "query($c: String) { customers(after: $c) { pageInfo { hasNextPage } } }",
            {"c": S},
            "'$c'",
        ),
        # --- plan mutations (admin) --------------------------------------------------------
        admin("upsertPlan name", UPSERT, {"input": plan(name=S)}, "'input.name'"),
        admin("upsertPlan uid", UPSERT, {"input": plan(uid=S)}, "'input.uid'"),
        admin("upsertPlan description", UPSERT, {"input": plan(description=S)}, "description"),
        admin("upsertPlan features", UPSERT, {"input": plan(features=["ok", S])}, "features[1]"),
        admin(
            "upsertPlan entitlement key",
            UPSERT,
            {"input": plan(entitlements=[{"key": S}])},
            "'input.entitlements[0].key'",
        ),
        admin("upsertPlan currency", UPSERT, {"input": plan(prices=[price])}, "prices[0]"),
        admin(
            "upsertPlan overage name",
            UPSERT,
            {"input": plan(overages=[{"key": "seats", "name": S, "prices": []}])},
            "'input.overages[0].name'",
        ),
        admin(
            "archivePlan(uid:)",
            "mutation($u: ID!) { archivePlan(uid: $u) { __typename } }",
            {"u": S},
            "'$u'",
        ),
        # --- customers ---------------------------------------------------------------------
        member("createCustomer name", CUSTOMER, {"input": {"name": S}}, "'input.name'"),
        member("createCustomer email", CUSTOMER, {"input": {"email": S}}, "'input.email'"),
        member("updateCustomer name", UPDATE_CUSTOMER, {"input": {"name": S}}, "'input.name'"),
        # --- checkout and subscriptions -----------------------------------------------------
        member("checkout planUid", CHECKOUT, {"input": checkout(planUid=S)}, "'input.planUid'"),
        member("checkout successPath", CHECKOUT, {"input": checkout(successPath=S)}, "success"),
        member("checkout cancelPath", CHECKOUT, {"input": checkout(cancelPath=S)}, "cancel"),
        member("checkout overages", CHECKOUT, {"input": checkout(overages=[S])}, "overages[0]"),
        member(
            "verifyCheckoutSession(sessionId:)",
            "mutation($s: ID!) { verifyCheckoutSession(sessionId: $s) { __typename } }",
            {"s": S},
            "'$s'",
        ),
        member("createSubscription planUid", SUBSCRIBE, {"input": checkout(planUid=S)}, "planUid"),
        member("changePlan planUid", CHANGE, {"input": checkout(planUid=S)}, "'input.planUid'"),
        member("changePlan overages", CHANGE, {"input": checkout(overages=[S])}, "overages[0]"),
        # --- payments and the portal ---------------------------------------------------------
        member("createPaymentIntent currency", PAY, {"input": payment(currency=S)}, "currency"),
        member(
            "createPaymentIntent metadata value",
            PAY,
            {"input": payment(metadata=[{"key": "order", "value": S}])},
            "'input.metadata[0].value'",
        ),
        member(
            "createPaymentIntent metadata key",
            PAY,
            {"input": payment(metadata=[{"key": S, "value": "x"}])},
            "'input.metadata[0].key'",
        ),
        member(
            "confirmPaymentIntent(id:)",
            'mutation($id: ID!) { confirmPaymentIntent(id: $id, paymentMethod: "pm_card_visa")'
            " { __typename } }",
            {"id": S},
            "'$id'",
        ),
        member(
            "confirmPaymentIntent(paymentMethod:)",
            'mutation($pm: String!) { confirmPaymentIntent(id: "pi_1", paymentMethod: $pm)'
            " { __typename } }",
            {"pm": S},
            "'$pm'",
        ),
        member(
            "cancelPaymentIntent(id:)",
            "mutation($id: ID!) { cancelPaymentIntent(id: $id) { __typename } }",
            {"id": S},
            "'$id'",
        ),
        admin(
            "refundPayment(paymentIntentId:)",
            "mutation($id: ID!) { refundPayment(paymentIntentId: $id) { __typename } }",
            {"id": S},
            "'$id'",
        ),
        member(
            "createBillingPortalSession(returnPath:)",
            "mutation($p: String) { createBillingPortalSession(returnPath: $p) { __typename } }",
            {"p": S},
            "'$p'",
        ),
        admin(
            "replayWebhookEvent(id:)",
            "mutation($id: ID!) { replayWebhookEvent(id: $id) { __typename } }",
            {"id": S},
            "'$id'",
        ),
        # --- elsewhere in the request ---------------------------------------------------------
        member("literal in the query", '{ plan(uid: "' + S + '") { uid } }', {}, "line 1"),
        admin(
            "literal in a mutation",
            'mutation { archivePlan(uid: "' + S + '") { __typename } }',
            {},
            "query text",
        ),
        member("comment in the query", "# " + S + "\n{ plans { uid } }", {}, "line 1, column 4"),
        member("a variable's name", "{ plans { uid } }", {S: 1}, "variable name"),
        member(
            "a key inside a variable",
            PAY,
            {"input": {**payment(), "meta" + S: 1}},
            "a key of 'input'",
        ),
        Case("operationName", "query Q { plans { uid } }", {}, "operationName", MEMBER, S),
        Case(
            "extensions",
            "{ plans { uid } }",
            {},
            "'extensions.trace[0]'",
            MEMBER,
            extensions={"trace": [S]},
        ),
        # The low half of a pair alone is as bad as the high half.
        member(
            "lone low surrogate",
            "query($u: ID!) { plan(uid: $u) { uid } }",
            {"u": "x\udc00"},
            "'$u'",
        ),
    ]


CASES = _cases()


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as server:
        yield server


def engine_settings(store_settings: Settings, emulator_url: str) -> Settings:
    """The store under test, Stripe as the emulator over HTTP, the development headers on."""
    return make_settings(
        environment="development",
        auth_dev_headers=True,
        stripe_api_base=emulator_url,
        public_base_url="http://testserver",
        mongodb_uri=store_settings.mongodb_uri,
        mongodb_database=store_settings.mongodb_database,
    )


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection."""
    return {
        model.__name__: [doc.model_dump() for doc in await model.find_all().to_list()]
        for model in DOCUMENT_MODELS
    }


def stripe_calls(emulator: Emulator) -> int:
    # The readiness probe lists events in the background; everything else is a request.
    return emulator.request_count() - emulator.request_count("GET", "/v1/events*")


def body_of(case: Case) -> bytes:
    payload: dict[str, Any] = {"query": case.query, "variables": case.variables}
    if case.operation_name is not None:
        payload["operationName"] = case.operation_name
    if case.extensions is not None:
        payload["extensions"] = case.extensions
    # ``json.dumps`` escapes the surrogate (``\ud800``), as a hostile client would send it.
    return json.dumps(payload).encode("ascii")


def problem(case: Case, response: httpx.Response) -> str | None:
    """What is wrong with the answer to ``case``, or ``None``."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    body = response.json()
    errors = body.get("errors") or [{}]
    code = errors[0].get("extensions", {}).get("code")
    message = errors[0].get("message", "")
    if body.get("data") is not None or code != "BAD_USER_INPUT" or case.needle not in message:
        return f"{code}: {message!r} data={body.get('data')!r}"
    return None


async def assert_all_refused(client: httpx.AsyncClient, cases: Sequence[Case]) -> None:
    """Every case answers ``BAD_USER_INPUT`` naming its place; all failures are listed."""
    failures: dict[str, str] = {}
    for case in cases:
        try:
            response = await client.post(
                "/graphql",
                content=body_of(case),
                headers={"content-type": "application/json", **case.headers},
            )
        except Exception as exc:  # the app crashed (a 500 in production): report, go on
            failures[case.name] = f"raised {exc!r}"
            continue
        found = problem(case, response)
        if found is not None:
            failures[case.name] = found
    assert not failures, "\n".join(f"{name}: {found}" for name, found in failures.items())


async def test_text_that_is_not_unicode_is_refused_everywhere(
    client_for: Callable[[Settings], Any],
    store_settings: Settings,
    emulator_server: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = emulator_server.emulator
    emulator.reset()
    client: httpx.AsyncClient = await client_for(
        engine_settings(store_settings, emulator_server.url)
    )
    # The member has a Stripe customer, so mutations that would call Stripe get that far.
    created = await client.post(
        "/graphql", json={"query": "mutation { createCustomer { __typename } }"}, headers=MEMBER
    )
    assert created.json()["data"]["createCustomer"]["__typename"] == "CustomerPayload"
    before, calls = await snapshot(), stripe_calls(emulator)

    await assert_all_refused(client, CASES)
    assert await snapshot() == before
    assert stripe_calls(emulator) == calls
    assert "unexpected error" not in caplog.text


# --- every string position of the schema ------------------------------------------------

SCHEMA = build_schema((Path(__file__).parent.parent / "schema.graphql").read_text("utf-8"))
STRINGS = ("String", "ID")
Steps = tuple[str | int, ...]


def string_positions(type_: GraphQLInputType, prefix: Steps = ()) -> Iterator[Steps]:
    """Every place under an argument of ``type_`` that takes a string (lists: index 0)."""
    if isinstance(type_, GraphQLNonNull):
        yield from string_positions(type_.of_type, prefix)
    elif isinstance(type_, GraphQLList):
        yield from string_positions(type_.of_type, (*prefix, 0))
    elif isinstance(type_, GraphQLInputObjectType):
        for name, field in type_.fields.items():
            yield from string_positions(field.type, (*prefix, name))
    elif isinstance(type_, GraphQLScalarType) and type_.name in STRINGS:
        yield prefix


def minimal(type_: GraphQLInputType) -> Any:
    """A small valid value of a required ``type_`` (``None`` for a nullable one)."""
    if not isinstance(type_, GraphQLNonNull):
        return None
    inner = type_.of_type
    if isinstance(inner, GraphQLList):
        return []
    if isinstance(inner, GraphQLInputObjectType):
        return {
            name: minimal(field.type)
            for name, field in inner.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    return {"Int": 1, "Float": 1.0, "Boolean": True}.get(inner.name, "x")


def with_text_at(type_: GraphQLInputType, path: Steps) -> Any:
    """A valid value of ``type_`` whose string at ``path`` is ``S``."""
    if isinstance(type_, GraphQLNonNull):
        return with_text_at(type_.of_type, path)
    if not path:
        return S
    if isinstance(type_, GraphQLList):
        return [with_text_at(type_.of_type, path[1:])]
    assert isinstance(type_, GraphQLInputObjectType)
    value = minimal(GraphQLNonNull(type_))
    value[str(path[0])] = with_text_at(type_.fields[str(path[0])].type, path[1:])
    return value


def _sweep() -> list[Case]:
    cases = []
    for operation, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type)):
        assert root is not None
        for field_name, field in root.fields.items():
            cases += _field_cases(operation, field_name, field)
    return cases


def _field_cases(operation: str, field_name: str, field: GraphQLField) -> list[Case]:
    headers = ADMIN if (field.description or "").startswith("Admin:") else MEMBER
    selection = " { __typename }" if is_composite_type(get_named_type(field.type)) else ""
    declared = ", ".join(f"${name}: {arg.type}" for name, arg in field.args.items())
    passed = ", ".join(f"{name}: ${name}" for name in field.args)
    query = f"{operation}({declared}) {{ {field_name}({passed}){selection} }}"
    cases = []
    for arg_name, arg in field.args.items():
        for path in string_positions(arg.type):
            variables = {name: minimal(other.type) for name, other in field.args.items()}
            variables[arg_name] = with_text_at(arg.type, path)
            where = quoted((arg_name, *path))
            cases.append(Case(f"{field_name}: {where}", query, variables, where, headers))
    return cases


def quoted(steps: Steps) -> str:
    """A place as graphql-core writes input paths: ``'input.metadata[0].value'``."""
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return f"'{out}'"


SWEEP = _sweep()


def test_the_sweep_reaches_every_root_field_that_takes_text() -> None:
    swept = {case.name.split(":")[0] for case in SWEEP}
    assert {"plan", "invoices", "upsertPlan", "createPaymentIntent", "replayWebhookEvent"} <= swept
    assert len(SWEEP) >= 40


async def test_every_string_position_of_the_schema_refuses_the_text(
    client_for: Callable[[Settings], Any],
    store_settings: Settings,
    emulator_server: EmulatorServer,
) -> None:
    emulator = emulator_server.emulator
    emulator.reset()
    client: httpx.AsyncClient = await client_for(
        engine_settings(store_settings, emulator_server.url)
    )
    before, calls = await snapshot(), stripe_calls(emulator)
    await assert_all_refused(client, SWEEP)
    assert await snapshot() == before
    assert stripe_calls(emulator) == calls


async def test_a_get_query_gets_the_same_check(
    client_for: Callable[[Settings], Any],
    store_settings: Settings,
    emulator_server: EmulatorServer,
) -> None:
    client: httpx.AsyncClient = await client_for(
        engine_settings(store_settings, emulator_server.url)
    )
    params = {
        "query": "query($u: ID!) { plan(uid: $u) { uid } }",
        "variables": json.dumps({"u": S}),
    }
    response = await client.get("/graphql", params=params, headers=MEMBER)
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "'$u'" in error["message"]
    extensions = {"query": "{ plans { uid } }", "extensions": json.dumps({"k": {"v": S}})}
    response = await client.get("/graphql", params=extensions, headers=MEMBER)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_valid_text_beyond_ascii_is_untouched(
    client_for: Callable[[Settings], Any],
    store_settings: Settings,
    emulator_server: EmulatorServer,
) -> None:
    """A proper surrogate pair (an emoji) and other non-ASCII text are ordinary input."""
    client: httpx.AsyncClient = await client_for(
        engine_settings(store_settings, emulator_server.url)
    )
    name = "Pläne \U0001f600 \ud83d\ude00"  # the second emoji arrives as an escaped pair
    query = (
        "mutation($input: PlanInput!) { upsertPlan(input: $input) "
        "{ ... on PlanPayload { plan { name } } } }"
    )
    body = json.dumps({"query": query, "variables": {"input": plan(name=name)}})
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json", **ADMIN}
    )
    assert response.json()["data"]["upsertPlan"]["plan"]["name"] == "Pläne \U0001f600 \U0001f600"
