"""The response budget (issue 11.2): no GraphQL answer exceeds GRAPHQL_MAX_RESPONSE_BYTES.

Three lines of defence, each tested here through the real app:

1. the query-cost rule refuses, before anything executes, a request that may load more than
   one page of webhook events (the issue's 15 aliases of ``webhookEvents(first: 100)
   { payload }`` over 200 KB payloads answered 300 MB and took RSS from 131 MB to 1.27 GB);
2. webhook payloads are counted against the budget before they are decoded, so a request
   never holds much more than its budget in decoded payloads;
3. the encoded answer is measured: over the budget, the client gets one
   ``RESPONSE_TOO_LARGE`` error and no data, never a partial body.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from revenue_engine.documents import Customer, WebhookEvent
from revenue_engine.schema import webhooks as webhook_schema
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.gql import ADMIN

Start = Callable[[Settings], Any]
MIB = 1024 * 1024
SMALLEST_BUDGET = 65_536


async def store_events(count: int, payload_chars: int) -> None:
    """``count`` ledger rows whose payloads are JSON of exactly ``payload_chars`` characters."""
    rows = []
    for i in range(count):
        head = json.dumps({"id": f"evt_{i:04}", "filler": ""})
        filler = "x" * (payload_chars - len(head))
        payload = json.dumps({"id": f"evt_{i:04}", "filler": filler})
        assert len(payload) == payload_chars
        rows.append(
            WebhookEvent(
                event_id=f"evt_{i:04}",
                type="invoice.paid",
                livemode=False,
                created=datetime.now(UTC),
                payload=payload,
            )
        )
    await WebhookEvent.insert_many(rows)


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def peak_rss() -> Iterator[dict[str, int]]:
    """Samples this process's resident memory every 2 ms; yields ``{"growth": bytes}`` (the
    peak over the block minus the resident size before it), filled in on exit."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc (Linux) to sample resident memory")
    result = {"growth": 0}
    before = resident_bytes()
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, resident_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result["growth"] = max(peak, resident_bytes()) - before


async def post(client: httpx.AsyncClient, query: str) -> httpx.Response:
    response = await client.post("/graphql", json={"query": query}, headers=ADMIN)
    assert response.status_code == 200
    return response


@pytest.fixture
async def engine(client_for: Start, store_settings: Settings) -> httpx.AsyncClient:
    """The app on both stores, development headers on (admin by ``x-roles``)."""
    settings = store_settings.model_copy(update={"auth_dev_headers": True})
    client: httpx.AsyncClient = await client_for(settings)
    return client


async def test_the_issue_request_is_refused_before_it_runs(engine: httpx.AsyncClient) -> None:
    """15 aliases of ``webhookEvents(first: 100) { payload }`` over twenty 200 KB payloads
    (60 MB of payloads before this fix): refused by validation, so no row is loaded and
    resident memory does not grow."""
    await store_events(20, 200_000)
    attack = (
        "{ "
        + " ".join(
            f"a{i}: webhookEvents(first: 100) {{ edges {{ node {{ id payload }} }} }}"
            for i in range(15)
        )
        + " }"
    )
    await post(engine, "{ webhookEvents(first: 1) { edges { cursor } } }")  # warm-up
    with peak_rss() as rss:
        response = await post(engine, attack)
    body = response.json()
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "may return 1500 webhook event payloads" in body["errors"][0]["message"]
    assert len(response.content) < 2048
    assert rss["growth"] < 32 * MIB, f"resident memory grew {rss['growth'] / MIB:.0f} MiB"


async def test_one_page_of_payloads_is_answered_within_the_budget(
    engine: httpx.AsyncClient,
) -> None:
    """The largest page a request may load (100 events) of 30 KB payloads: 3 MB, answered."""
    await store_events(100, 30_000)
    query = "{ webhookEvents(first: 100) { edges { node { id payload } } } }"
    with peak_rss() as rss:
        response = await post(engine, query)
    edges = response.json()["data"]["webhookEvents"]["edges"]
    assert len(edges) == 100
    assert edges[0]["node"]["payload"]["id"] == edges[0]["node"]["id"]
    assert len(response.content) <= Settings.model_fields["graphql_max_response_bytes"].default
    assert rss["growth"] < 256 * MIB


async def test_payloads_past_the_budget_are_not_decoded(
    client_for: Start, store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a 64 KiB budget and 30,000-character payloads, the third payload would cross it:
    the page stops being read there (a few rows at a time), none is decoded, and the answer
    is the one typed error."""
    settings = store_settings.model_copy(
        update={"auth_dev_headers": True, "graphql_max_response_bytes": SMALLEST_BUDGET}
    )
    client = await client_for(settings)
    await store_events(5, 30_000)
    decoded: list[str] = []

    def loads(text: str) -> Any:
        decoded.append(text)
        return json.loads(text)

    monkeypatch.setattr(webhook_schema, "json", SimpleNamespace(loads=loads))
    response = await post(client, "{ webhookEvents(first: 5) { edges { node { payload } } } }")
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": f"the response would exceed {SMALLEST_BUDGET} bytes; "
                "ask for fewer items or fewer fields",
                "extensions": {"code": "RESPONSE_TOO_LARGE", "limitBytes": SMALLEST_BUDGET},
            }
        ],
    }
    assert decoded == []
    within = await post(client, "{ webhookEvents(first: 2) { edges { node { payload } } } }")
    assert len(within.json()["data"]["webhookEvents"]["edges"]) == 2


async def test_an_encoded_answer_over_the_budget_is_replaced_by_one_error(
    client_for: Start,
) -> None:
    """No payloads here: 100 customers with 1 KB names are over a 64 KiB budget once encoded.
    The answer is the typed error alone (no data, nothing of the 100 KB body)."""
    settings = make_settings(environment="development", graphql_max_response_bytes=SMALLEST_BUDGET)
    client = await client_for(settings)
    await Customer.insert_many(
        [
            Customer(organization_id=f"org_{i:03}", stripe_customer_id=f"cus_{i}", name="n" * 1000)
            for i in range(100)
        ]
    )
    query = "{ customers(first: %d) { nodes { organizationId name } } }"
    response = await post(client, query % 100)
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "RESPONSE_TOO_LARGE", "limitBytes": SMALLEST_BUDGET}
    ]
    assert len(response.content) < 512
    fits = (await post(client, query % 50)).json()
    assert len(fits["data"]["customers"]["nodes"]) == 50
