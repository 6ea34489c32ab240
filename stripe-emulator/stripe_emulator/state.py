"""Per-instance emulator state: the store, configuration, time, and the request context.

Time has two sources. Objects attached to a test clock (a customer created with ``test_clock``
and everything billed to it) live at the clock's frozen time; everything else uses the wall clock
(injectable for tests). :class:`Ctx` carries what one API request or hosted-page action knows
about itself — the request id and idempotency key that Stripe copies into the events it causes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from stripe_emulator.metering import MeterLedger
from stripe_emulator.store import JSON, Store

API_VERSION = "2026-10-28.endive"


@dataclass
class DunningPolicy:
    """What happens after a renewal payment fails (Stripe's "retry schedule" settings).

    ``retry_days``: days after the first failure at which payment is retried. When the last retry
    fails the subscription is canceled (Stripe's default) or marked ``unpaid``; the invoice is
    left open unless ``mark_uncollectible``.
    """

    retry_days: tuple[int, ...] = (3, 5, 7)
    final_action: Literal["cancel", "unpaid"] = "cancel"
    mark_uncollectible: bool = False


@dataclass
class Config:
    api_version: str = API_VERSION
    account_name: str = "Revenue Engine (emulated Stripe)"
    dunning: DunningPolicy = field(default_factory=DunningPolicy)
    checkout_session_ttl: int = 24 * 3600
    # An incomplete subscription whose first invoice stays unpaid expires after 23 hours.
    incomplete_expiry: int = 23 * 3600
    trial_will_end_notice: int = 3 * 24 * 3600


EventListener = Callable[[JSON], None]


class State:
    """Everything one emulator instance knows."""

    def __init__(self, public_url: str, wall_clock: Callable[[], float] | None = None) -> None:
        self.store = Store()
        # Accepted meter events (see :mod:`metering`), guarded by the store's lock.
        self.meter_events = MeterLedger()
        self.config = Config()
        self.public_url = public_url.rstrip("/")
        self.wall_clock: Callable[[], float] = wall_clock or time.time
        self.listeners: list[EventListener] = []

    @property
    def lock(self) -> Any:
        return self.store.lock

    def reset(self) -> None:
        with self.lock:
            self.store.reset()
            self.meter_events.reset()
            self.config = Config()

    def now(self, clock_id: str | None = None) -> int:
        """Unix seconds on the given test clock, or the wall clock."""
        if clock_id:
            clock = self.store.get("test_helpers.test_clock", clock_id)
            if clock is not None:
                return int(clock["frozen_time"])
        return int(self.wall_clock())

    def clock_of(self, obj: JSON | None) -> str | None:
        """The test clock an object lives on: its own, or its customer's."""
        if obj is None:
            return None
        clock = obj.get("test_clock")
        if isinstance(clock, str):
            return clock
        customer_id = obj.get("customer")
        if isinstance(customer_id, str):
            customer = self.store.get("customer", customer_id)
            if customer is not None and isinstance(customer.get("test_clock"), str):
                return str(customer["test_clock"])
        return None

    def now_for(self, obj: JSON | None) -> int:
        return self.now(self.clock_of(obj))

    def now_for_customer(self, customer_id: str | None) -> int:
        if not customer_id:
            return self.now()
        return self.now_for({"customer": customer_id})


@dataclass
class Ctx:
    """What an API request (or a hosted-page action) knows about itself."""

    state: State
    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = ""
    #: While an invoice preview runs (see :mod:`previews`): the invoices billing builds are
    #: collected here as drafts instead of being finalized and collected.
    previews: list[JSON] | None = None

    @property
    def store(self) -> Store:
        return self.state.store

    def background(self) -> Ctx:
        """The context of work Stripe does on its own (a test clock's billing run, an expiry):
        its events carry ``request: {id: null, idempotency_key: null}``."""
        return Ctx(self.state, base_url=self.base_url)

    def url(self, path: str) -> str:
        """An absolute URL on the emulator's public address (hosted pages, invoice links)."""
        base = self.state.public_url or self.base_url.rstrip("/")
        return f"{base}{path}"
