"""Fuzzing fixtures: the Stripe emulator over loopback HTTP, and settings for the engine on
both stores (``store_settings``) as the SPA's development setup."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from stripe_emulator import Emulator, EmulatorServer

from revenue_engine.settings import Settings
from tests.fuzz.engine import BASE_URL


@pytest.fixture(scope="session")
def fuzz_emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as server:
        yield server


@pytest.fixture
def fuzz_settings(store_settings: Settings, fuzz_emulator_server: EmulatorServer) -> Settings:
    """``store_settings`` with dev headers on (the tests act as the SPA) and Stripe the emulator
    over loopback HTTP without retries (a refusal is an answer, not a stall)."""
    fuzz_emulator_server.emulator.reset()
    return store_settings.model_copy(
        update={
            "environment": "development",
            "auth_dev_headers": True,
            "stripe_api_base": fuzz_emulator_server.url,
            "public_base_url": BASE_URL,
            "stripe_timeout_seconds": 5,
            "stripe_max_network_retries": 0,
            # High enough that fuzzing is never refused by it, so the Stripe calls behind it run.
            "rate_limit_stripe_mutations": 1_000_000,
            "mongodb_database": f"fz_{uuid.uuid4().hex[:12]}",
        }
    )
