"""Helpers shared by the emulator tests: an SDK client factory, small object builders and a
webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "sk_test_emulator_tests"
API_VERSION = "2026-10-28.endive"
RECEIVER_URL = "http://receiver.test/webhook"

# stripe.HTTPXClient posts form bodies with ``data=<str>``, which httpx deprecates in favour of
# ``content=``. That is the SDK's call, not ours; every module that drives the SDK over POST
# ignores exactly this warning (and nothing else) from httpx.
SDK_HTTPX_WARNING = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning:httpx"
)


@asynccontextmanager
async def sdk_client(
    url: str, *, retries: int = 2, http_timeout: float = 5, api_key: str = API_KEY
) -> AsyncIterator[stripe.StripeClient]:
    """The SDK configured the way the engine's gateway configures it; closed on exit."""
    http_client = stripe.HTTPXClient(timeout=http_timeout)
    try:
        yield stripe.StripeClient(
            api_key=api_key,
            stripe_version=API_VERSION,
            http_client=http_client,
            max_network_retries=retries,
            base_addresses={"api": url, "connect": url, "files": url, "meter_events": url},
        )
    finally:
        await http_client.close_async()


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_plan(
    client: stripe.StripeClient,
    *,
    amount: int = 2000,
    interval: str = "month",
    name: str = "Pro",
    lookup_key: str | None = None,
) -> stripe.Price:
    product = await client.v1.products.create_async(params={"name": name})
    params: dict[str, Any] = {
        "product": product.id,
        "currency": "usd",
        "unit_amount": amount,
        "recurring": {"interval": interval},
    }
    if lookup_key:
        params["lookup_key"] = lookup_key
    return await client.v1.prices.create_async(params=params)  # type: ignore[arg-type]


async def make_customer(
    client: stripe.StripeClient, card: str | None = "pm_card_visa", **params: Any
) -> stripe.Customer:
    """A customer, by default with a working default card (Stripe's documented pattern)."""
    if card:
        params.setdefault("payment_method", card)
        params.setdefault("invoice_settings", {"default_payment_method": card})
    params.setdefault("email", "buyer@example.com")
    return await client.v1.customers.create_async(params=params)  # type: ignore[arg-type]


def as_dict(obj: Any) -> dict[str, Any]:
    """A StripeObject as the plain JSON the emulator sent."""
    data: dict[str, Any] = json.loads(str(obj))
    return data


async def make_meter(
    client: stripe.StripeClient, event_name: str = "revenue_engine.api_calls", **params: Any
) -> stripe.billing.Meter:
    """A sum meter keyed by ``stripe_customer_id`` and ``value``, the engine's contract."""
    params.setdefault("display_name", "API calls")
    params.setdefault("default_aggregation", {"formula": "sum"})
    params.setdefault(
        "customer_mapping", {"event_payload_key": "stripe_customer_id", "type": "by_id"}
    )
    params.setdefault("value_settings", {"event_payload_key": "value"})
    return await client.v1.billing.meters.create_async(
        params={"event_name": event_name, **params}  # type: ignore[typeddict-item]
    )


async def make_metered_price(
    client: stripe.StripeClient,
    meter: stripe.billing.Meter,
    *,
    amount: int = 1500,
    divide_by: int | None = 10_000,
    rounding: str = "up",
    interval: str = "month",
    name: str = "Pro: Extra API calls",
    lookup_key: str | None = None,
) -> stripe.Price:
    """A metered price on ``meter``: by default $15 per package of 10,000 units, rounded up."""
    product = await client.v1.products.create_async(params={"name": name})
    params: dict[str, Any] = {
        "product": product.id,
        "currency": "usd",
        "unit_amount": amount,
        "recurring": {"interval": interval, "usage_type": "metered", "meter": meter.id},
    }
    if divide_by is not None:
        params["transform_quantity"] = {"divide_by": divide_by, "round": rounding}
    if lookup_key:
        params.update(lookup_key=lookup_key, transfer_lookup_key=True)
    return await client.v1.prices.create_async(params=params)  # type: ignore[arg-type]


async def report_usage(
    client: stripe.StripeClient,
    customer_id: str,
    value: int | str,
    *,
    timestamp: int | None = None,
    identifier: str | None = None,
    event_name: str = "revenue_engine.api_calls",
    **options: Any,
) -> stripe.billing.MeterEvent:
    """One meter event, as the engine sends it."""
    params: dict[str, Any] = {
        "event_name": event_name,
        "payload": {"stripe_customer_id": customer_id, "value": str(value)},
    }
    if timestamp is not None:
        params["timestamp"] = timestamp
    if identifier is not None:
        params["identifier"] = identifier
    return await client.v1.billing.meter_events.create_async(
        params=params,  # type: ignore[arg-type]
        options=options,  # type: ignore[arg-type]
    )


class Receiver:
    """A webhook endpoint that verifies signatures like a real integration would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        self.app = Starlette(routes=[Route("/webhook", self._receive, methods=["POST"])])

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.secret: str | None = None
            self.events: list[stripe.Event] = []
            self.rejected: list[str] = []
            self.fail_next = 0
            self.hits = 0

    async def _receive(self, request: Request) -> Response:
        payload = await request.body()
        header = request.headers.get("stripe-signature")
        with self.lock:
            self.hits += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response("try again", status_code=503)
            try:
                event = stripe.Webhook.construct_event(payload, header, self.secret or "")
            except (stripe.SignatureVerificationError, ValueError) as error:
                self.rejected.append(str(error))
                return Response("bad signature", status_code=400)
            self.events.append(event)
        return JSONResponse({"received": True})

    def types(self) -> list[str]:
        with self.lock:
            return [event.type for event in self.events]
