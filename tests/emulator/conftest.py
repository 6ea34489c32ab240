"""Fixtures for the emulator tests: one live emulator per module, the real SDK, a webhook receiver.

The emulator runs under uvicorn on a free loopback port (``EmulatorServer``), exactly how the
SDK meets Stripe: over HTTP. Webhooks go to a tiny Starlette receiver that verifies every
delivery with ``stripe.Webhook.construct_event``; the emulator reaches it in-process through an
``httpx.ASGITransport`` delivery client. State is reset before every test.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from revenue_engine.emulator import Emulator, EmulatorServer
from tests.emulator.helpers import sdk_client


class Receiver:
    """A webhook endpoint that verifies signatures like a real integration would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        self.app = Starlette(routes=[Route("/webhook", self._receive, methods=["POST"])])

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.secret: str | None = None
            self.events: list[stripe.Event] = []
            self.rejected: list[str] = []
            self.fail_next = 0
            self.hits = 0

    async def _receive(self, request: Request) -> Response:
        payload = await request.body()
        header = request.headers.get("stripe-signature")
        with self.lock:
            self.hits += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response("try again", status_code=503)
            try:
                event = stripe.Webhook.construct_event(payload, header, self.secret or "")
            except (stripe.SignatureVerificationError, ValueError) as error:
                self.rejected.append(str(error))
                return Response("bad signature", status_code=400)
            self.events.append(event)
        return JSONResponse({"received": True})

    def types(self) -> list[str]:
        with self.lock:
            return [event.type for event in self.events]


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
