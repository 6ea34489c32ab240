"""The HTTP surface through the real ASGI app: health, readiness, GraphiQL, request ids."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.wire import free_port


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_pings_the_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["mongo"]) == ("ok", "ok")
    # In process nothing serves the mounted emulator over HTTP: Stripe is reported, not required.
    assert body["stripe"] == "unreachable"


async def test_readyz_is_503_within_the_timeout_when_mongo_is_unreachable(
    client_for: Callable[[Settings], Any],
) -> None:
    # Nothing listens on this port: startup must not hang, readiness must say so quickly.
    settings = make_settings(
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/", mongodb_timeout_ms=300
    )
    started = time.monotonic()
    client: httpx.AsyncClient = await client_for(settings)
    assert time.monotonic() - started < 3
    health = await client.get("/healthz")
    assert health.status_code == 200
    started = time.monotonic()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert time.monotonic() - started < 2


async def test_graphiql_is_served_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_graphiql_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    """Every script and style of the IDE is served here, and is the file its hash names."""
    page = (await client.get("/graphql", headers={"accept": "text/html"})).text
    assert "http://" not in page
    assert "https://" not in page
    assets = re.findall(r'(?:src|href)="(/graphiql/[^"]+)"\s+integrity="sha384-([^"]+)"', page)
    assert len(assets) == 6
    for path, digest in assets:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert base64.b64encode(hashlib.sha384(response.content).digest()).decode() == digest


async def test_graphiql_can_be_switched_off(client_for: Callable[[Settings], Any]) -> None:
    client: httpx.AsyncClient = await client_for(make_settings(graphiql=False))
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()
    assert (await client.get("/graphiql/graphiql.min.js")).status_code == 404


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_graphql_rejects_other_methods(client: httpx.AsyncClient) -> None:
    response = await client.put("/graphql", json={"query": "{ plans { uid } }"})
    assert response.status_code == 405
