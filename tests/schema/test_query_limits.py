"""S4 query limits, on in every environment: depth 8, 15 aliases, 2,000 tokens, list sizes
(`first` at most 100). Each rejection carries ``extensions.code``. The validation rules are
module-level classes (``schema.with_limits``) so the validation cache keeps working. The cost
rule itself (fragments, expansion, saturation, timing) is tested in ``test_query_cost``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from graphql import specified_rules
from strawberry.schema.schema import validate_document

from revenue_engine.documents import Customer
from revenue_engine.schema import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TOKENS,
    PipelineRunner,
    build_schema,
    caches,
    with_limits,
)
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.gql import ADMIN
from tests.test_app_production import production

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


async def test_meter_error_reports_first_over_100_is_a_typed_error(
    client: httpx.AsyncClient,
) -> None:
    query = "{ meterErrorReports(first: %d) { stripeEventId } }"
    for bad in (101, 0, -1):
        body = await post(client, query % bad, **ADMIN)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    ok = await post(client, query % 100, **ADMIN)
    assert ok["data"] == {"meterErrorReports": []}


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
    assert paginated == ["customers", "invoices", "meterErrorReports", "webhookEvents"]


async def test_the_validation_cache_keeps_hitting(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit rules are module-level classes, so every request validates with an equal rule
    tuple and the cache (keyed by it and the query text) hits on a repeated query
    (strawberry #4635)."""
    validated: list[object] = []

    def counting(*args: Any) -> Any:
        validated.append(args[1])
        return validate_document(*args)

    monkeypatch.setattr(caches, "validate_document", counting)
    query = f"{{ plans {{ uid }} }} # {uuid.uuid4().hex}"
    await post(client, query)
    await post(client, query)
    assert len(validated) == 1
    await post(client, query + " ")
    assert len(validated) == 2
    assert with_limits(tuple(specified_rules)) == with_limits(tuple(specified_rules))
    schema = build_schema(production())
    runner = schema.create_extensions_runner(Any, [])  # type: ignore[arg-type]
    assert isinstance(runner, PipelineRunner)
    assert runner.production


async def test_equal_deep_documents_from_different_texts_are_validated(
    any_env: httpx.AsyncClient,
) -> None:
    """Two texts that parse to the same document nested 190 levels (a comment differs): the
    old cache, keyed by the document, compared the two trees recursively and answered
    INTERNAL_SERVER_ERROR (RecursionError)."""
    deep = "{" + "plans{" * 190 + "uid" + "}" * 190 + "}"
    for comment in ("# aaaa", "# bbbb", "# cccc"):
        body = await post(any_env, f"{comment}\n{deep}")
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "maximum operation depth" in body["errors"][0]["message"]


async def test_a_query_text_over_the_length_limit_is_not_parsed(
    any_env: httpx.AsyncClient,
) -> None:
    """Comments and strings are not tokens, but the parser still reads them: a text over
    MAX_QUERY_LENGTH is refused before parsing."""
    query = "{ __typename }\n#"
    over = await post(any_env, query + "x" * (MAX_QUERY_LENGTH - len(query) + 1))
    assert over.get("data") is None
    assert over["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert f"longer than {MAX_QUERY_LENGTH} characters" in over["errors"][0]["message"]
    at_limit = await post(any_env, query + "x" * (MAX_QUERY_LENGTH - len(query)))
    assert at_limit == {"data": {"__typename": "Query"}}
