"""Fixtures of the service tests that talk to Stripe: the emulator over HTTP, through the real
SDK inside the engine's gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from stripe_emulator import Emulator, EmulatorServer

from revenue_engine.gateway import StripeGateway
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def stripe_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as running:
        yield running


@pytest.fixture
async def emulator_gateway(stripe_emulator: EmulatorServer) -> AsyncIterator[StripeGateway]:
    """A gateway to a freshly reset emulator."""
    stripe_emulator.emulator.reset()
    gateway = StripeGateway(
        "sk_test_services",
        api_version=make_settings().stripe_api_version,
        timeout=5,
        max_network_retries=0,
        api_base=stripe_emulator.url,
    )
    yield gateway
    await gateway.close()
