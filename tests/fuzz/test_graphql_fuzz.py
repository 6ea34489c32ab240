"""Fuzzing /graphql through the real app on both stores: every query and mutation of the schema
the app builds (a new field is fuzzed without touching this file), as a member, an admin and an
anonymous caller, with hostile variables and literals; then documents in odd shapes and bodies
of any JSON. The property, always: no HTTP 5xx and no ``INTERNAL_SERVER_ERROR``.

Bounded for the suite (``budget``): a fixed number of examples per root field, fewer on the
slow wire store, derandomized so a run is reproducible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import graphql
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from revenue_engine.schema import build_schema
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.fuzz.budget import examples, fuzzing
from tests.fuzz.documents import Request, odd_requests, requests_for, root_fields
from tests.fuzz.engine import Answer, Engine
from tests.fuzz.probes import operation, probes
from tests.fuzz.values import any_json, dumps, text
from tests.gql import ADMIN, MEMBER
from tests.stripe_events import SECRET, body_of, event, signature, with_secrets

#: The schema the app serves (development: the same types as production).
SCHEMA: graphql.GraphQLSchema = build_schema(make_settings())._schema
FIELDS = root_fields(SCHEMA)

ROLES: dict[str, dict[str, str]] = {"member": MEMBER, "admin": ADMIN, "anonymous": {}}
#: Member and admin weigh most; an anonymous caller is refused early, so it needs fewer.
ROLE = st.sampled_from(("member", "admin", "member", "admin", "anonymous"))

#: Examples per test on (the in-memory store, the wire server: fewer, it is the slower one).
PER_FIELD = (15, 8)
ODD_DOCUMENTS = (80, 30)
BODIES = (40, 20)

_IDS = re.compile(r'"((?:cus|pi|cs|evt|sub|in|pm)_[A-Za-z0-9_]+)"')


def check(answer: Answer, what: str, request_text: str) -> None:
    problems = answer.problems()
    shown = request_text if len(request_text) <= 2_000 else request_text[:2_000] + "…"
    summary = f"{what}: {answer.summary()}"
    assert not problems, f"{summary}\nrequest: {shown}\n" + "\n".join(problems)


@dataclass
class Seeds:
    """Ids of live objects: all of them (strings draw from these), and the member's by kind."""

    ids: tuple[str, ...]
    member: dict[str, str]

    def hints(self, name: str) -> dict[str, str]:
        """Ids for the id arguments of root field ``name`` (the member's objects)."""
        kind = "evt" if "ebhook" in name else "cs" if "heckout" in name else "pi"
        hints = {"id": self.member.get(kind, "x"), "sessionId": self.member.get("cs", "x")}
        return {**hints, "paymentIntentId": self.member.get("pi", "x")}


def seed(engine: Engine) -> Seeds:
    """Live objects of both organizations (customer, payment intent, checkout session, a stored
    webhook event), whose ids the strings then draw from, so lookups can hit."""
    operations = [
        'mutation { createCustomer(input: {email: "a@example.com"}) { __typename } }',
        'mutation { createPaymentIntent(input: {amount: 2900, currency: "usd"}) '
        "{ ... on PaymentIntentPayload { paymentIntent { id } } } }",
        'mutation { createCheckoutSession(input: {planUid: "starter", billingInterval: MONTH}) '
        "{ ... on CheckoutPayload { sessionId } } }",
    ]
    found: list[str] = []
    member: dict[str, str] = {}
    for headers in (MEMBER, ADMIN):
        for query in operations:
            body = dumps({"query": query})
            answer = engine.graphql(body, headers)
            check(answer, "seeding", body)
            ids = _IDS.findall(answer.text)
            found += ids
            if headers is MEMBER:
                member.update((i.split("_")[0], i) for i in ids)
    payload = event("balance.available", {"object": "balance", "available": []})
    raw = body_of(payload)
    answer = engine.post(
        "/webhooks/stripe",
        raw,
        {"content-type": "application/json", "stripe-signature": signature(raw, SECRET)},
    )
    check(answer, "seeding a webhook event", raw.decode())
    found.append(payload["id"])
    member["evt"] = payload["id"]
    return Seeds(tuple(sorted(set(found))), member)


