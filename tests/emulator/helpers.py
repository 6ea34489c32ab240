"""Helpers shared by the emulator tests: an SDK client factory and small object builders."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import stripe

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
