"""Fixtures for the emulator tests: one live emulator per module, the real SDK, a webhook receiver.

The emulator runs under uvicorn on a free loopback port (``EmulatorServer``), exactly how the
SDK meets Stripe: over HTTP. Webhooks go to a tiny Starlette receiver that verifies every
delivery with ``stripe.Webhook.construct_event``; the emulator reaches it in-process through an
``httpx.ASGITransport`` delivery client. State is reset before every test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import stripe

from emulator_helpers import Receiver, sdk_client
from stripe_emulator import Emulator, EmulatorServer


@pytest.fixture(scope="module")
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture(scope="module")
def emulator(receiver: Receiver) -> Emulator:
    transport = httpx.ASGITransport(app=receiver.app)
    return Emulator(delivery_client=httpx.AsyncClient(transport=transport))


@pytest.fixture(scope="module")
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with EmulatorServer(emulator) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh_state(emulator: Emulator, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.reset()
    receiver.reset()
    # The SDK sleeps 0.5 s or more between retries; the behaviour under test is *that* it
    # retries, with which key, not how long it waits.
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.02)


@pytest.fixture
async def client(server: EmulatorServer) -> AsyncIterator[stripe.StripeClient]:
    async with sdk_client(server.url) as sdk:
        yield sdk


@pytest.fixture
async def http(server: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the emulator (hosted pages, control API, raw wire checks)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as session:
        yield session
