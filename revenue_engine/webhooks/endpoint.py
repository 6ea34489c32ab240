"""The Stripe webhook route: a plain ASGI endpoint (no GraphQL, no bearer auth: the signature
is the authentication).

The path, in order, and what each step answers:

1. method other than POST → 405; no signing secret configured → 503 (misconfiguration:
   Stripe keeps retrying until it is fixed, so nothing is lost); not ``application/json`` → 415;
2. body over ``WEBHOOK_MAX_BODY_BYTES`` (declared or actual) → 413 before it is all read;
3. ``Stripe-Signature`` verified against every secret (``signature``) → 400 with a generic
   body and nothing written when it fails;
4. the envelope parsed and checked (``event``: JSON depth, text, ``created`` range, field
   types) → 400 when it is not a sound Stripe event, before anything is written;
5. claim in the ledger and dispatch (``dispatch.deliver``), within ``ack_budget`` seconds;
   the database unreachable or the budget spent → 503 so Stripe redelivers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from revenue_engine.db import StoreError
from revenue_engine.gateway import StripeApi
from revenue_engine.settings import Settings
from revenue_engine.webhooks.body import BadLength, BodyTooLarge, Disconnected, read_body
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.dispatch import Outcome, deliver
from revenue_engine.webhooks.errors import InvalidSignature, MalformedEvent
from revenue_engine.webhooks.event import parse_event
from revenue_engine.webhooks.signature import verify_signature

log = logging.getLogger(__name__)

#: Stripe, and the W1 scenario, must hear back within 5 s whatever the database does.
ACK_DEADLINE_SECONDS = 4.5

#: The one mapping of a delivery's outcome to its answer: the status, and for an outcome that
#: asks Stripe to come back, the error message (else the body says what was done).
ANSWERS: dict[Outcome, tuple[int, str | None]] = {
    Outcome.PROCESSED: (200, None),
    Outcome.IGNORED: (200, None),
    Outcome.FAILED: (200, None),  # permanent: Stripe would redeliver for days to no avail
    Outcome.DUPLICATE: (200, None),
    Outcome.BUSY: (409, "this event is being processed; retry later"),
    Outcome.RETRY: (503, "temporarily unavailable; retry later"),
}


def ack_budget(settings: Settings) -> float:
    """Seconds a verified delivery may take: room for two store round-trips to time out on
    their own (``MONGODB_TIMEOUT_MS``), never more than ``ACK_DEADLINE_SECONDS``."""
    return min(ACK_DEADLINE_SECONDS, 2 * settings.mongodb_timeout_ms / 1000 + 0.5)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


class WebhookEndpoint:
    """``POST <STRIPE_WEBHOOK_PATH>``: verify → ledger → dispatch (see the module docstring)."""

    def __init__(self, settings: Settings, gateway: StripeApi) -> None:
        self.settings = settings
        self.secrets = [s.get_secret_value() for s in settings.stripe_webhook_secrets]
        self.context = HandlerContext.from_settings(settings, gateway)
        self.budget = ack_budget(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.respond(scope, receive)
        except Disconnected:
            return
        await response(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive) -> JSONResponse:
        headers = Headers(scope=scope)
        if scope.get("method") != "POST":
            return _error(405, "method not allowed", {"allow": "POST"})
        if not self.secrets:
            log.error("webhook refused: STRIPE_WEBHOOK_SECRET is not configured")
            return _error(503, "webhooks are not configured")
        if not _is_json(headers.get("content-type")):
            return _error(415, "expected application/json")
        try:
            body = await read_body(headers, receive, self.settings.webhook_max_body_bytes)
        except BodyTooLarge:
            return _error(413, "body too large")
        except BadLength:
            return _error(400, "invalid request")
        try:
            text = verify_signature(body, headers.get("stripe-signature"), self.secrets)
        except InvalidSignature:
            log.warning("webhook rejected: signature request_id=%s", _request_id(scope))
            return _error(400, "invalid request")
        try:
            event = parse_event(text)
        except MalformedEvent as exc:
            log.warning("webhook rejected: %s request_id=%s", exc, _request_id(scope))
            return _error(400, str(exc))
        if not _ready(scope):
            return _error(503, "temporarily unavailable; retry later")
        try:
            outcome = await asyncio.wait_for(deliver(event, text, self.context), self.budget)
        except (StoreError, TimeoutError) as exc:
            log.warning(
                "webhook unavailable event_id=%s type=%s error=%s",
                event.id,
                event.type,
                type(exc).__name__,
            )
            return _error(503, "temporarily unavailable; retry later")
        status, error = ANSWERS[outcome]
        if error is not None:
            return _error(status, error)
        return JSONResponse(
            {"received": True, "id": event.id, "status": outcome.value}, status_code=status
        )


def _request_id(scope: Scope) -> str:
    state: dict[str, Any] = scope.get("state", {})
    return str(state.get("request_id", "-"))


def _ready(scope: Scope) -> bool:
    """Whether the lifespan connected the store (``Runtime.ready``): else nothing can be
    recorded, and Stripe should come back later."""
    app = scope.get("app")
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    ready = getattr(runtime, "ready", None)
    return isinstance(ready, asyncio.Event) and ready.is_set()
