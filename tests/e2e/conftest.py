"""End-to-end fixtures: the real engine app (ASGI), the real ``stripe`` SDK inside its gateway,
and the Stripe emulator served over real HTTP on a loopback port."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator, EmulatorServer

from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.stripe_events import SECRET

ENGINE_URL = "http://testserver"


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Emulator:
    emulator_server.emulator.reset()
    return emulator_server.emulator


def engine_settings(emulator_server: EmulatorServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "auth_dev_headers": True,  # the tests act as the SPA with the development headers
        "stripe_api_base": emulator_server.url,
        "public_base_url": ENGINE_URL,
        "stripe_timeout_seconds": 3,
        "mongodb_database": f"t_{uuid.uuid4().hex[:12]}",
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
async def engine(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> httpx.AsyncClient:
    """The engine app on the embedded store, talking to the emulator through the real SDK."""
    client: httpx.AsyncClient = await client_for(engine_settings(emulator_server))
    await settled(client, emulator)
    return client


@pytest.fixture
async def signed_engine(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> httpx.AsyncClient:
    """``engine`` with a webhook signing secret, so a test can deliver signed events
    (``tests.stripe_events.post``)."""
    client: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, stripe_webhook_secrets=[SECRET])
    )
    await settled(client, emulator)
    return client


async def settled(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """Wait for the engine's first Stripe reachability probe (a background read at start),
    then forget it: a test counting the requests that reached Stripe counts its own only."""
    for _ in range(200):
        response = await client.get("/readyz")
        if response.status_code == 200 and response.json().get("stripe") != "unchecked":
            break
        await asyncio.sleep(0.025)
    emulator.requests.clear()


@pytest.fixture
async def engine_on_each_store(
    client_for: Callable[[Settings], Any],
    emulator_server: EmulatorServer,
    emulator: Emulator,
    store_settings: Settings,
) -> httpx.AsyncClient:
    """``engine``, once on the embedded store and once on the wire server."""
    uri = store_settings.mongodb_uri.get_secret_value() if store_settings.mongodb_uri else None
    settings = engine_settings(
        emulator_server, mongodb_uri=uri, mongodb_database=store_settings.mongodb_database
    )
    client: httpx.AsyncClient = await client_for(settings)
    await settled(client, emulator)
    return client


@pytest.fixture
async def stripe_client(emulator_server: EmulatorServer) -> AsyncIterator[stripe.StripeClient]:
    """A separate SDK client for test setup and for looking at Stripe's side."""
    url = emulator_server.url
    http_client = stripe.HTTPXClient(timeout=5)
    yield stripe.StripeClient(
        "sk_test_e2e",
        stripe_version="2026-10-28.endive",
        http_client=http_client,
        max_network_retries=0,
        base_addresses={"api": url, "connect": url, "files": url, "meter_events": url},
    )
    await http_client.close_async()


def org_headers(org: str, email: str | None = None) -> dict[str, str]:
    headers = {"x-organization-id": org}
    if email:
        headers["x-customer-email"] = email
    return headers


async def pay(checkout_url: str, card: str = "pm_card_visa") -> httpx.Response:
    """Pay on the hosted checkout page as a browser would: POST its form, no redirects followed."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(checkout_url)
        assert page.status_code == 200
        assert "Pay" in page.text
        return await browser.post(
            f"{checkout_url}/pay", data={"card": card, "email": "p@example.com"}
        )
