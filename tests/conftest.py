"""Shared fixtures: settings without the environment, the app with its lifespan, an HTTP client
through the real ASGI stack, and the two storage backends (mongomock and a real wire server)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from stripe_emulator.server import UvicornThread

from revenue_engine.app import create_app
from revenue_engine.db import Database, connect
from revenue_engine.settings import Settings
from tests.wire import WireServer, free_port, start_wire_server

# Read before any test strips the environment: an explicit server for the wire run.
_EXTERNAL_MONGODB_URI = os.environ.get("MONGODB_URI")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build Settings explicitly: no variable of the developer's shell leaks in."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test: development defaults, no .env file, overrides applied."""
    values: dict[str, Any] = {"environment": "test", "auth_jwt_secret": "t" * 40}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """No trace function (coverage's) in this thread, nor in threads started meanwhile: a time
    bound a test asserts is about the engine, not about the two to three times coverage adds."""
    tracer, thread_tracer = sys.gettrace(), threading.gettrace()
    sys.settrace(None)
    threading.settrace(None)
    try:
        yield
    finally:
        sys.settrace(tracer)
        threading.settrace(thread_tracer)


@contextlib.contextmanager
def serving_app(*, traced: bool = True) -> Iterator[str]:
    """The real app (development settings) under uvicorn on a free loopback port; yields its
    URL, which is also its public address (Checkout redirects back there). ``traced=False``:
    the server's thread runs without coverage's tracer (see ``untraced``)."""
    port = free_port()
    settings = make_settings(environment="development", public_base_url=f"http://127.0.0.1:{port}")
    with contextlib.ExitStack() as stack:
        with contextlib.nullcontext() if traced else untraced():
            server = stack.enter_context(UvicornThread(create_app(settings), port=port))
        yield server.url


@pytest.fixture(scope="session")
def wire_server() -> Iterator[WireServer | None]:
    server = start_wire_server(_EXTERNAL_MONGODB_URI)
    try:
        yield server
    finally:
        if server is not None:
            server.stop()


@pytest.fixture(params=["mongomock", pytest.param("wire", marks=pytest.mark.wire)])
def store_settings(request: pytest.FixtureRequest, wire_server: WireServer | None) -> Settings:
    """Settings for a storage-sensitive test, once per backend. Each test gets its own database
    (the wire server has no dropDatabase: isolation is by name)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "mongomock":
        return make_settings(mongodb_database=name)
    if wire_server is None:
        pytest.skip("no MongoDB wire server: set MONGODB_URI or run `npm install` (see README)")
    return make_settings(mongodb_uri=wire_server.uri, mongodb_database=name)


@pytest.fixture
async def database(store_settings: Settings) -> AsyncIterator[Database]:
    """Beanie initialised on the parametrised backend."""
    db = await connect(store_settings)
    try:
        yield db
    finally:
        db.close()


AppFactory = Callable[..., Starlette]


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Settings], Any]]:
    """Start the real app (lifespan included) for given settings; yields an httpx client."""
    stack: list[Any] = []

    async def start(settings: Settings) -> httpx.AsyncClient:
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        stack.append(client)
        return client

    yield start
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


@pytest.fixture
async def client(client_for: Callable[[Settings], Any]) -> httpx.AsyncClient:
    """The app on the embedded store, development conveniences on."""
    result: httpx.AsyncClient = await client_for(
        make_settings(environment="development", mongodb_database=f"t_{uuid.uuid4().hex[:12]}")
    )
    return result
