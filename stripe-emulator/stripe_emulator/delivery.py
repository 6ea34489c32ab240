"""Webhook delivery: signed POSTs of every event to each enabled endpoint that wants it.

Each (event, endpoint) pair is a :class:`Delivery`. A background asyncio task — started by the
app lifespan, or lazily by the first event when there is a running loop — sends due deliveries
with Stripe's ``Stripe-Signature`` header and retries non-2xx answers and network errors with
exponential backoff until ``max_attempts``. It exits when nothing is left to send and is
restarted by the next event, so an idle emulator holds no task.

Test knobs (:class:`DeliveryKnobs`): ``paused`` holds everything; ``out_of_order`` sends each
batch of due deliveries newest first (pause, act, resume to reverse a whole backlog);
``duplicates`` sends every event N extra times; ``delay_seconds`` holds new deliveries that long.
:meth:`Deliveries.flush` skips the delay and waits — honouring retry backoff — until nothing is
pending; it works from any event loop, including a test's while the app runs in a server thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import httpx

from stripe_emulator.resources.events_api import endpoint_wants
from stripe_emulator.signing import signature_header
from stripe_emulator.store import JSON, Store

DeliveryState = Literal["pending", "in_flight", "succeeded", "failed"]
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass
class DeliveryKnobs:
    paused: bool = False
    out_of_order: bool = False
    duplicates: int = 0
    delay_seconds: float = 0.0
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    max_attempts: int = 5
    timeout_seconds: float = 10.0

    def update(self, **changes: Any) -> None:
        names = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"unknown delivery knob {name!r}; known: {sorted(names)}")
            if name in ("paused", "out_of_order"):
                value = bool(value)
            elif name in ("duplicates", "max_attempts"):
                value = int(value)
                if value < (1 if name == "max_attempts" else 0):
                    raise ValueError(f"{name} is too small")
            else:
                value = float(value)
                if value < 0:
                    raise ValueError(f"{name} must not be negative")
            setattr(self, name, value)


@dataclass
class Attempt:
    at: float
    status: int | None
    error: str | None


@dataclass
class Delivery:
    id: int
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    payload: str
    duplicate: bool
    due: float
    state: DeliveryState = "pending"
    attempts: list[Attempt] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["payload"], data["due"]
        return data


AnyFuture = asyncio.Future[None] | concurrent.futures.Future[None]


class Deliveries:
    def __init__(
        self,
        store: Store,
        *,
        client: httpx.AsyncClient | None = None,
        signing_clock: Callable[[], float] | None = None,
    ) -> None:
        self._store = store
        self._lock = store.lock
        self._client = client
        self._signing_clock: Callable[[], float] = signing_clock or time.time
        self.knobs = DeliveryKnobs()
        self._items: list[Delivery] = []
        self._seq = 0
        self._task: AnyFuture | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._wakeup: asyncio.Event | None = None
        self._home: asyncio.AbstractEventLoop | None = None

    # ----------------------------------------------------------------- queueing
    def on_event(self, event: JSON) -> None:
        """Event listener: queue one delivery per interested endpoint (plus duplicates)."""
        with self._lock:
            endpoints = [
                e for e in self._store.all("webhook_endpoint") if endpoint_wants(e, event["type"])
            ]
            if not endpoints:
                return
            # Stripe counts the endpoints still to be reached, this one included, in the
            # payload it sends, and renders it in the endpoint's API version when one is pinned.
            event["pending_webhooks"] = len(endpoints)
            due = time.monotonic() + self.knobs.delay_seconds
            for endpoint in endpoints:
                version = endpoint.get("api_version") or event["api_version"]
                payload = json.dumps({**event, "api_version": version}, indent=2)
                for copy in range(1 + self.knobs.duplicates):
                    self._seq += 1
                    self._items.append(
                        Delivery(
                            id=self._seq,
                            event_id=event["id"],
                            event_type=event["type"],
                            endpoint_id=endpoint["id"],
                            url=endpoint["url"],
                            payload=payload,
                            duplicate=copy > 0,
                            due=due,
                        )
                    )
            self._store.priv(event["id"])["delivery_success"] = False
            self._ensure_worker()

    def _prune(self) -> None:
        """Forget queued deliveries of events that a failed (rolled back) request emitted."""
        self._items = [
            d
            for d in self._items
            if d.state != "pending" or self._store.get("event", d.event_id) is not None
        ]

    def _claim(self) -> list[Delivery]:
        """Mark the due deliveries in flight, in the order they should be sent."""
        with self._lock:
            self._prune()
            if self.knobs.paused:
                return []
            now = time.monotonic()
            due = [d for d in self._items if d.state == "pending" and d.due <= now]
            due.sort(key=lambda d: d.id, reverse=self.knobs.out_of_order)
            for delivery in due:
                delivery.state = "in_flight"
            return due

    def _seconds_until_next(self) -> float | None:
        """None when nothing can become due (empty, or paused)."""
        if self.knobs.paused:
            return None
        pending = [d.due for d in self._items if d.state == "pending"]
        if not pending:
            return None
        return max(0.0, min(pending) - time.monotonic())

    def _busy(self) -> int:
        self._prune()
        return sum(1 for d in self._items if d.state in ("pending", "in_flight"))

    # ----------------------------------------------------------------- sending
    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        with self._lock:
            secrets = list(self._store.priv(delivery.endpoint_id).get("secrets", []))
            timeout = self.knobs.timeout_seconds
        timestamp = int(self._signing_clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(secrets, timestamp, delivery.payload),
            "User-Agent": USER_AGENT,
            "Cache-Control": "no-cache",
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(
                delivery.url, content=delivery.payload.encode(), headers=headers, timeout=timeout
            )
            status = response.status_code
        except Exception as exc:  # any failure to deliver is a failed attempt, retried later
            error = f"{type(exc).__name__}: {exc}"
        self._record(delivery, status, error)

    def _record(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        with self._lock:
            if delivery not in self._items:
                return  # reset while in flight
            delivery.attempts.append(Attempt(self._signing_clock(), status, error))
            if status is not None and 200 <= status < 300:
                delivery.state = "succeeded"
            elif len(delivery.attempts) >= self.knobs.max_attempts:
                delivery.state = "failed"
            else:
                backoff = self.knobs.retry_base_seconds * 2 ** (len(delivery.attempts) - 1)
                delivery.due = time.monotonic() + min(backoff, self.knobs.retry_max_seconds)
                delivery.state = "pending"
            self._settle_event(delivery.event_id)

    def _settle_event(self, event_id: str) -> None:
        originals = [d for d in self._items if d.event_id == event_id and not d.duplicate]
        event = self._store.get("event", event_id)
        if event is None:
            return
        event["pending_webhooks"] = sum(1 for d in originals if d.state != "succeeded")
        self._store.priv(event_id)["delivery_success"] = all(
            d.state == "succeeded" for d in originals
        )

    # ----------------------------------------------------------------- the worker
    def _ensure_worker(self) -> None:
        """Wake the worker, or start one on the home loop or the caller's running loop."""
        with self._lock:
            if self._task is not None and not self._task.done():
                self._signal()
                return
            try:
                current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                current = None
            home = self._home if self._home is not None and self._home.is_running() else None
            loop = home or current
            if loop is None:
                return  # no loop anywhere: flush() will deliver
            self._loop = loop
            if loop is current:
                self._task = loop.create_task(self._run())
            else:
                self._task = asyncio.run_coroutine_threadsafe(self._run(), loop)

    def _signal(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            wakeup.set()
        else:
            loop.call_soon_threadsafe(wakeup.set)

    async def _run(self) -> None:
        self._thread = threading.get_ident()
        self._wakeup = asyncio.Event()
        own_client = self._client is None
        client = self._client or httpx.AsyncClient()
        try:
            while True:
                batch = self._claim()
                for delivery in batch:
                    await self._attempt(client, delivery)
                if batch:
                    continue
                with self._lock:
                    wait = self._seconds_until_next()
                    if wait is None:
                        # Decided under the lock that enqueues take, so no wake-up is lost.
                        self._task = None
                        return
                    self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=max(wait, 0.001))
        finally:
            if own_client:
                await client.aclose()

    async def start(self) -> None:
        """Adopt the running loop as home (app lifespan) and send anything already queued."""
        self._home = asyncio.get_running_loop()
        self._ensure_worker()

    async def stop(self) -> None:
        with self._lock:
            task, self._task = self._task, None
            if self._home is not None and self._home is _running_loop():
                self._home = None
        if task is None or task.done():
            return
        if isinstance(task, asyncio.Future) and task.get_loop() is _running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        else:
            task.cancel()

    # A bounded default, so a paused or failing receiver cannot hang a test run forever.
    async def flush(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Deliver everything now (skipping ``delay_seconds``) and wait until nothing is pending.

        Returns at once while paused. Raises ``TimeoutError`` if deliveries are still pending
        (for instance retrying with a long backoff) after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if self.knobs.paused:
                return
            now = time.monotonic()
            for delivery in self._items:
                if delivery.state == "pending" and not delivery.attempts:
                    delivery.due = min(delivery.due, now)
        own_client: httpx.AsyncClient | None = None
        try:
            while True:
                with self._lock:
                    busy = self._busy()
                    if busy == 0 or self.knobs.paused:
                        return
                    here = _running_loop()
                    # Deliveries belong on the server's loop when one runs (its client may be
                    # bound to that loop); otherwise this loop sends them itself.
                    home_elsewhere = (
                        self._home is not None
                        and self._home.is_running()
                        and self._home is not here
                    )
                    worker_elsewhere = home_elsewhere or (
                        self._task is not None and not self._task.done() and self._loop is not here
                    )
                    wait = self._seconds_until_next()
                if worker_elsewhere:
                    self._ensure_worker()
                    await asyncio.sleep(0.005)
                else:
                    batch = self._claim()
                    if batch:
                        if self._client is None and own_client is None:
                            own_client = httpx.AsyncClient()
                        client = self._client or own_client
                        assert client is not None
                        for delivery in batch:
                            await self._attempt(client, delivery)
                        continue
                    await asyncio.sleep(min(wait if wait is not None else 0.005, 0.05))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{busy} webhook deliveries still pending after {timeout}s")
        finally:
            if own_client is not None:
                await own_client.aclose()

    # ----------------------------------------------------------------- control
    def reset(self) -> None:
        with self._lock:
            self._items.clear()
            self.knobs = DeliveryKnobs()

    def configure(self, **changes: Any) -> DeliveryKnobs:
        with self._lock:
            self.knobs.update(**changes)
            self._ensure_worker()
            return DeliveryKnobs(**asdict(self.knobs))

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d.as_json() for d in self._items]

    def pending(self) -> int:
        with self._lock:
            return self._busy()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
