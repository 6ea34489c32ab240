"""The :class:`Emulator`: one offline Stripe account, its ASGI app and its test controls.

::

    emulator = Emulator("http://127.0.0.1:8000/stripe-emulator")
    app.mount("/stripe-emulator", emulator.app)     # or EmulatorServer(emulator)
    client = stripe.StripeClient("sk_test_…", base_addresses={"api": emulator.public_url, …})

State is per instance and in memory. Webhook deliveries go through ``delivery_client`` when one
is given (e.g. ``httpx.AsyncClient(transport=httpx.ASGITransport(app=engine_app))``) and through
a private ``httpx.AsyncClient`` otherwise. ``clock`` drives wall-clock time (objects on a test
clock use the clock's frozen time); ``signing_clock`` supplies the ``t=`` of webhook signatures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, cast

import httpx

from stripe_emulator.app import build_app
from stripe_emulator.delivery import Deliveries
from stripe_emulator.faults import Fault, FaultInjector, FaultKind, RequestLog
from stripe_emulator.idempotency import IdempotencyCache
from stripe_emulator.ids import webhook_secret
from stripe_emulator.metering import usage
from stripe_emulator.previews import ROUTES as PREVIEW_ROUTES
from stripe_emulator.resources import (
    catalog,
    checkout,
    coupons,
    customers,
    events_api,
    invoices,
    meter_events,
    meters,
    payment_intents,
    payment_methods,
    portal,
    promotion_codes,
    refunds,
    setup_intents,
    subscriptions,
    test_clocks,
)
from stripe_emulator.routing import Router
from stripe_emulator.settlement import settle
from stripe_emulator.state import API_VERSION, Ctx, DunningPolicy, State
from stripe_emulator.store import JSON, snapshot

ROUTER = Router(
    [
        *customers.ROUTES,
        *catalog.ROUTES,
        *coupons.ROUTES,
        *promotion_codes.ROUTES,
        *checkout.ROUTES,
        *subscriptions.ROUTES,
        # Before the invoice routes: `POST /v1/invoices/{id}` would read `create_preview` as an id.
        *PREVIEW_ROUTES,
        *invoices.ROUTES,
        *payment_methods.ROUTES,
        *payment_intents.ROUTES,
        *setup_intents.ROUTES,
        *refunds.ROUTES,
        *portal.ROUTES,
        *events_api.ROUTES,
        *test_clocks.ROUTES,
        *meters.ROUTES,
        *meter_events.ROUTES,
    ]
)


class Emulator:
    """An in-memory Stripe account speaking Stripe's v1 HTTP API (see the package docstring)."""

    def __init__(
        self,
        public_url: str = "",
        *,
        delivery_client: httpx.AsyncClient | None = None,
        signing_clock: Callable[[], float] | None = None,
        clock: Callable[[], float] | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        self.state = State(public_url, wall_clock=clock)
        self.state.config.api_version = api_version
        self._api_version = api_version
        self.router = ROUTER
        self.idempotency = IdempotencyCache()
        self.faults = FaultInjector()
        self.requests = RequestLog()
        self._deliveries = Deliveries(
            self.state.store, client=delivery_client, signing_clock=signing_clock
        )
        self.state.listeners.append(self._deliveries.on_event)
        self.app = build_app(self)

    # ------------------------------------------------------------------ address
    @property
    def public_url(self) -> str:
        """Base URL of this emulator as clients see it (API base and hosted page links)."""
        return self.state.public_url

    @public_url.setter
    def public_url(self, value: str) -> None:
        self.state.public_url = value.rstrip("/")

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start webhook delivery on the running loop (the app lifespan calls this)."""
        await self._deliveries.start()

    async def aclose(self) -> None:
        """Stop the delivery task (pending deliveries stay queued)."""
        await self._deliveries.stop()

    def reset(self) -> None:
        """Forget everything: objects, events, idempotency keys, faults, request log, knobs."""
        with self.state.lock:
            self.state.reset()
            self.state.config.api_version = self._api_version
            self._deliveries.reset()
        self.idempotency.reset()
        self.faults.clear()
        self.requests.clear()

    # ------------------------------------------------------------------ faults & counters
    def inject_fault(self, kind: str, **options: Any) -> Fault:
        """Make the next ``count`` matching ``/v1`` requests fail; see :mod:`faults`."""
        return self.faults.add(Fault(kind=cast(FaultKind, kind), **options))

    def clear_faults(self) -> None:
        self.faults.clear()

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """How many ``/v1`` requests matched (``path`` may be a glob, e.g. ``/v1/customers*``)."""
        return self.requests.count(method, path)

    def idempotency_keys(self, method: str | None = None, path: str | None = None) -> Counter[str]:
        """Idempotency key → number of requests that carried it, for matching requests."""
        return self.requests.idempotency_keys(method, path)

    # ------------------------------------------------------------------ webhooks
    def configure_deliveries(self, **knobs: Any) -> dict[str, Any]:
        """Set delivery knobs: paused, out_of_order, duplicates, delay_seconds, retry_* …"""
        return asdict(self._deliveries.configure(**knobs))

    def pause_deliveries(self) -> None:
        self._deliveries.configure(paused=True)

    def resume_deliveries(self) -> None:
        self._deliveries.configure(paused=False)

    async def flush_deliveries(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Send every queued delivery now and wait until none is pending (see :mod:`delivery`)."""
        await self._deliveries.flush(timeout)

    def deliveries(self) -> list[dict[str, Any]]:
        return self._deliveries.snapshot()

    def delivery_knobs(self) -> dict[str, Any]:
        return asdict(self._deliveries.knobs)

    def pending_deliveries(self) -> int:
        return self._deliveries.pending()

    def roll_webhook_secret(self, endpoint_id: str) -> str:
        """A new signing secret; the previous one keeps signing too (Stripe's rolling window)."""
        with self.state.lock:
            endpoint = self.state.store.get("webhook_endpoint", endpoint_id)
            if endpoint is None:
                raise KeyError(f"no such webhook endpoint {endpoint_id}")
            secrets: list[str] = self.state.store.priv(endpoint_id).setdefault("secrets", [])
            secret = webhook_secret()
            secrets[:] = [*secrets[-1:], secret]
            return secret

    # ------------------------------------------------------------------ billing knobs
    def set_dunning(self, **policy: Any) -> DunningPolicy:
        """Retry schedule and final action after failed renewals (see :class:`DunningPolicy`)."""
        with self.state.lock:
            current = asdict(self.state.config.dunning)
            current.update(policy)
            current["retry_days"] = tuple(int(d) for d in current["retry_days"])
            if current["final_action"] not in ("cancel", "unpaid"):
                raise ValueError("final_action must be 'cancel' or 'unpaid'")
            self.state.config.dunning = DunningPolicy(**current)
            return self.state.config.dunning

    def attach_test_clock(self, customer_id: str, clock_id: str) -> None:
        """Put an existing customer (and what is billed to it from now on) on a test clock.

        Stripe only accepts ``test_clock`` when a customer is created; a client that creates its
        customers itself (as the engine does) gets them onto a clock through this knob."""
        with self.state.lock:
            customer = self.state.store.get("customer", customer_id)
            if customer is None:
                raise KeyError(f"no such customer {customer_id}")
            if self.state.store.get("test_helpers.test_clock", clock_id) is None:
                raise KeyError(f"no such test clock {clock_id}")
            customer["test_clock"] = clock_id

    def set_card_decline(self, payment_method_id: str, decline_code: str | None) -> None:
        """Make future charges on a saved card decline with ``decline_code`` (None: succeed)."""
        with self.state.lock:
            if self.state.store.get("payment_method", payment_method_id) is None:
                raise KeyError(f"no such payment method {payment_method_id}")
            self.state.store.priv(payment_method_id)["decline_code"] = decline_code

    def settle_payment(self, payment_intent_id: str, outcome: str | None = None) -> JSON:
        """Settle a ``processing`` bank debit now, as the bank would: the test account's outcome
        or ``outcome`` (``"succeeded"``/``"failed"``); returns the PaymentIntent."""
        if outcome not in (None, "succeeded", "failed"):
            raise ValueError("outcome must be 'succeeded' or 'failed'")
        with self.state.lock:
            pi = self.state.store.get("payment_intent", payment_intent_id)
            if pi is None:
                raise KeyError(f"no such payment intent {payment_intent_id}")
            if pi["status"] != "processing":
                raise ValueError(f"payment intent {payment_intent_id} is {pi['status']}")
            settle(Ctx(self.state), pi, None if outcome is None else outcome == "succeeded")
            return snapshot(pi)

    # ------------------------------------------------------------------ inspection
    def objects(self, kind: str) -> list[JSON]:
        """Snapshots of live objects of one type (``"customer"``, ``"event"`` …), newest first."""
        with self.state.lock:
            return [snapshot(obj) for obj in self.state.store.all(kind)]

    def meter_usage(self, meter_id: str, customer_id: str, start: int = 0, end: int = 2**62) -> int:
        """The usage the emulator counted for a customer on a meter over ``[start, end)``
        (by the meter's formula), as ``event_summaries`` reports it."""
        with self.state.lock:
            return usage(Ctx(self.state), meter_id, customer_id, start, end)

    def events(self, type_: str | None = None) -> list[JSON]:
        return [e for e in self.objects("event") if type_ is None or e["type"] == type_]

    def describe(self) -> dict[str, Any]:
        kinds = (
            "customer",
            "product",
            "price",
            "checkout.session",
            "subscription",
            "invoice",
            "payment_intent",
            "charge",
            "refund",
            "payment_method",
            "setup_intent",
            "event",
            "webhook_endpoint",
            "test_helpers.test_clock",
            "billing_portal.session",
            "billing.meter",
            "coupon",
            "promotion_code",
            "discount",
        )
        with self.state.lock:
            counts = {kind: self.state.store.count(kind) for kind in kinds}
            counts["billing.meter_event"] = len(self.state.meter_events)
        return {
            "public_url": self.public_url,
            "api_version": self.state.config.api_version,
            "objects": counts,
            "pending_deliveries": self.pending_deliveries(),
            "delivery_knobs": self.delivery_knobs(),
            "faults": [f.as_json() for f in self.faults.armed()],
            "requests": self.requests.count(),
        }
