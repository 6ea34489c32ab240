"""Delivery semantics through the real ASGI app, on mongomock and on a real wire server:
claim-by-insert (W3, W4), the lease, transient failures and the database down (W1), the bound
on retries (W7), livemode (W14), unhandled types (W15) and handler bugs (W17)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pymongo
import pytest
from pymongo.errors import AutoReconnect

from revenue_engine.clock import utcnow
from revenue_engine.db import Database
from revenue_engine.documents import WebhookEvent, WebhookEventStatus
from revenue_engine.gateway import StripeGateway
from revenue_engine.settings import Settings
from revenue_engine.webhooks import dispatch, ledger
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.errors import MalformedObject, TransientWebhookError
from revenue_engine.webhooks.event import StripeEvent, parse_event
from tests.conftest import make_settings
from tests.stripe_events import body_of, event, post, stripe_object, with_secrets
from tests.wire import BINARY, free_port

Start = Callable[[Settings], Any]


class Spy:
    """A handler that counts its calls and can be told to fail or to take its time."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[str] = []
        self.delay = delay
        self.error: BaseException | None = None

    async def __call__(self, event: StripeEvent, context: HandlerContext) -> None:
        self.calls.append(event.id)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    handler = Spy()
    monkeypatch.setitem(dispatch.HANDLERS, "product.updated", handler)
    return handler


def product_event(**kwargs: Any) -> dict[str, Any]:
    return event("product.updated", stripe_object("product"), **kwargs)


async def row(event_id: str) -> WebhookEvent:
    found = await WebhookEvent.find_one({"event_id": event_id})
    assert found is not None
    return found


@pytest.fixture
async def client(client_for: Start, store_settings: Settings) -> httpx.AsyncClient:
    started: httpx.AsyncClient = await client_for(with_secrets(store_settings))
    return started


# --- W3 / W4: duplicates ------------------------------------------------------------------


