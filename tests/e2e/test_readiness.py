"""Readiness reports Stripe's reachability (through the real SDK), probed at most every
``STRIPE_PROBE_SECONDS``; only MongoDB decides the status code."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from revenue_engine import app as app_module
from revenue_engine.emulator import Emulator, EmulatorServer
from revenue_engine.settings import Settings
from tests.e2e.conftest import engine_settings
from tests.wire import free_port


async def test_stripe_reachable_is_probed_once_per_interval(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    first = await engine.get("/readyz")
    second = await engine.get("/readyz")
    assert first.status_code == second.status_code == 200
    assert first.json() == {"status": "ok", "mongo": "ok", "stripe": "ok"}
    assert second.json() == first.json()
    assert emulator.request_count("GET", "/v1/events") == 1  # the second answer was remembered


async def test_a_refused_key_is_reported(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    # A key of the right kind that Stripe (here the emulator) does not accept.
    client: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, stripe_secret_key="sk_test_revoked-key")
    )
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["stripe"] == "unauthorized"
    assert "revoked" not in response.text


async def test_stripe_down_is_reported_quickly_and_rechecked(
    client_for: Callable[[Settings], Any],
    emulator_server: EmulatorServer,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client: httpx.AsyncClient = await client_for(engine_settings(emulator_server))
    emulator.inject_fault("timeout", path="/v1/events", hang_seconds=10)
    monkeypatch.setattr(app_module, "STRIPE_PROBE_TIMEOUT", 0.3)
    started = time.monotonic()
    response = await client.get("/readyz")
    assert time.monotonic() - started < 2
    assert (response.status_code, response.json()["stripe"]) == (200, "unreachable")
    assert emulator.request_count("GET", "/v1/events") == 1  # no retries in a probe
    # Once the interval has passed, the next poll probes again and sees Stripe back.
    monkeypatch.setattr(app_module, "STRIPE_PROBE_SECONDS", 0.0)
    assert (await client.get("/readyz")).json()["stripe"] == "ok"


async def test_nothing_listening_is_unreachable(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, stripe_api_base=dead)
    )
    response = await client.get("/readyz")
    assert (response.status_code, response.json()["stripe"]) == (200, "unreachable")
