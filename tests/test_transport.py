"""Transport hygiene through the real app: body limits on every route (the webhook route keeps
its own), security headers on HTML pages, CORS from settings, Server-Timing."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from revenue_engine.settings import Settings
from revenue_engine.transport import GRAPHIQL_CSP, PAGE_CSP
from tests.conftest import make_settings
from tests.stripe_events import SECRET, event, post

Start = Callable[[Settings], Any]
PLANS = {"query": "{ plans { uid } }"}
LIMIT = 4096


def dev(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "mongodb_database": f"t_{uuid.uuid4().hex[:12]}",
    }
    return make_settings(**{**values, **overrides})


@pytest.fixture
async def small(client_for: Start) -> httpx.AsyncClient:
    """Body limit 4 KiB, webhook limit left at its 1 MiB default."""
    client: httpx.AsyncClient = await client_for(
        dev(http_max_body_bytes=LIMIT, stripe_webhook_secret=[SECRET])
    )
    return client


def padded_query(size: int) -> bytes:
    body = b'{"query": "{ plans { uid } }", "variables": {"pad": "'
    return body + b"x" * (size - len(body) - 3) + b'"}}'


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# --- body limits -------------------------------------------------------------------------


async def test_a_body_within_the_limit_is_served(small: httpx.AsyncClient) -> None:
    response = await small.post(
        "/graphql", content=padded_query(LIMIT), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["plans"]


async def test_a_declared_body_over_the_limit_is_413(small: httpx.AsyncClient) -> None:
    response = await small.post(
        "/graphql", content=padded_query(LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "TOO_LARGE"
    assert response.headers["x-request-id"]


async def test_a_streamed_body_over_the_limit_is_413(small: httpx.AsyncClient) -> None:
    received: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        async for chunk in chunks(padded_query(50_000)):
            received.append(len(chunk))
            yield chunk

    # No Content-Length: chunked, as a client that does not say how much is coming.
    response = await small.post(
        "/graphql", content=stream(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert sum(received) < 50_000  # refused before the whole body was read


async def test_a_bad_content_length_is_400(small: httpx.AsyncClient) -> None:
    response = await small.post(
        "/graphql",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "x"},
    )
    assert response.status_code == 400


async def test_the_emulator_mount_is_limited_too(small: httpx.AsyncClient) -> None:
    response = await small.post(
        "/stripe-emulator/checkout/cs_x/pay", content=b"card=" + b"4" * LIMIT
    )
    assert response.status_code == 413


async def test_the_webhook_route_keeps_its_own_limit(small: httpx.AsyncClient) -> None:
    # 100 KiB is over HTTP_MAX_BODY_BYTES here but within WEBHOOK_MAX_BODY_BYTES (1 MiB).
    payload = event("balance.available", {"object": "balance", "pad": "x" * 100_000})
    response = await post(small, payload)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    huge = event("balance.available", {"object": "balance", "pad": "x" * 1_100_000})
    assert (await post(small, huge)).status_code == 413


def test_the_body_limit_has_a_floor() -> None:
    with pytest.raises(ValidationError):
        make_settings(http_max_body_bytes=10)


# --- security headers --------------------------------------------------------------------


async def test_graphiql_runs_only_scripts_served_from_this_origin(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == GRAPHIQL_CSP
    assert "frame-ancestors 'none'" in GRAPHIQL_CSP
    [script_src] = [d for d in GRAPHIQL_CSP.split("; ") if d.startswith("script-src")]
    assert script_src == "script-src 'self'"  # no CDN, no inline script
    assert "https:" not in GRAPHIQL_CSP
    # Every script on the page is a file under /graphiql/ that is served.
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts
    assert all('src="/graphiql/' in attributes for attributes in scripts)
    for src in re.findall(r'<script[^>]*src="([^"]+)"', page.text):
        assert (await client.get(src)).status_code == 200, src
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/demo/", "/stripe-emulator/checkout/cs_missing"])
async def test_html_pages_get_security_headers(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cross-origin-opener-policy"] == "same-origin"


async def test_json_answers_get_nosniff_but_no_page_policy(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=PLANS)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers
    assert "strict-transport-security" not in response.headers


async def test_https_deployments_send_hsts(client_for: Start) -> None:
    client: httpx.AsyncClient = await client_for(dev(public_base_url="https://billing.example.com"))
    response = await client.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


# --- CORS --------------------------------------------------------------------------------

APP = "https://app.example.com"


def preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }


async def test_cors_is_off_unless_configured(client: httpx.AsyncClient) -> None:
    response = await client.options("/graphql", headers=preflight(APP))
    assert "access-control-allow-origin" not in response.headers
    simple = await client.post("/graphql", json=PLANS, headers={"origin": APP})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allows_the_configured_origins_only(client_for: Start) -> None:
    client: httpx.AsyncClient = await client_for(dev(cors_allow_origins=APP + ",https://b.example"))
    allowed = await client.options("/graphql", headers=preflight(APP))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    refused = await client.options("/graphql", headers=preflight("https://evil.example"))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = await client.post("/graphql", json=PLANS, headers={"origin": APP})
    assert simple.headers["access-control-allow-origin"] == APP
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "server-timing" in exposed
    assert "x-request-id" in exposed


async def test_cors_credentials_are_opt_in(client_for: Start) -> None:
    client: httpx.AsyncClient = await client_for(
        dev(cors_allow_origins=[APP], cors_allow_credentials=True)
    )
    allowed = await client.options("/graphql", headers=preflight(APP))
    assert allowed.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize(
    ("origins", "credentials"),
    [(["*"], True), (["https://app.example.com/path"], False), (["app.example.com"], False)],
)
def test_unsafe_cors_settings_are_refused(origins: list[str], credentials: bool) -> None:
    with pytest.raises(ValidationError, match="CORS"):
        make_settings(cors_allow_origins=origins, cors_allow_credentials=credentials)


def test_cors_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://a.example, https://b.example:8443/")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_allow_origins == ["https://a.example", "https://b.example:8443"]


# --- Server-Timing -----------------------------------------------------------------------

TIMING = re.compile(r"^app;dur=([\d.]+), db;dur=([\d.]+), stripe;dur=([\d.]+)$")


def durations(response: httpx.Response) -> tuple[float, float, float]:
    match = TIMING.match(response.headers["server-timing"])
    assert match, response.headers["server-timing"]
    app, db, stripe = (float(v) for v in match.groups())
    return app, db, stripe


async def test_server_timing_counts_database_time(
    client_for: Start, store_settings: Settings
) -> None:
    # Both backends: the in-memory store and Motor over the wire are each instrumented.
    client: httpx.AsyncClient = await client_for(store_settings)
    response = await client.post("/graphql", json=PLANS)
    app, db, stripe = durations(response)
    assert app > 0
    assert db > 0
    assert stripe == 0
    health = durations(await client.get("/healthz"))
    assert health[1] == 0


async def test_server_timing_can_be_switched_off(client_for: Start) -> None:
    client: httpx.AsyncClient = await client_for(dev(server_timing=False))
    response = await client.post("/graphql", json=PLANS)
    assert "server-timing" not in response.headers
