"""Readiness reports Stripe's reachability (through the real SDK), probed in the background —
at most once per ``STRIPE_PROBE_SECONDS`` however often readiness is polled; only MongoDB
decides the status code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from stripe_emulator import Emulator, EmulatorServer

from revenue_engine import app as app_module
from revenue_engine.settings import Settings
from tests.e2e.conftest import engine_settings
from tests.wire import free_port


async def stripe_reported(client: httpx.AsyncClient, expected: str) -> httpx.Response:
    """Poll readiness until it reports ``expected`` for Stripe (the probe runs apart)."""
    for _ in range(100):
        response = await client.get("/readyz")
        if response.json().get("stripe") == expected:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"readiness never reported stripe={expected}: {response.json()}")


async def test_readiness_reads_the_last_probe_without_calling_stripe(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    first = await stripe_reported(engine, "ok")
    assert first.status_code == 200
    assert first.json() == {"status": "ok", "mongo": "ok", "stripe": "ok"}
    probes = emulator.request_count("GET", "/v1/events")
    for _ in range(5):
        assert (await engine.get("/readyz")).json() == first.json()
    # (The start-up probe itself was counted before the test began: see ``settled``.)
    assert emulator.request_count("GET", "/v1/events") == probes


async def test_a_refused_key_is_reported(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    # A key of the right kind that Stripe (here the emulator) does not accept.
    client: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, stripe_secret_key="sk_test_revoked-key")
    )
    response = await stripe_reported(client, "unauthorized")
    assert response.status_code == 200
    assert "revoked" not in response.text


async def test_a_hanging_stripe_never_slows_readiness_and_is_rechecked(
    client_for: Callable[[Settings], Any],
    emulator_server: EmulatorServer,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app_module, "STRIPE_PROBE_TIMEOUT", 0.3)
    monkeypatch.setattr(app_module, "STRIPE_REPROBE_SECONDS", 0.2)
    emulator.inject_fault("timeout", path="/v1/events", hang_seconds=10)
    client: httpx.AsyncClient = await client_for(engine_settings(emulator_server))
    started = time.monotonic()
    response = await client.get("/readyz")
    assert time.monotonic() - started < 0.2  # readiness never waits for Stripe
    assert response.status_code == 200
    assert (await stripe_reported(client, "unreachable")).status_code == 200
    # The fault fired once; the next probe (soon, since Stripe did not answer) sees it back.
    await stripe_reported(client, "ok")


async def test_nothing_listening_is_unreachable(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, stripe_api_base=dead)
    )
    response = await stripe_reported(client, "unreachable")
    assert response.status_code == 200
