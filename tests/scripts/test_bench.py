"""The benchmark's own pieces: its webhook events are signed like Stripe's and take the whole
path (accepted and applied by the real app), its seeded ledger is what the engine itself writes
for those events, its keep-alive client speaks HTTP/1.1, and its usage batches hold the
duplicates it says, are answered by the engine as it expects (a duplicate counted stops the
run), and the usage phase runs end to end on a real server."""

from __future__ import annotations

import importlib.util
import json
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
from revenue_engine.documents import StripeObjectVersion, UsageCounter, UsageEvent, WebhookEvent
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.usage_world import save_plan, subscribe

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


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


def _answer(bench: ModuleType, events: list[dict[str, Any]], statuses: list[str]) -> Any:
    """A 200 answer of ``POST /v1/usage`` giving ``events`` these ``statuses``."""
    body = {
        "results": [{"id": e["id"], "status": s} for e, s in zip(events, statuses, strict=True)],
        "accepted": statuses.count("accepted"),
        "duplicates": statuses.count("duplicate"),
        "rejected": statuses.count("rejected"),
    }
    return bench.Response(200, {}, json.dumps(body).encode())


def test_usage_batches_hold_a_tenth_of_duplicates(bench: ModuleType) -> None:
    batches = bench.UsageBatches("org_x")
    first = batches.make(100)
    # Nothing answered yet: the first batch repeats ten of its own ids.
    assert len(first.events) == 100
    assert len({e["id"] for e in first.events}) == 90
    assert (first.accepted, first.duplicates) == (90, 10)
    batches.check(first, _answer(bench, first.events, first.expected))
    assert batches.units == sum(e["quantity"] for e in first.fresh) > 0

    second = batches.make(1000)
    earlier = {e["id"] for e in first.fresh}
    again = [i for i, e in enumerate(second.events) if e["id"] in earlier]
    assert len(again) == 50  # half the duplicates from the answered batch
    assert all(second.expected[i] == "duplicate" for i in again)
    assert (second.accepted, second.duplicates) == (900, 100)
    assert len({e["id"] for e in second.events}) == 950


def test_a_counted_duplicate_fails_the_run(bench: ModuleType) -> None:
    batches = bench.UsageBatches("org_x")
    batch = batches.make(100)
    with pytest.raises(bench.BenchFailure, match="accepted=100 duplicates=0"):
        batches.check(batch, _answer(bench, batch.events, ["accepted"] * 100))
    # An event answered `duplicate` that was new is only right on a retried batch.
    answered_twice = ["duplicate"] * 100
    with pytest.raises(bench.BenchFailure):
        batches.check(batch, _answer(bench, batch.events, answered_twice))
    with pytest.raises(bench.BenchFailure, match="503"):
        batches.check(batch, bench.Response(503, {}, b"{}"))
    assert batches.units == 0  # nothing taken as counted
    batches.check(batch, _answer(bench, batch.events, answered_twice), retried=True)
    assert batches.units == sum(e["quantity"] for e in batch.fresh)


class _UsagePool:
    """Answers the ``usage`` query with ``used`` units; counts the requests."""

    def __init__(self, bench: ModuleType, used: int) -> None:
        self.bench, self.used, self.requests = bench, used, 0

    async def request(self, method: str, target: str, **_: Any) -> Any:
        self.requests += 1
        row = {"feature": "api_calls", "used": self.used, "overageEnabled": True}
        body = {"data": {"usage": {"features": [row]}}}
        return self.bench.Response(200, {}, json.dumps(body).encode())


async def test_a_counter_holding_more_than_was_accepted_fails_at_once(bench: ModuleType) -> None:
    batches = bench.UsageBatches("org_x")
    batches.units = 5
    assert (await bench.check_usage(_UsagePool(bench, 5), "org_x", batches))["used"] == 5
    pool = _UsagePool(bench, 6)
    with pytest.raises(bench.BenchFailure, match="expected 5 units"):
        await bench.check_usage(pool, "org_x", batches, within=60)
    assert pool.requests == 1  # over-counted is never waited on


async def test_bench_usage_batches_are_answered_as_the_bench_expects(
    bench: ModuleType, client_for: Callable[[Settings], Any], store_settings: Settings
) -> None:
    uri = store_settings.mongodb_uri.get_secret_value() if store_settings.mongodb_uri else None
    settings = make_settings(
        mongodb_uri=uri,
        mongodb_database=store_settings.mongodb_database,
        usage_api_keys=[bench.USAGE_KEY],
        stripe_api_base="http://127.0.0.1:9",  # nothing here calls Stripe
    )
    client: httpx.AsyncClient = await client_for(settings)
    await subscribe("org_bench", await save_plan())  # api_calls with overage on
    batches = bench.UsageBatches("org_bench")
    for size in (10, 50, 50):
        batch = batches.make(size)
        response = await client.post(
            "/v1/usage",
            json={"events": batch.events},
            headers={"authorization": f"Bearer {bench.USAGE_KEY}"},
        )
        batches.check(batch, response)
        assert bench.server_timing(response).keys() == {"app", "db", "stripe"}
    assert batches.sent == {"events": 110, "accepted": 99, "duplicates": 11}
    assert await UsageEvent.find_all().count() == 99
    counters = await UsageCounter.find_all().to_list()
    assert sum(c.used for c in counters) == batches.units


async def test_usage_phase_tiny_run(bench: ModuleType, tmp_path: Path) -> None:
    """The phase on a real server (``bench.py serve``, the in-memory store): a subscription
    with overage on made through the API and the emulator, the ``usage`` query after the
    warm-up, 4 batches of 20 from 2 senders, every answer and the counter checked."""
    messages: list[str] = []
    query: dict[str, Any] = {}
    async with bench.running("memory", None, tmp_path, "usage") as (server, client):

        async def measure(pool: Any, org: str, batches: Any) -> None:
            query.update(await bench.usage_query(pool, org, batches, True, 0.3, messages.append))

        result = await bench.ingestion(
            server, client, 20, 2, True, 30.0, messages.append, after_warm_up=measure, total=4
        )
    assert (result["requests"], result["events"], result["non_2xx"]) == (4, 80, 0)
    answers = result["answers"]
    # 3 warm-up batches and 4 measured, two duplicates in each.
    assert (answers["events"], answers["accepted"], answers["duplicates"]) == (140, 126, 14)
    assert (result["events_stored_before"], result["events_stored_after"]) == (54, 126)
    assert result["counter_used"] == result["counter_expected"] > 126
    assert result["app_us_per_event_p50"] > 0
    assert query["engine_time"]["usage"]["non_2xx"] == 0
    assert query["engine_time"]["usage (bare route)"]["app_p50_ms"] > 0
    assert query["reads_16"]["usage"]["requests"] > 0
    table = list(bench.usage_rows({"ingestion": {"20": {"one_sender": result}}, "query": query}))
    assert all(len(row) == 5 for row in table)