def started(fuzz_settings: Settings) -> Engine:
    return Engine(with_secrets(fuzz_settings))


@pytest.mark.parametrize(("kind", "name"), FIELDS, ids=[f"{k}.{n}" for k, n in FIELDS])
def test_every_root_field_answers_without_a_server_error(
    fuzz_settings: Settings, kind: str, name: str
) -> None:
    with started(fuzz_settings) as engine:
        seeds = seed(engine).ids

        @fuzzing(examples(*PER_FIELD, fuzz_settings))
        @given(request=requests_for(SCHEMA, kind, name, seeds), role=ROLE)
        def field_holds(request: Request, role: str) -> None:
            note(f"as {role}")
            answer = engine.graphql(request.text(), ROLES[role])
            check(answer, f"{kind} {name} as {role}", request.text())

        field_holds()


def _root(kind: str) -> graphql.GraphQLObjectType:
    root = SCHEMA.query_type if kind == "query" else SCHEMA.mutation_type
    assert root is not None
    return root


WITH_ARGUMENTS = [(k, n) for k, n in FIELDS if _root(k).fields[n].args]


@pytest.mark.parametrize(
    ("kind", "name"), WITH_ARGUMENTS, ids=[f"{k}.{n}" for k, n in WITH_ARGUMENTS]
)
def test_every_argument_place_takes_hostile_values(
    fuzz_settings: Settings, kind: str, name: str
) -> None:
    """The sweep (``probes``): each scalar place of the arguments in turn gets a lone
    surrogate, a 100,000-character string, the Int boundaries and 10^30, the rest plausible;
    as a member and as an admin. Every failing place is listed, not only the first."""
    field = _root(kind).fields[name]
    query = operation(kind, name, field)
    failures: list[str] = []
    with started(fuzz_settings) as engine:
        hints = seed(engine).hints(name)
        for place, variables in probes(field.args, hints):
            body = dumps({"query": query, "variables": variables})
            for role in ("member", "admin"):
                answer = engine.graphql(body, ROLES[role])
                if answer.problems():
                    failures.append(f"{name}({place}) as {role}: {answer.summary()}")
    assert not failures, f"{len(failures)} failing probes of {query}\n" + "\n".join(failures)


def test_every_root_field_is_fuzzed() -> None:
    # The parametrisation comes from the schema itself: a new field is fuzzed without a change
    # here. Guard that it did not come out empty (a schema that failed to build, say).
    assert ("query", "plans") in FIELDS
    assert ("mutation", "createCheckoutSession") in FIELDS
    assert len(FIELDS) == len(SCHEMA.query_type.fields) + len(SCHEMA.mutation_type.fields)  # type: ignore[union-attr]


def test_documents_in_odd_shapes_answer_without_a_server_error(fuzz_settings: Settings) -> None:
    with started(fuzz_settings) as engine:

        @fuzzing(examples(*ODD_DOCUMENTS, fuzz_settings))
        @given(request=odd_requests(SCHEMA), role=ROLE)
        def document_holds(request: Request, role: str) -> None:
            note(f"as {role}")
            answer = engine.graphql(request.text(), ROLES[role])
            check(answer, f"odd document as {role}", request.text())

        document_holds()


def _bodies() -> st.SearchStrategy[str]:
    envelope = st.fixed_dictionaries(
        {},
        optional={
            "query": st.one_of(text(), any_json(), st.just("{ viewer { organizationId } }")),
            "variables": any_json(),
            "operationName": st.one_of(text(), any_json()),
            "extensions": any_json(),
        },
    )
    return st.one_of(envelope.map(dumps), any_json().map(dumps), text())


def test_any_json_body_answers_without_a_server_error(fuzz_settings: Settings) -> None:
    with started(fuzz_settings) as engine:

        @fuzzing(examples(*BODIES, fuzz_settings))
        @given(body=_bodies(), role=ROLE)
        def body_holds(body: str, role: str) -> None:
            note(f"as {role}")
            content = body.encode("utf-8", "surrogatepass")
            answer = engine.post(
                "/graphql", content, {"content-type": "application/json", **ROLES[role]}
            )
            check(answer, f"body as {role}", body)

        body_holds()
