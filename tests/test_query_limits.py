"""S4 query limits, on in every environment: depth 8, 15 aliases, 2,000 tokens, list sizes
(`first` at most 100). Each rejection carries ``extensions.code``. The validation rules are
built once (``schema._LIMIT_RULES``) so the validation cache keeps working."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from strawberry.extensions import AddValidationRules, ValidationCache

from revenue_engine.documents import Customer
from revenue_engine.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS, build_schema
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.gql import ADMIN
from tests.test_production_profile import production

Start = Callable[[Settings], Any]


@pytest.fixture(params=["development", "production"])
async def any_env(request: pytest.FixtureRequest, client_for: Start) -> httpx.AsyncClient:
    settings = production() if request.param == "production" else make_settings()
    client: httpx.AsyncClient = await client_for(settings)
    return client


async def post(client: httpx.AsyncClient, query: str, **headers: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def nested(depth: int) -> str:
    """A selection ``depth`` levels below the root field (the schema has no recursive type, so
    beyond ``prices`` the field names are invalid: the depth rule still measures them)."""
    inner = "".join(f"{{ f{i} " for i in range(depth - 1)) + "}" * (depth - 1)
    return f"{{ plans {{ prices {inner} }} }}"


async def test_depth_over_the_limit_is_rejected(any_env: httpx.AsyncClient) -> None:
    over = await post(any_env, nested(MAX_DEPTH + 1))
    assert over["data"] is None
    depth = [e for e in over["errors"] if "maximum operation depth" in e["message"]]
    assert depth
    assert depth[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    at_limit = await post(any_env, nested(MAX_DEPTH))
    assert not [e for e in at_limit["errors"] if "depth" in e["message"]]


async def test_aliases_over_the_limit_are_rejected(any_env: httpx.AsyncClient) -> None:
    def aliased(n: int) -> str:
        return "{ " + " ".join(f"a{i}: plans {{ uid }}" for i in range(n)) + " }"

    over = await post(any_env, aliased(MAX_ALIASES + 1))
    assert over["data"] is None
    assert over["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "aliases" in over["errors"][0]["message"]
    at_limit = await post(any_env, aliased(MAX_ALIASES))
    assert "errors" not in at_limit
    assert len(at_limit["data"]) == MAX_ALIASES


async def test_a_token_flood_is_rejected_before_parsing_it_all(any_env: httpx.AsyncClient) -> None:
    flood = "{ " + "plans { uid } " * (MAX_TOKENS // 4 + 10) + "}"
    body = await post(any_env, flood)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert f"more than {MAX_TOKENS} tokens" in body["errors"][0]["message"]


async def test_a_misspelled_field_has_a_code(any_env: httpx.AsyncClient) -> None:
    body = await post(any_env, "{ plans { uidd } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_customers_first_is_capped_at_100(client: httpx.AsyncClient) -> None:
    await Customer.insert_many(
        [Customer(organization_id=f"org_{i:03}", stripe_customer_id=f"cus_{i}") for i in range(105)]
    )
    query = "{ customers(first: %d) { nodes { organizationId } pageInfo { hasNextPage } } }"
    full = await post(client, query % 100, **ADMIN)
    assert len(full["data"]["customers"]["nodes"]) == 100
    assert full["data"]["customers"]["pageInfo"]["hasNextPage"] is True
    for bad in (1000, 0, -5):
        body = await post(client, query % bad, **ADMIN)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_webhook_events_first_over_100_is_a_typed_error(client: httpx.AsyncClient) -> None:
    body = await post(client, "{ webhookEvents(first: 101) { edges { cursor } } }", **ADMIN)
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    ok = await post(client, "{ webhookEvents(first: 100) { edges { cursor } } }", **ADMIN)
    assert "errors" not in ok


async def test_invoices_first_over_100_is_a_typed_error(client: httpx.AsyncClient) -> None:
    query = "{ invoices(first: %d) { nodes { id } pageInfo { hasNextPage } } }"
    for bad in (101, 0, -1):
        body = await post(client, query % bad, **{"x-organization-id": "org_a"})
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    ok = await post(client, query % 100, **{"x-organization-id": "org_a"})
    assert ok["data"] == {"invoices": {"nodes": [], "pageInfo": {"hasNextPage": False}}}


def test_every_list_argument_is_covered() -> None:
    """Every field taking ``first`` is one whose cap is tested here: a new paginated field
    fails this test until its cap is."""
    schema = build_schema()
    paginated = sorted(
        name
        for type_name in ("Query", "Mutation")
        for name, field in schema._schema.type_map[type_name].fields.items()  # type: ignore[attr-defined]
        if "first" in field.args
    )
    assert paginated == ["customers", "invoices", "webhookEvents"]


def test_limit_rules_are_built_once() -> None:
    """The limiter rule classes are the same objects in every schema and every request, so
    ``ValidationCache`` (keyed by them) keeps hitting (strawberry issue #4635)."""

    def rules(schema: Any) -> list[type]:
        found: list[type] = []
        for extension in schema.extensions:
            made = extension() if callable(extension) and not isinstance(extension, type) else None
            if isinstance(made, AddValidationRules):
                found += made.validation_rules
        return found

    first, second = build_schema(), build_schema(production())
    assert rules(first)
    assert rules(first) == rules(second)
    assert any(
        isinstance(e(), ValidationCache)
        for e in first.extensions
        if callable(e) and not isinstance(e, type)
    )