async def test_w3_ten_concurrent_identical_posts_apply_once(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    spy.delay = 0.05  # keep the first delivery busy while the others arrive
    payload = product_event()
    responses = await asyncio.gather(*(post(client, payload) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, statuses
    assert statuses.count(200) >= 1
    assert spy.calls == [payload["id"]]
    assert await WebhookEvent.find_all().count() == 1
    stored = await row(payload["id"])
    assert stored.status is WebhookEventStatus.PROCESSED
    assert stored.attempts == 1


async def test_w4_redelivery_after_success_is_a_no_op(client: httpx.AsyncClient, spy: Spy) -> None:
    payload = product_event()
    first = await post(client, payload)
    assert first.json()["status"] == "processed"
    for _ in range(3):
        again = await post(client, payload)
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"
    assert spy.calls == [payload["id"]]
    assert (await row(payload["id"])).attempts == 1


async def test_a_duplicate_of_a_failed_event_is_a_no_op(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    spy.error = MalformedObject("no name")
    payload = product_event()
    assert (await post(client, payload)).json()["status"] == "failed"
    again = await post(client, payload)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert len(spy.calls) == 1


async def test_a_live_claim_answers_409_and_a_stale_one_is_retaken(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    payload = product_event()
    spy.error = TransientWebhookError("gateway unavailable")
    assert (await post(client, payload)).status_code == 503
    # Simulate a delivery that claimed the event and is still working on it.
    live = await row(payload["id"])
    live.claimed_at, live.claim_token = utcnow(), "someone-else"
    await live.save()
    spy.error = None
    busy = await post(client, payload)
    assert busy.status_code == 409
    assert spy.calls == [payload["id"]]
    # That worker died: once its lease is older than 60 s the next delivery takes over.
    stale = await row(payload["id"])
    stale.claimed_at = utcnow() - timedelta(seconds=61)
    await stale.save()
    taken = await post(client, payload)
    assert taken.status_code == 200
    assert taken.json()["status"] == "processed"
    assert (await row(payload["id"])).attempts == 2  # the 409 claimed nothing
    assert len(spy.calls) == 2


# --- transient failures, W1 and W7 --------------------------------------------------------


async def test_w1_store_failure_in_a_handler_is_503_and_the_redelivery_applies_once(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    payload = product_event()
    spy.error = AutoReconnect("connection reset by peer")
    response = await post(client, payload)
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily unavailable; retry later"}
    released = await row(payload["id"])
    assert released.status is WebhookEventStatus.PROCESSING
    assert released.claimed_at is None  # released: the redelivery need not wait for the lease
    assert released.last_error == "transient: AutoReconnect: connection reset by peer"
    spy.error = None
    again = await post(client, payload)
    assert again.json()["status"] == "processed"
    assert (await row(payload["id"])).attempts == 2
    assert (await post(client, payload)).json()["status"] == "duplicate"
    assert len(spy.calls) == 2


async def test_w7_transient_failures_are_bounded_then_parked_as_failed(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    spy.error = TransientWebhookError("organization org_9 not known yet")
    payload = product_event()
    answers = [(await post(client, payload)).status_code for _ in range(dispatch.MAX_ATTEMPTS)]
    assert answers == [503] * (dispatch.MAX_ATTEMPTS - 1) + [200]
    parked = await row(payload["id"])
    assert parked.status is WebhookEventStatus.FAILED
    assert parked.last_error == (
        f"gave up after {dispatch.MAX_ATTEMPTS} attempts: organization org_9 not known yet"
    )
    assert (await post(client, payload)).json()["status"] == "duplicate"


async def backdate(event_id: str, by: timedelta, **extra: Any) -> None:
    """As if the event had first been delivered ``by`` ago (Stripe retries over hours/days)."""
    await WebhookEvent.find_one({"event_id": event_id}).update(
        {"$set": {"received_at": utcnow() - by, **extra}}
    )


@pytest.mark.parametrize(
    ("livemode", "age"),
    [(False, ledger.GIVE_UP_AFTER_TEST), (True, ledger.GIVE_UP_AFTER_LIVE)],
)
async def test_w7_a_transient_failure_past_stripes_retry_window_is_parked(
    database: Database, store_settings: Settings, spy: Spy, livemode: bool, age: timedelta
) -> None:
    context = HandlerContext(
        settings=store_settings,
        livemode=livemode,
        gateway=StripeGateway.from_settings(store_settings),
    )
    text = body_of(product_event(livemode=livemode)).decode()
    stripe_event = parse_event(text)
    spy.error = TransientWebhookError("organization org_9 not known yet")
    retry = dispatch.Outcome.RETRY
    assert await dispatch.deliver(stripe_event, text, context) is retry
    await backdate(stripe_event.id, age - timedelta(minutes=5))
    assert await dispatch.deliver(stripe_event, text, context) is retry  # Stripe still retries
    await backdate(stripe_event.id, age + timedelta(minutes=5))
    parked_now = await dispatch.deliver(stripe_event, text, context)  # Stripe's last try
    assert parked_now is dispatch.Outcome.FAILED
    parked = await row(stripe_event.id)
    assert parked.status is WebhookEventStatus.FAILED
    assert parked.last_error == (
        "gave up (Stripe stops redelivering) after 3 attempts: organization org_9 not known yet"
    )


async def test_w7_an_abandoned_processing_row_is_parked_for_replay(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    spy.error = TransientWebhookError("organization org_9 not known yet")
    old, young, leased = product_event(), product_event(), product_event()
    for payload in (old, young, leased):
        assert (await post(client, payload)).status_code == 503
    hours = ledger.GIVE_UP_AFTER_TEST + timedelta(hours=1)
    await backdate(old["id"], hours)
    await backdate(young["id"], ledger.GIVE_UP_AFTER_TEST - timedelta(minutes=5))
    await backdate(leased["id"], hours, claimed_at=utcnow(), claim_token="someone")
    assert await ledger.failed_event_ids() == [old["id"]]
    parked = await row(old["id"])
    assert parked.status is WebhookEventStatus.FAILED
    assert parked.last_error is not None
    assert parked.last_error.startswith("gave up: not redelivered since ")
    assert parked.last_error.endswith("transient: organization org_9 not known yet")
    for untouched in (young, leased):
        assert (await row(untouched["id"])).status is WebhookEventStatus.PROCESSING


async def test_w7_test_mode_waits_out_stripes_few_hours_of_retries(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    # Stripe's test mode retries three times "over a few hours": a row that old is still live.
    spy.error = TransientWebhookError("organization org_9 not known yet")
    payload = product_event()
    assert (await post(client, payload)).status_code == 503
    await backdate(payload["id"], timedelta(hours=8))
    assert await ledger.failed_event_ids() == []
    spy.error = None
    assert (await post(client, payload)).json()["status"] == "processed"
    assert len(spy.calls) == 2


async def test_w7_stripes_redelivery_of_a_row_parked_for_its_age_applies_it(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    spy.error = TransientWebhookError("organization org_9 not known yet")
    aged, exhausted = product_event(), product_event()
    for payload in (aged, exhausted):
        assert (await post(client, payload)).status_code == 503
    await backdate(aged["id"], ledger.GIVE_UP_AFTER_TEST + timedelta(hours=1))
    assert await ledger.failed_event_ids() == [aged["id"]]
    assert (await row(aged["id"])).parked_for_age
    # Still failing when Stripe comes back after all: 503 again (Stripe still retries).
    assert (await post(client, aged)).status_code == 503
    released = await row(aged["id"])
    assert released.status is WebhookEventStatus.PROCESSING
    assert not released.parked_for_age
    assert await ledger.failed_event_ids() == [aged["id"]]  # parked again: nobody holds it
    spy.error = None
    applied = await post(client, aged)
    assert applied.json()["status"] == "processed"
    done = await row(aged["id"])
    assert done.status is WebhookEventStatus.PROCESSED
    assert done.attempts == 3
    assert not done.parked_for_age
    assert (await post(client, aged)).json()["status"] == "duplicate"
    # A row parked for its attempts (or as permanently failed) stays a duplicate.
    spy.error = TransientWebhookError("organization org_9 not known yet")
    for _ in range(dispatch.MAX_ATTEMPTS - 1):
        await post(client, exhausted)
    assert not (await row(exhausted["id"])).parked_for_age
    spy.error = None
    assert (await post(client, exhausted)).json()["status"] == "duplicate"
    assert spy.calls.count(aged["id"]) == 3


async def test_w7_a_delivery_past_the_window_parks_for_age_and_a_later_one_applies(
    database: Database, store_settings: Settings, spy: Spy
) -> None:
    context = HandlerContext(
        settings=store_settings, livemode=False, gateway=StripeGateway.from_settings(store_settings)
    )
    text = body_of(product_event()).decode()
    stripe_event = parse_event(text)
    spy.error = TransientWebhookError("organization org_9 not known yet")
    assert await dispatch.deliver(stripe_event, text, context) is dispatch.Outcome.RETRY
    await backdate(stripe_event.id, ledger.GIVE_UP_AFTER_TEST + timedelta(minutes=5))
    assert await dispatch.deliver(stripe_event, text, context) is dispatch.Outcome.FAILED
    assert (await row(stripe_event.id)).parked_for_age
    spy.error = None
    assert await dispatch.deliver(stripe_event, text, context) is dispatch.Outcome.PROCESSED


async def test_w1_database_unreachable_answers_503_within_5_seconds(client_for: Start) -> None:
    # Nothing listens on this port: the app starts (not ready) and must not hang deliveries.
    settings = make_settings(
        stripe_webhook_secret=["whsec_" + "5f" * 16],
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/",
        mongodb_timeout_ms=300,
    )
    client: httpx.AsyncClient = await client_for(settings)
    started = time.monotonic()
    response = await post(client, product_event())
    assert response.status_code == 503
    assert time.monotonic() - started <= 5


def _jongodb(port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [str(BINARY), "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("JONGODB_URI="):
            return process
    raise AssertionError("jongodb did not start")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def own_wire_server() -> Iterator[tuple[int, list[subprocess.Popen[str]]]]:
    if not BINARY.exists():
        pytest.skip("no bundled MongoDB wire server: run `npm install` (see README)")
    processes: list[subprocess.Popen[str]] = []
    yield free_port(), processes
    for process in processes:
        if process.poll() is None:
            _stop(process)


@pytest.mark.wire
async def test_w1_database_going_down_mid_service_is_503_then_applied_once_after(
    client_for: Start, own_wire_server: tuple[int, list[subprocess.Popen[str]]], spy: Spy
) -> None:
    port, processes = own_wire_server
    processes.append(_jongodb(port))
    settings = make_settings(
        stripe_webhook_secret=["whsec_" + "5f" * 16],
        mongodb_uri=f"mongodb://127.0.0.1:{port}/",
        mongodb_timeout_ms=500,
    )
    client: httpx.AsyncClient = await client_for(settings)
    assert (await client.get("/readyz")).status_code == 200
    _stop(processes[0])  # the database goes away while the app keeps running
    payload = product_event()
    started = time.monotonic()
    response = await post(client, payload)
    assert response.status_code == 503
    assert time.monotonic() - started <= 5
    assert spy.calls == []  # nothing was applied
    # The database comes back. This test server restarts empty, so put back the indexes a
    # real database would still have; then Stripe redelivers.
    processes.append(_jongodb(port))
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/") as restored:
        events = restored[settings.mongodb_database][WebhookEvent.Settings.name]
        events.create_indexes(WebhookEvent.Settings.indexes)
    for _ in range(20):
        again = await post(client, payload)
        if again.status_code == 200:
            break
        await asyncio.sleep(0.25)
    assert again.json()["status"] == "processed"
    assert (await post(client, payload)).json()["status"] == "duplicate"
    assert spy.calls == [payload["id"]]


# --- W14, W15, W17 ------------------------------------------------------------------------


async def test_w14_livemode_events_on_a_test_deployment_are_ignored(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    payload = product_event(livemode=True)
    response = await post(client, payload)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert spy.calls == []
    stored = await row(payload["id"])
    assert stored.status is WebhookEventStatus.IGNORED
    assert stored.last_error == "livemode=true event on a test-mode deployment"


async def test_w14_test_events_on_a_live_deployment_are_ignored(
    database: Database, spy: Spy, store_settings: Settings
) -> None:
    live = HandlerContext(
        settings=store_settings, livemode=True, gateway=StripeGateway.from_settings(store_settings)
    )
    text = body_of(product_event(livemode=False)).decode()
    outcome = await dispatch.deliver(parse_event(text), text, live)
    assert outcome is dispatch.Outcome.IGNORED
    assert spy.calls == []
    rows = await ledger.list_events()
    assert rows[0][0].last_error == "livemode=false event on a live deployment"


async def test_w15_unhandled_types_are_recorded_as_ignored(client: httpx.AsyncClient) -> None:
    payload = event("customer.tax_id.created", {"object": "tax_id", "id": "txi_1"})
    response = await post(client, payload)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    stored = await row(payload["id"])
    assert stored.status is WebhookEventStatus.IGNORED
    assert stored.last_error == "no handler for this event type"
    assert stored.processed_at is not None


async def test_w17_a_handler_bug_is_recorded_and_other_events_keep_flowing(
    client: httpx.AsyncClient, spy: Spy
) -> None:
    spy.error = KeyError("items")
    poison = product_event()
    response = await post(client, poison)
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    failed = await row(poison["id"])
    assert failed.status is WebhookEventStatus.FAILED
    assert failed.last_error == "KeyError: 'items'"
    spy.error = None
    healthy = product_event()
    assert (await post(client, healthy)).json()["status"] == "processed"


async def test_w17_error_messages_are_scrubbed(client: httpx.AsyncClient, spy: Spy) -> None:
    spy.error = RuntimeError("auth failed for sk_test_" + "Z9" * 12 + " at mongodb://u:pw@db/x")
    payload = product_event()
    await post(client, payload)
    stored = await row(payload["id"])
    assert stored.last_error is not None
    assert "Z9Z9" not in stored.last_error
    assert "pw@" not in stored.last_error
    assert stored.last_error.startswith("RuntimeError: auth failed for ***")


async def test_a_hanging_handler_is_cut_off_by_the_ack_budget(client_for: Start, spy: Spy) -> None:
    settings = make_settings(stripe_webhook_secret=["whsec_" + "5f" * 16], mongodb_timeout_ms=300)
    client: httpx.AsyncClient = await client_for(settings)
    spy.delay = 30
    payload = product_event()
    started = time.monotonic()
    response = await post(client, payload)
    assert response.status_code == 503
    assert time.monotonic() - started < 2  # budget: 2 x 0.3 s + 0.5 s
    # The claim keeps its lease (the handler may still be running somewhere): a redelivery
    # inside the lease is told to come back later, not run twice.
    spy.delay = 0
    assert (await post(client, payload)).status_code == 409
    assert len(spy.calls) == 1
