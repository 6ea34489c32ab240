"""The production profile through the real app (S4, S5): no IDE, no introspection, no field
suggestions, no queries over GET but the catalog's, no batching or multipart, development headers ignored —
while development keeps its conveniences. Mutations over GET and non-JSON POSTs are refused
in every environment.

Most tests run the production profile on the in-memory store: ``production()`` flips an
otherwise valid test configuration to ``ENVIRONMENT=production`` (the settings' safety checks,
which refuse an in-memory store in production, are covered by ``test_settings``). One test
starts a fully valid production configuration on the wire backend."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from revenue_engine.auth import issue_token
from revenue_engine.settings import DEMO_PLANS_FILE, Environment, Settings
from tests.conftest import make_settings
from tests.wire import WireServer

Start = Callable[[Settings], Any]
PLANS = {"query": "{ plans { uid } }"}
INTROSPECTION = {"query": "{ __schema { queryType { name } } }"}
TYPO = {"query": '{ plan(uid: "pro") { nam } }'}


def production(**overrides: Any) -> Settings:
    """A production profile on the in-memory store (see the module docstring). It has a Stripe
    key, so no emulator is mounted; its API base is a closed port: nothing here calls Stripe."""
    values: dict[str, Any] = {
        "mongodb_database": f"t_{uuid.uuid4().hex[:12]}",
        "stripe_secret_key": "sk_test_" + "p1" * 12,
        "stripe_api_base": "http://127.0.0.1:9",
    }
    base = make_settings(**{**values, **overrides})
    return base.model_copy(update={"environment": Environment.PRODUCTION})


@pytest.fixture
async def prod(client_for: Start) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(production(auth_dev_headers=True, graphiql=None))
    return client


async def test_production_serves_no_ide_and_no_demo(prod: httpx.AsyncClient) -> None:
    page = await prod.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert "graphiql" not in page.text.lower()
    assert (await prod.get("/demo/")).status_code == 404
    assert (await prod.get("/stripe-emulator/v1/customers")).status_code == 404


async def test_production_refuses_introspection_with_a_code(prod: httpx.AsyncClient) -> None:
    body = (await prod.post("/graphql", json=INTROSPECTION)).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in body["errors"][0]["message"].lower()
    # __typename is not introspection: clients rely on it for unions.
    ok = (await prod.post("/graphql", json={"query": "{ __typename }"})).json()
    assert ok == {"data": {"__typename": "Query"}}


async def test_production_gives_no_field_suggestions(
    prod: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    body = (await prod.post("/graphql", json=TYPO)).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Did you mean" not in str(body)
    # Development helps: the same typo gets a suggestion there.
    dev = (await client.post("/graphql", json=TYPO)).json()
    assert "Did you mean" in str(dev)


@pytest.mark.parametrize(
    "request_body",
    [
        # An enum value in variables, and one written in the query.
        {
            "query": "mutation($i: PlanInput!) { upsertPlan(input: $i) { __typename } }",
            "variables": {
                "i": {
                    "uid": "x",
                    "name": "X",
                    "prices": [{"interval": "MONTHLY", "amount": 100, "currency": "usd"}],
                }
            },
        },
        {
            "query": 'mutation { upsertPlan(input: {uid: "x", name: "X", prices: '
            '[{interval: MONTHLY, amount: 100, currency: "usd"}]}) { __typename } }'
        },
    ],
)
async def test_production_gives_no_value_suggestions(
    prod: httpx.AsyncClient, client: httpx.AsyncClient, request_body: dict[str, object]
) -> None:
    body = (await prod.post("/graphql", json=request_body)).json()
    assert body["errors"]
    assert "Did you mean" not in str(body)
    assert "'MONTH'" not in str(body)
    dev = (await client.post("/graphql", json=request_body)).json()
    assert "Did you mean" in str(dev)


async def test_production_serves_only_catalog_queries_over_get(
    prod: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # The public catalog over GET, cacheable by a browser or CDN (schema.http_cache) ...
    served = await prod.get("/graphql", params=PLANS)
    assert served.status_code == 200
    assert served.json()["data"]["plans"]
    assert served.headers["etag"]
    assert served.headers["cache-control"].startswith("public")
    # ... and nothing else: any other query over GET is refused unexecuted, as before.
    for query in ("{ viewer { organizationId } }", "{ plans { uid } viewer { organizationId } }"):
        response = await prod.get("/graphql", params={"query": query})
        assert response.status_code == 400, response.text
        assert "data" not in response.json()
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert response.headers["cache-control"] == "no-store"
    # Development allows any GET query (handy with curl); it is still read-only.
    dev = await client.get("/graphql", params={"query": "{ viewer { organizationId } }"})
    assert dev.status_code == 200
    assert "data" in dev.json()


@pytest.mark.parametrize("profile", ["production", "development"])
async def test_mutations_over_get_are_refused(client_for: Start, profile: str) -> None:
    settings = production() if profile == "production" else make_settings(environment=profile)
    client: httpx.AsyncClient = await client_for(settings)
    token = issue_token(settings, "org_get", roles=["admin"])
    response = await client.get(
        "/graphql",
        params={"query": 'mutation { archivePlan(uid: "pro") { __typename } }'},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code in (400, 405)
    plans = (await client.post("/graphql", json=PLANS)).json()["data"]["plans"]
    assert "pro" in [p["uid"] for p in plans]  # nothing was archived


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"query": "{ plans { uid } }"}'),
        ("text/plain;charset=UTF-8", b'{"query": "{ plans { uid } }"}'),
        ("application/x-www-form-urlencoded", b"query=%7B+plans+%7B+uid+%7D+%7D"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            b'{"query": "{ plans { uid } }"}\r\n--x\r\nContent-Disposition: form-data; '
            b'name="map"\r\n\r\n{}\r\n--x--\r\n',
        ),
        ("", b'{"query": "{ plans { uid } }"}'),
    ],
    ids=["text-plain", "text-plain-charset", "form", "multipart", "no-content-type"],
)
async def test_non_json_posts_are_refused(
    prod: httpx.AsyncClient, content_type: str, content: bytes
) -> None:
    # The "simple request" content types a cross-site form can send without a CORS preflight.
    headers = {"content-type": content_type} if content_type else {}
    response = await prod.post("/graphql", content=content, headers=headers)
    assert 400 <= response.status_code < 500
    assert "plans" not in response.text


async def test_batched_operations_are_refused(prod: httpx.AsyncClient) -> None:
    response = await prod.post("/graphql", json=[PLANS, PLANS])
    assert response.status_code == 400
    assert "uid" not in response.text


async def test_production_ignores_development_headers(prod: httpx.AsyncClient) -> None:
    # AUTH_DEV_HEADERS=true is set on this profile: production ignores it anyway.
    headers = {"x-organization-id": "org_x", "x-roles": "admin"}
    viewer = await prod.post(
        "/graphql", json={"query": "{ viewer { organizationId } }"}, headers=headers
    )
    assert viewer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    admin = await prod.post(
        "/graphql", json={"query": "{ customers { nodes { organizationId } } }"}, headers=headers
    )
    assert admin.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_production_masks_unexpected_errors_with_the_request_id(
    prod: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from revenue_engine.services import plan_store

    async def broken(**_: object) -> list[object]:
        raise KeyError("internal detail")

    monkeypatch.setattr(plan_store, "list_plans", broken)
    response = await prod.post("/graphql", json=PLANS, headers={"x-request-id": "prod-7"})
    assert response.status_code == 200
    assert response.json()["errors"] == [
        {
            "message": "Unexpected error (request id prod-7).",
            "locations": [{"line": 1, "column": 3}],
            "path": ["plans"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "prod-7"},
        }
    ]
    assert "internal detail" not in response.text
    assert response.headers["x-request-id"] == "prod-7"
    [record] = [r for r in caplog.records if "request_id=prod-7" in r.getMessage()]
    assert record.levelname == "ERROR"
    assert record.exc_info is not None


async def test_typed_errors_pass_through_the_mask(prod: httpx.AsyncClient) -> None:
    body = (await prod.post("/graphql", json={"query": "{ viewer { organizationId } }"})).json()
    assert body["errors"][0]["message"] == "authentication required"
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


@pytest.mark.wire
async def test_a_valid_production_configuration_on_a_real_database(
    client_for: Start, wire_server: WireServer | None
) -> None:
    if wire_server is None:
        pytest.skip("no MongoDB wire server")
    settings = make_settings(
        environment="production",
        public_base_url="https://billing.example.com",
        plans_file=DEMO_PLANS_FILE,
        mongodb_uri=wire_server.uri,
        mongodb_database=f"t_{uuid.uuid4().hex[:12]}",
        stripe_secret_key="sk_test_" + "p1" * 12,
        stripe_allow_test_key_in_production=True,
        stripe_api_base="http://127.0.0.1:9",  # not called by these requests
        stripe_webhook_secret=["whsec_" + "9c" * 16],
        auth_jwt_secret="j" * 48,
    )
    assert settings.is_production
    client: httpx.AsyncClient = await client_for(settings)
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/graphql", headers={"accept": "text/html"})).status_code == 404
    assert (await client.post("/graphql", json=INTROSPECTION)).json()["data"] is None
    assert "Did you mean" not in (await client.post("/graphql", json=TYPO)).text
    token = issue_token(settings, "org_prod")
    viewer = await client.post(
        "/graphql",
        json={"query": "{ viewer { organizationId } plans { uid } }"},
        headers={"authorization": f"Bearer {token}", "x-organization-id": "org_other"},
    )
    assert viewer.json()["data"]["viewer"] == {"organizationId": "org_prod"}
