"""Stripe event payloads for tests: Stripe's own example objects (``fixtures3.json``) wrapped in
real event envelopes, serialised like Stripe does and signed in the test exactly like Stripe
(``t=…,v1=HMAC_SHA256(secret, f"{t}.{body}")``)."""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from revenue_engine.settings import STRIPE_API_VERSION, Settings

FIXTURES = Path(__file__).parent / "fixtures" / "stripe" / "fixtures3.json"
SECRET = "whsec_" + "5f" * 16
OTHER_SECRET = "whsec_" + "a7" * 16
PATH = "/webhooks/stripe"


def with_secrets(settings: Settings, *secrets: str) -> Settings:
    """``settings`` (e.g. ``store_settings``) with webhook signing secrets configured."""
    values = [SecretStr(s) for s in secrets or (SECRET,)]
    return settings.model_copy(update={"stripe_webhook_secrets": values})


def event_id() -> str:
    return "evt_1" + uuid.uuid4().hex[:23]


@functools.cache
def _resources() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    return data


def stripe_object(kind: str, **overrides: Any) -> dict[str, Any]:
    """A copy of Stripe's example ``kind`` object (``price``, ``product``…) with overrides."""
    obj: dict[str, Any] = copy.deepcopy(_resources()[kind])
    obj.update(overrides)
    return obj


def event(
    type: str,
    obj: dict[str, Any],
    *,
    id: str | None = None,
    created: int | None = None,
    livemode: bool = False,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Stripe event envelope around ``obj``."""
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": id or event_id(),
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": created if created is not None else int(time.time()),
        "data": data,
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


def body_of(payload: dict[str, Any]) -> bytes:
    """Serialised like Stripe's deliveries (pretty-printed JSON)."""
    return json.dumps(payload, indent=2).encode("utf-8")


def v1(body: bytes, secret: str, t: int) -> str:
    signed = f"{t}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature(body: bytes, secret: str = SECRET, *, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    return f"t={t},v1={v1(body, secret, t)}"


async def post(
    client: httpx.AsyncClient,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    t: int | None = None,
    header: str | None = None,
    path: str = PATH,
    content_type: str = "application/json; charset=utf-8",
) -> httpx.Response:
    """POST a (signed) delivery the way Stripe does."""
    body = payload if isinstance(payload, bytes) else body_of(payload)
    headers = {
        "content-type": content_type,
        "stripe-signature": header if header is not None else signature(body, secret, t=t),
        "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return await client.post(path, content=body, headers=headers)
