"""W18 as a correctness test: a burst of 1,000 signed events, sent with bounded concurrency, is
all acknowledged and all recorded. Speed is measured by the benchmark command, not here; this
runs on mongomock only (the wire test server is slow under concurrency)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from revenue_engine.documents import WebhookEvent
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.stripe_events import SECRET, event, post, stripe_object

BURST = 1000
CONCURRENCY = 50


def payload(index: int) -> dict[str, Any]:
    if index % 3 == 0:
        return event("product.updated", stripe_object("product", id=f"prod_{index}"))
    if index % 3 == 1:
        price = stripe_object("price", id=f"price_{index}", lookup_key=f"key_{index}")
        return event("price.created", price)
    return event("balance.available", {"object": "balance", "n": index})


async def test_w18_a_burst_of_1000_events_is_acknowledged_and_recorded(
    client_for: Callable[[Settings], Any],
) -> None:
    settings = make_settings(
        stripe_webhook_secret=[SECRET], mongodb_database=f"t_{uuid.uuid4().hex[:12]}"
    )
    client: httpx.AsyncClient = await client_for(settings)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(index: int) -> int:
        async with gate:
            response = await post(client, payload(index))
            return response.status_code

    statuses = await asyncio.gather(*(send(i) for i in range(BURST)))
    assert [s for s in statuses if not 200 <= s < 300] == []
    assert await WebhookEvent.find_all().count() == BURST
    assert await WebhookEvent.find({"status": "processing"}).count() == 0
