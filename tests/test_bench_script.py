"""The benchmark's own pieces: its webhook events are signed like Stripe's and take the whole
path (accepted and applied by the real app), its seeded ledger is what the engine itself writes
for those events, and its keep-alive client speaks HTTP/1.1."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from revenue_engine.app import create_app
from revenue_engine.db import _type_adapter
from revenue_engine.documents import StripeObjectVersion, WebhookEvent
from revenue_engine.settings import Settings
from tests.conftest import make_settings

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_script"] = module
    spec.loader.exec_module(module)
    return module


async def test_bench_events_are_verified_and_applied(
    bench: ModuleType, client_for: Callable[[Settings], Any]
) -> None:
    settings = make_settings(
        stripe_webhook_secret=[bench.WEBHOOK_SECRET], mongodb_database=f"t_{uuid.uuid4().hex[:8]}"
    )
    client: httpx.AsyncClient = await client_for(settings)
    events = bench.Events()
    for index in range(3):
        body = events.body(index)
        response = await client.post("/webhooks/stripe", content=body, headers=events.headers(body))
        assert response.status_code == 200
        assert response.json()["status"] == "processed"
        assert bench.server_timing(response).keys() == {"app", "db", "stripe"}
    assert await WebhookEvent.find_all().count() == 3
    assert await StripeObjectVersion.find_all().count() == 3


def test_percentile(bench: ModuleType) -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 99) == 99.0
    assert bench.percentile([7.0], 99) == 7.0


def test_inserts_reuse_one_type_adapter_per_type() -> None:
    first = _type_adapter(int)
    assert _type_adapter(int) is first


async def test_seeded_ledger_is_what_the_engine_leaves(bench: ModuleType) -> None:
    settings = make_settings(
        stripe_webhook_secret=[bench.WEBHOOK_SECRET], mongodb_database=f"t_{uuid.uuid4().hex[:8]}"
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        events = bench.Events()

        async def deliver(body: bytes) -> str:
            response = await client.post(
                "/webhooks/stripe", content=body, headers=events.headers(body)
            )
            assert response.status_code == 200
            status: str = response.json()["status"]
            return status

        for index in range(3):  # rows written by the engine itself, to compare with
            assert await deliver(events.body(index)) == "processed"
        engine_row = await WebhookEvent.find_one({"event_id": f"evt_{events.run}0000000"})
        assert engine_row is not None

        await bench.seed_ledger(40, app.state.runtime.database)

        assert await WebhookEvent.find_all().count() == 43
        assert await StripeObjectVersion.find_all().count() == 43
        seeded = await WebhookEvent.find_one({"event_id": {"$regex": "^evt_seed"}})
        assert seeded is not None
        varying = {"id", "event_id", "payload", "created", "received_at", "processed_at"}
        assert seeded.model_dump(exclude=varying) == engine_row.model_dump(exclude=varying)
        indexes = await WebhookEvent.get_motor_collection().index_information()
        assert indexes["event_id_unique"]["unique"]
        # A redelivery of a seeded event is a duplicate; a new event is applied.
        assert await deliver(seeded.payload.encode()) == "duplicate"
        assert await deliver(events.body(3)) == "processed"
