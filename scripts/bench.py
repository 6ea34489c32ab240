#!/usr/bin/env python3
"""The benchmark behind ``make bench`` (docs/performance.md).

It starts the engine with uvicorn (one worker) on loopback in a subprocess — ``bench.py serve``,
which is the engine app plus two bare Starlette routes doing the same database reads as the
GraphQL ``plans`` and ``subscriptionStatus`` fields (the framework floor) — and drives it from
this process with asyncio + httpx. Per store (the in-memory default, and the MongoDB wire
backend when one is available) it measures:

* engine time per request from ``Server-Timing`` (``app``: the request minus its awaits on the
  database and on Stripe), one request at a time: a signed webhook event (verify → ledger →
  apply), ``plans`` and ``subscriptionStatus`` with every query limit on;
* webhook events/s with p50/p99 at 32 concurrent senders at ledger marks of 1,000, 5,000 and
  20,000 events, and a burst of 1,000 events (every answer must be 2xx). The first mark is
  grown by the senders; each later one is a fresh server whose store is seeded to the mark
  before it accepts connections (``seed_ledger``: the rows the engine writes for these events,
  through its own documents), then a fixed number of new events is measured there. Every
  phase has a time cap, so a slow store cannot hang the run;
* re-reading webhook events (``customer.subscription.updated`` and ``invoice.paid`` of a real
  subscription, each re-read from Stripe and reconciled) one at a time on ledgers of 0 and of
  each mark (seeded as above), with Stripe — the emulator in a process of its own — apart:
  engine, Stripe and store time per event from ``Server-Timing`` and the server process's CPU
  per event (from ``/proc``);
* GraphQL reads (req/s, p50/p99) at 16 connections next to the bare routes, with the ratio;
* the checkout mutation against the in-process Stripe emulator (req/s, p99);
* usage ingestion (``POST /v1/usage`` with a ``USAGE_API_KEYS`` key, for a Pro subscription
  with API-call overage on): batches of 100 and of 1,000 events, about a tenth of them
  duplicates (ids from answered batches and ids repeated in the batch), from one sender and
  from 4 at once, each on a fresh server — engine time per event (``app`` / events), events/s
  end to end, and every answer checked event by event and the counter against the units
  accepted (a duplicate counted stops the run); a batch answered 503 is retried as the route
  asks, and one still refused ends its phase;
* the ``usage`` query (engine time one at a time, req/s at 16 connections) next to a bare
  route doing the same reads;
* the in-process validation cost of prebuilt limit rules vs. rules built per request;
* peak RSS of the server process.

``--only usage`` (or ``api``, ``webhooks``, ``rereads``, ``validation``, comma-separated) runs
some phases.

With ``--uvloop`` (needs ``uvicorn[standard]``, which the engine does not depend on) engine time
and the reads at 16 connections are also measured side by side under uvicorn's asyncio loop + h11
and under uvloop + httptools, on the in-memory store.

Results are printed as a table and written as JSON under ``bench-results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import importlib.metadata
import importlib.util
import itertools
import json
import math
import os
import platform
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's package, whatever is installed

WEBHOOK_SECRET = "whsec_" + "b3" * 16
JWT_SECRET = "bench-" + "k" * 42
API_VERSION = "2026-10-28.endive"
PLANS_QUERY = "{ plans { uid name prices { interval amount currency } } }"
STATUS_QUERY = (
    "{ subscriptionStatus { status isActive planUid entitlements { key enabled limit } } }"
)
CHECKOUT = """mutation($input: CheckoutInput!) { createCheckoutSession(input: $input) {
  __typename ... on CheckoutPayload { sessionId checkoutUrl }
  ... on UserError { code message } } }"""
TIMING = re.compile(r"(\w+);dur=([\d.]+)")
#: The server's ``USAGE_API_KEYS`` for this run (the service credential of ``POST /v1/usage``).
USAGE_KEY = "uk_bench_" + secrets.token_urlsafe(32)
USAGE_FEATURE = "api_calls"
USAGE_QUERY = (
    "{ usage { periodStart periodEnd planUid features { feature used included remaining "
    "overageAvailable overageEnabled packageSize overageUnits overagePackages overageAmount "
    "currency reportedUnits } } }"
)
#: Targets: engine time per event in a 1,000-event usage batch, the ``usage`` query, and a
#: webhook event that re-reads from Stripe.
INGEST_TARGET_US = 20.0
USAGE_QUERY_TARGET_MS = 0.5
REREAD_TARGET_MS = 1.5
EMULATOR_KEY = "sk_test_bench"
#: Times a batch answered 503 is sent again before the run fails.
USAGE_RETRIES = 5
#: How long the counter may take to hold every accepted unit after a retried batch: the
#: engine completes an interrupted batch once its events are a minute old.
USAGE_SETTLE_S = 120.0


# --- the server side ---------------------------------------------------------------------


def serve(
    port: int, *, seed: int = 0, link: bool = True, loop: str = "asyncio", http: str = "h11"
) -> None:
    """Run the engine (settings from the environment) plus the framework-floor routes; with
    ``seed``, the ledger holds that many events before the server accepts connections (and,
    with ``link``, the catalog is linked to the newest of their prices)."""
    import uvicorn
    from starlette.requests import Request as HTTPRequest
    from starlette.responses import JSONResponse

    from revenue_engine.app import create_app
    from revenue_engine.auth import Authenticator
    from revenue_engine.logs import configure_logging
    from revenue_engine.services import plan_store, subscriptions, usage_reads
    from revenue_engine.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    authenticator = Authenticator(settings)

    async def bare_plans(request: HTTPRequest) -> JSONResponse:
        rows = await plan_store.list_plans(active_only=True)
        return JSONResponse(
            {
                "plans": [
                    {
                        "uid": p.uid,
                        "name": p.name,
                        "prices": [
                            {
                                "interval": x.interval.value,
                                "amount": x.amount,
                                "currency": x.currency,
                            }
                            for x in p.prices
                        ],
                    }
                    for p in rows
                ]
            }
        )

    async def bare_status(request: HTTPRequest) -> JSONResponse:
        principal = await authenticator.authenticate(request.headers)
        if principal is None:
            raise RuntimeError("the bench token did not authenticate")
        doc = await subscriptions.current_subscription(principal)
        if doc is None:
            return JSONResponse({"status": None})
        active = subscriptions.is_active(doc, settings)
        return JSONResponse(
            {
                "status": doc.status,
                "isActive": active,
                "planUid": doc.plan_uid,
                "entitlements": [
                    {"key": k, "value": v} for k, v in sorted(doc.entitlements.items())
                ]
                if active
                else [],
            }
        )

    async def bare_usage(request: HTTPRequest) -> JSONResponse:
        principal = await authenticator.authenticate(request.headers)
        if principal is None:
            raise RuntimeError("the bench token did not authenticate")
        summary = await usage_reads.current_usage(principal.organization_id)
        if summary is None:
            return JSONResponse({"usage": None})
        return JSONResponse(
            {
                "usage": {
                    "periodStart": summary.period_start.isoformat(),
                    "periodEnd": summary.period_end.isoformat(),
                    "planUid": summary.plan_uid,
                    "features": [
                        {
                            "feature": f.feature,
                            "used": f.used,
                            "included": f.included,
                            "remaining": f.remaining,
                            "overageAvailable": f.overage_available,
                            "overageEnabled": f.overage_enabled,
                            "packageSize": f.package_size,
                            "overageUnits": f.overage_units,
                            "overagePackages": f.overage_packages,
                            "overageAmount": f.overage_amount,
                            "currency": f.currency,
                            "reportedUnits": f.reported_units,
                        }
                        for f in summary.features
                    ],
                }
            }
        )

    app.add_route("/bench/plans", bare_plans, methods=["GET"])
    app.add_route("/bench/subscription-status", bare_status, methods=["GET"])
    app.add_route("/bench/usage", bare_usage, methods=["GET"])
    if seed:
        engine_lifespan = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def seeded_lifespan(app: Any) -> AsyncIterator[None]:
            async with engine_lifespan(app):
                runtime = app.state.runtime
                await runtime.ready.wait()
                await seed_ledger(seed, runtime.database, link=link)
                yield

        app.router.lifespan_context = seeded_lifespan
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop=loop,
        http=http,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
    )


SEED_BATCH = 1000


async def seed_ledger(count: int, database: Any, *, link: bool = True) -> None:
    """Fill the store with what the engine leaves after processing ``count`` of the bench's
    ``price.updated`` events, one a second up to now: a ``processed`` ledger row per event
    (its payload as signed), a version watermark per price, and the catalog linked to the
    newest price of each slot by the engine's own catalog sync.

    Bench-only, and nothing in the engine can reach it. The in-memory store lives in the
    server process, so there it runs in that process (``bench.py serve --seed-ledger N``)
    once the app is ready and before it accepts connections; a MongoDB server is shared, so
    there the driver seeds the database before starting the engine on it (``seed_store``).
    Rows are written in batches. On the in-memory store
    the two collections' indexes are dropped first and built again afterwards by the engine's
    own initialisation: it checks a unique index by scanning the whole collection on every
    insert, so loading 20,000 events under the index would take longer than measuring them.
    Without ``link`` the catalog is left as it was (its prices are not at any Stripe: a phase
    that buys a plan at a Stripe of its own needs the catalog unlinked)."""
    from revenue_engine.documents import StripeObjectVersion, WebhookEvent, WebhookEventStatus
    from revenue_engine.gateway.models.catalog import CatalogPrice
    from revenue_engine.services import catalog_sync

    events = Events(run=f"seed{uuid.uuid4().hex[:4]}")
    if database.in_memory:
        for model in (WebhookEvent, StripeObjectVersion):
            await model.get_motor_collection().drop_indexes()
    first = datetime.now(UTC) - timedelta(seconds=count)
    for start in range(0, count, SEED_BATCH):
        rows, versions = [], []
        for index in range(start, min(count, start + SEED_BATCH)):
            moment = first + timedelta(seconds=index)
            created = int(moment.timestamp())
            body = events.body(index, created=created)
            event = json.loads(body)
            rows.append(
                WebhookEvent(
                    event_id=event["id"],
                    type=event["type"],
                    livemode=event["livemode"],
                    api_version=event["api_version"],
                    created=datetime.fromtimestamp(created, UTC),
                    received_at=moment,
                    payload=body.decode(),
                    status=WebhookEventStatus.PROCESSED,
                    processed_at=moment,
                    claimed_at=None,
                    claim_token=None,
                )
            )
            versions.append(
                StripeObjectVersion(
                    object_id=event["data"]["object"]["id"],
                    created=created,
                    stage=1,  # *.updated
                    event_id=event["id"],
                )
            )
        await WebhookEvent.insert_many(rows)
        await StripeObjectVersion.insert_many(versions)
    if database.in_memory:
        await database.initialise()  # the indexes, as at startup
    for index in range(max(0, count - len(events.prices)) if link else count, count):
        price = json.loads(events.body(index))["data"]["object"]
        await catalog_sync.sync_price(CatalogPrice.model_validate(price))


async def seed_store(uri: str, database_name: str, count: int, *, link: bool = True) -> None:
    """Seed a database on a MongoDB server from the driver, before the engine starts on it:
    the plans file loaded as the engine loads it at startup, then ``seed_ledger``. Its own
    client allows each insert of a batch the longest operation timeout the settings take."""
    from revenue_engine.db import connect
    from revenue_engine.services.plans_file import load_plans_file
    from revenue_engine.settings import DEMO_PLANS_FILE, Settings

    settings = Settings(
        _env_file=None,
        mongodb_uri=uri,
        mongodb_database=database_name,
        mongodb_timeout_ms=60_000,
    )
    database = await connect(settings)
    try:
        await load_plans_file(DEMO_PLANS_FILE)
        await seed_ledger(count, database, link=link)
    finally:
        database.close()


# --- measuring ---------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))  # nearest rank
    return ordered[index]


def server_timing(response: Any) -> dict[str, float]:
    return {k: float(v) for k, v in TIMING.findall(response.headers.get("server-timing", ""))}


class Response:
    """What the driver needs of an HTTP answer."""

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams. The load phases use these
    instead of httpx: on a 2-core machine shared with the server, httpx's per-request CPU
    would make the driver, not the server, the bottleneck."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    async def send(
        self, method: str, target: str, host: str, headers: dict[str, str], body: bytes
    ) -> Response:
        lines = [f"{method} {target} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        answer: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer[name.strip().lower()] = value.strip()
        if answer.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunks.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            content = b"".join(c[:-2] for c in chunks)
        else:
            content = await self.reader.readexactly(int(answer.get("content-length", "0")))
        return Response(int(status_line.split()[1]), answer, content)

    def close(self) -> None:
        self.writer.close()


#: An idle connection is reused only this long: uvicorn closes one idle for 5 s, and a request
#: sent on it as it closes would read an empty answer.
REUSE_IDLE_S = 3.0


class Pool:
    """Keep-alive connections to the server, opened as needed and reused while fresh."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.idle: list[Connection] = []

    def fresh(self) -> Connection | None:
        """The most recently used idle connection; those idle too long are closed."""
        while self.idle:
            connection = self.idle.pop()
            if time.monotonic() - connection.idle_since <= REUSE_IDLE_S:
                return connection
            connection.close()
        return None

    async def request(
        self,
        method: str,
        target: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        json_body: Any = None,
    ) -> Response:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["content-type"] = "application/json"
        connection = self.fresh()
        if connection is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=2**22)
            connection = Connection(reader, writer)
        try:
            response = await connection.send(method, target, self.host, headers, body)
        except BaseException:
            connection.close()
            raise
        if response.headers.get("connection") == "close":
            connection.close()
        else:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        return response

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)  # seconds, client side
    timings: list[dict[str, float]] = field(default_factory=list)  # Server-Timing, ms
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0
    client_cpu: float = 0.0

    def summary(self) -> dict[str, Any]:
        count = len(self.latencies)
        ms = [x * 1000 for x in self.latencies]
        out: dict[str, Any] = {
            "requests": count,
            "seconds": round(self.wall, 2),
            "per_second": round(count / self.wall, 1) if self.wall else None,
            "p50_ms": round(percentile(ms, 50), 2),
            "p99_ms": round(percentile(ms, 99), 2),
            "non_2xx": sum(n for s, n in self.statuses.items() if not 200 <= s < 300),
            "driver_cpu_pct": round(100 * self.client_cpu / self.wall) if self.wall else None,
        }
        for part in ("app", "db", "stripe"):
            values = [t[part] for t in self.timings if part in t]
            if values:
                out[f"{part}_p50_ms"] = round(percentile(values, 50), 3)
                out[f"{part}_p99_ms"] = round(percentile(values, 99), 3)
                out[f"{part}_mean_ms"] = round(statistics.fmean(values), 3)
        if self.outcomes:
            out["outcomes"] = dict(self.outcomes)
        return out


Request = Callable[[Any, int], Awaitable[Any]]


async def load(
    client: Any,
    request: Request,
    *,
    concurrency: int,
    total: int | None = None,
    seconds: float | None = None,
    outcome: Callable[[Any], str] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Sample:
    """``request(client, i)`` from ``concurrency`` workers until ``total`` or ``seconds``
    (or until ``stop()`` says so)."""
    sample = Sample()
    counter = itertools.count()
    started = time.perf_counter()
    cpu = time.process_time()
    deadline = started + seconds if seconds else None

    async def worker() -> None:
        while True:
            i = next(counter)
            if total is not None and i >= total:
                return
            if deadline is not None and time.perf_counter() > deadline:
                return
            if stop is not None and stop():
                return
            t0 = time.perf_counter()
            response = await request(client, i)
            sample.latencies.append(time.perf_counter() - t0)
            sample.statuses[response.status_code] += 1
            sample.timings.append(server_timing(response))
            if outcome is not None:
                sample.outcomes[outcome(response)] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.wall = time.perf_counter() - started
    sample.client_cpu = time.process_time() - cpu
    return sample


# --- what the driver sends ---------------------------------------------------------------


def token(organization_id: str) -> str:
    import jwt

    now = int(time.time())
    claims = {
        "sub": f"user@{organization_id}",
        "org_id": organization_id,
        "roles": [],
        "aud": "revenue-engine",
        "iat": now,
        "exp": now + 3600,
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def catalog_prices() -> list[tuple[str, str, int, str]]:
    """(lookup_key, interval, amount, currency) of every price in the demo catalog."""
    from revenue_engine.services.plans_file import read_plans_file
    from revenue_engine.settings import DEMO_PLANS_FILE

    found = []
    for plan in read_plans_file(DEMO_PLANS_FILE):
        for price in plan.prices:
            key = price.lookup_key or f"{plan.uid}_{price.interval}"
            found.append((key, str(price.interval), int(price.amount or 0), str(price.currency)))
    return found


class Events:
    """Stripe ``price.updated`` events for catalog prices — each one linked on arrival, so it
    takes the whole path: verify → ledger row → version watermark → catalog update — serialised
    like Stripe's deliveries (pretty JSON) and signed like Stripe signs them."""

    def __init__(self, run: str | None = None) -> None:
        self.prices = catalog_prices()
        self.run = run or uuid.uuid4().hex[:8]

    def body(self, index: int, created: int | None = None) -> bytes:
        key, interval, amount, currency = self.prices[index % len(self.prices)]
        now = int(time.time()) if created is None else created
        price = {
            "id": f"price_{self.run}{index:07d}",
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": now,
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": key,
            "metadata": {},
            "nickname": None,
            "product": f"prod_{self.run}{index % 7}",
            "recurring": {
                "interval": interval,
                "interval_count": 1,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            },
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring",
            "unit_amount": amount,
            "unit_amount_decimal": str(amount),
        }
        event = {
            "id": f"evt_{self.run}{index:07d}",
            "object": "event",
            "api_version": API_VERSION,
            "created": now,
            "data": {"object": price, "previous_attributes": {"lookup_key": None}},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": "price.updated",
        }
        return json.dumps(event, indent=2).encode()

    def headers(self, body: bytes) -> dict[str, str]:
        return signed_headers(body)

    def sender(self, offset: int) -> Request:
        async def send(pool: Pool, i: int) -> Response:
            body = self.body(offset + i)
            return await pool.request(
                "POST", "/webhooks/stripe", body=body, headers=self.headers(body)
            )

        return send


def signed_headers(body: bytes) -> dict[str, str]:
    """The headers of a delivery of ``body``, signed as Stripe signs it."""
    t = int(time.time())
    v1 = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return {
        "content-type": "application/json; charset=utf-8",
        "stripe-signature": f"t={t},v1={v1.hexdigest()}",
        "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


class RereadEvents:
    """``customer.subscription.updated`` and ``invoice.paid`` events, alternating, of one real
    subscription (its object and its latest invoice as Stripe holds them). Each names the
    subscription, so the engine re-reads it from Stripe and reconciles; ``created`` never goes
    back, so no event is skipped as older than one already applied."""

    def __init__(self, subscription: dict[str, Any], invoice: dict[str, Any]) -> None:
        self.subscription, self.invoice = subscription, invoice
        self.run = uuid.uuid4().hex[:8]

    def body(self, index: int) -> bytes:
        kind = "customer.subscription.updated" if index % 2 == 0 else "invoice.paid"
        obj = self.subscription if index % 2 == 0 else self.invoice
        event = {
            "id": f"evt_re{self.run}{index:07d}",
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj, "previous_attributes": {}},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        return json.dumps(event, indent=2).encode()

    def sender(self, offset: int) -> Request:
        async def send(pool: Pool, i: int) -> Response:
            body = self.body(offset + i)
            return await pool.request(
                "POST", "/webhooks/stripe", body=body, headers=signed_headers(body)
            )

        return send


class EmulatorProcess:
    """The Stripe emulator in a process of its own (``revenue-engine emulator``), so its CPU is
    not the server's."""

    def __init__(self, log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (log_dir / f"emulator-{name}.log").open("w")
        path = os.pathsep.join(x for x in (str(ROOT), os.environ.get("PYTHONPATH")) if x)
        env = {**os.environ, "PYTHONPATH": path, "LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "revenue_engine", "emulator", "--port", str(self.port)]
        self.process = subprocess.Popen(  # noqa: S603 - our own command
            command, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )

    async def ready(self, within: float = 30) -> None:
        import httpx

        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"emulator exited: see {self.log.name}")
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(f"{self.url}/v1/customers", headers=self.auth)
                    return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"emulator not ready within {within:.0f} s")

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {EMULATOR_KEY}"}

    async def objects(self, customer_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The customer's subscription and its latest invoice, as Stripe sends them."""
        import httpx

        async with httpx.AsyncClient(base_url=self.url, headers=self.auth, timeout=10) as client:
            listed = await client.get("/v1/subscriptions", params={"customer": customer_id})
            subscription: dict[str, Any] = listed.json()["data"][0]
            invoice_id = subscription["latest_invoice"]
            invoice: dict[str, Any] = (await client.get(f"/v1/invoices/{invoice_id}")).json()
        return subscription, invoice

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def webhook_outcome(response: Any) -> str:
    try:
        return str(response.json().get("status", response.status_code))
    except ValueError:
        return str(response.status_code)


class BenchFailure(AssertionError):
    """The engine gave an answer it must not give: the run stops here, loudly."""


@dataclass
class UsageBatch:
    """One ``POST /v1/usage`` body and what each of its events must be answered."""

    events: list[dict[str, Any]]
    expected: list[str]  # "accepted" | "duplicate", in input order
    fresh: list[dict[str, Any]]  # the events whose first occurrence counts

    @property
    def accepted(self) -> int:
        return self.expected.count("accepted")

    @property
    def duplicates(self) -> int:
        return self.expected.count("duplicate")


class UsageBatches:
    """Batches of usage events of one organization's metered feature, quantities 1-3. About a
    tenth of each batch are duplicates: half of them ids that batches answered before this one
    was made had accepted (so what each event must be answered is known whatever order
    concurrent senders arrive in), the rest ids repeated inside the batch (the first one
    counts), in shuffled positions. ``check`` compares an answer with that, event by event,
    and keeps the units the counter must then hold."""

    def __init__(
        self,
        organization_id: str,
        feature: str = USAGE_FEATURE,
        *,
        run: str | None = None,
        duplicate_share: float = 0.1,
    ) -> None:
        self.org = organization_id
        self.feature = feature
        self.run = run or uuid.uuid4().hex[:8]
        self.duplicate_share = duplicate_share
        self.sequence = itertools.count()
        self.random = random.Random(self.run)  # noqa: S311 - a shuffle, not a secret
        self.answered: list[dict[str, Any]] = []  # events accepted by answered batches
        self.units = 0  # what the counter must hold: the accepted events' quantities
        self.sent: Counter[str] = Counter()  # events, accepted, duplicates of answered batches
        self.given_up: list[UsageBatch] = []  # still answered 503 after every retry

    def event(self) -> dict[str, Any]:
        n = next(self.sequence)
        return {
            "id": f"{self.run}-{n:08d}",
            "organization_id": self.org,
            "feature": self.feature,
            "quantity": 1 + n % 3,
        }

    def make(self, size: int) -> UsageBatch:
        duplicates = round(size * self.duplicate_share)
        earlier = min(duplicates // 2, len(self.answered))
        fresh = [self.event() for _ in range(size - duplicates)]
        again = [dict(e) for e in self.random.sample(self.answered, earlier)]
        inside = [dict(self.random.choice(fresh)) for _ in range(duplicates - earlier)]
        events = fresh + again + inside
        self.random.shuffle(events)
        stored = {e["id"] for e in again}
        seen: set[str] = set()
        expected = []
        for event in events:
            if event["id"] in stored or event["id"] in seen:
                expected.append("duplicate")
            else:
                seen.add(event["id"])
                expected.append("accepted")
        return UsageBatch(events, expected, fresh)

    def check(self, batch: UsageBatch, response: Any, *, retried: bool = False) -> None:
        """``BenchFailure`` unless ``response`` answers each event of ``batch`` as expected.
        A retried batch (after a 503) may find events its earlier attempt stored: those are
        answered ``duplicate`` ("already recorded") instead of ``accepted``, and counted by
        the engine's completion of interrupted batches."""
        if response.status_code != 200:
            raise BenchFailure(
                f"POST /v1/usage answered {response.status_code}: {response.content[:300]!r}"
            )
        answer = response.json()
        ids = [r.get("id") for r in answer["results"]]
        if ids != [e["id"] for e in batch.events]:
            raise BenchFailure("POST /v1/usage did not answer the events in input order")
        wrong = [
            (r["id"], want, r["status"], r.get("reason"))
            for r, want in zip(answer["results"], batch.expected, strict=True)
            if r["status"] != want
            and not (retried and want == "accepted" and r["status"] == "duplicate")
        ]
        counts = (answer["accepted"], answer["duplicates"], answer["rejected"])
        if retried:
            right = counts[0] <= batch.accepted and counts[0] + counts[1] == len(batch.events)
        else:
            right = counts == (batch.accepted, batch.duplicates, 0)
        if wrong or not right or counts[2]:
            raise BenchFailure(
                f"a batch of {len(batch.events)} events ({batch.accepted} new, "
                f"{batch.duplicates} duplicates{', retried' if retried else ''}) was answered "
                f"accepted={counts[0]} duplicates={counts[1]} rejected={counts[2]}; "
                f"first wrong (id, expected, answered, reason): {wrong[:3]}"
            )
        self.answered.extend(batch.fresh)
        self.units += sum(e["quantity"] for e in batch.fresh)
        self.sent.update(events=len(batch.events), accepted=counts[0], duplicates=counts[1])

    def sender(self, size: int) -> Request:
        """A request for ``load``: post a new batch of ``size`` events and check its answer.
        A 503 (the store did not answer in time) is retried after its ``Retry-After``, as
        the route asks; the answer returned is the last one."""
        headers = {"authorization": f"Bearer {USAGE_KEY}"}

        async def send(pool: Pool, i: int) -> Response:
            batch = self.make(size)
            for attempt in range(USAGE_RETRIES + 1):
                response = await pool.request(
                    "POST", "/v1/usage", json_body={"events": batch.events}, headers=headers
                )
                if response.status_code != 503 or attempt == USAGE_RETRIES:
                    break
                self.sent["retried_after_503"] += 1
                await asyncio.sleep(min(5.0, float(response.headers.get("retry-after") or 1)))
            if response.status_code == 503:
                self.given_up.append(batch)  # its events' fate is read from the store later
            else:
                self.check(batch, response, retried=attempt > 0)
            return response

        return send

    def settle_given_up(self, held: set[str]) -> None:
        """The batches given up on: their events the store ``held`` count (the engine
        completes a batch interrupted after its insert), the rest never happened."""
        for batch in self.given_up:
            kept = [e for e in batch.fresh if e["id"] in held]
            self.answered.extend(kept)
            self.units += sum(e["quantity"] for e in kept)
            self.sent.update(given_up=len(batch.events), stored_unanswered=len(kept))
        self.given_up.clear()


# --- the server process ------------------------------------------------------------------


def database_name() -> str:
    return f"bench_{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Flavour:
    """How uvicorn serves: the default asyncio loop + h11, or uvloop + httptools (the extras
    of ``uvicorn[standard]``, not a dependency of the engine)."""

    loop: str = "asyncio"
    http: str = "h11"

    @property
    def label(self) -> str:
        return f"{self.loop} + {self.http}"


DEFAULT = Flavour()
STANDARD = Flavour("uvloop", "httptools")


class Server:
    def __init__(
        self,
        store: str,
        mongodb_uri: str | None,
        log_dir: Path,
        name: str,
        *,
        seed: int = 0,
        flavour: Flavour = DEFAULT,
        database: str | None = None,
        stripe_api_base: str | None = None,
        seed_linked: bool = True,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "STRIPE_"))}
        env.update(
            {
                "ENVIRONMENT": "development",
                "AUTH_DEV_HEADERS": "false",
                "AUTH_JWT_SECRET": JWT_SECRET,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "USAGE_API_KEYS": USAGE_KEY,
                "PUBLIC_BASE_URL": self.base,
                "MONGODB_DATABASE": database or database_name(),
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": os.pathsep.join(
                    x for x in (str(ROOT), os.environ.get("PYTHONPATH")) if x
                ),
            }
        )
        if mongodb_uri:
            env["MONGODB_URI"] = mongodb_uri
        if stripe_api_base:  # a Stripe of its own (another process), not the embedded emulator
            env.update(STRIPE_API_BASE=stripe_api_base, STRIPE_SECRET_KEY=EMULATOR_KEY)
        self.mongodb_uri = mongodb_uri
        self.database = env["MONGODB_DATABASE"]
        self.settings = {k: env[k] for k in ("ENVIRONMENT", "LOG_LEVEL") if k in env}
        self.log = (log_dir / f"server-{store}-{name}.log").open("w")
        command = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(self.port)]
        command += ["--loop", flavour.loop, "--http", flavour.http]
        if seed:
            command += ["--seed-ledger", str(seed)]
            if not seed_linked:
                command.append("--seed-unlinked")
        self.process = subprocess.Popen(  # noqa: S603 - our own script
            command,
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, client: Any, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited ({self.process.returncode}): see {self.log.name}"
                )
            with contextlib.suppress(Exception):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"server not ready within {within:.0f} s")

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self) -> dict[str, float]:
        """Current and peak resident set size of the server process, in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, flags=re.M))
        return {"rss_mb": int(values["VmRSS"]) / 1024, "peak_rss_mb": int(values["VmHWM"]) / 1024}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextlib.asynccontextmanager
async def running(
    store: str,
    uri: str | None,
    log_dir: Path,
    name: str,
    *,
    seed: int = 0,
    ready_within: float = 60,
    flavour: Flavour = DEFAULT,
    database: str | None = None,
    stripe_api_base: str | None = None,
    seed_linked: bool = True,
) -> Any:
    import httpx

    server = Server(
        store,
        uri,
        log_dir,
        name,
        seed=seed,
        flavour=flavour,
        database=database,
        stripe_api_base=stripe_api_base,
        seed_linked=seed_linked,
    )
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    client = httpx.AsyncClient(base_url=server.base, timeout=60, limits=limits)
    try:
        await server.ready(client, ready_within)
        yield server, client
    finally:
        await client.aclose()
        server.stop()


# --- the scenarios -----------------------------------------------------------------------


async def subscribed_org(server: Server, client: Any, overages: Sequence[str] = ()) -> str:
    """An organization with an active monthly Pro subscription (with the add-ons ``overages``:
    ``api_calls`` is metered overage on), made through the API and the emulator."""
    org, _ = await subscribe(server, client, overages)
    return org


async def subscribe(
    server: Server, client: Any, overages: Sequence[str] = (), stripe_base: str | None = None
) -> tuple[str, str]:
    """``subscribed_org``'s organization and its Stripe customer id; ``stripe_base``: the
    Stripe the server talks to, when not its embedded emulator."""
    import stripe

    org = f"org_bench_{uuid.uuid4().hex[:6]}"
    auth = {"authorization": f"Bearer {token(org)}"}
    made = await client.post(
        "/graphql",
        json={
            "query": "mutation { createCustomer { ... on CustomerPayload { customer { id } } } }"
        },
        headers=auth,
    )
    customer_id = made.json()["data"]["createCustomer"]["customer"]["id"]
    base = stripe_base or server.base + "/stripe-emulator"
    http = stripe.HTTPXClient(timeout=10)
    sdk = stripe.StripeClient(
        EMULATOR_KEY if stripe_base else "sk_test_emulator",
        stripe_version=API_VERSION,
        http_client=http,
        base_addresses={"api": base, "connect": base, "files": base, "meter_events": base},
    )
    pm = await sdk.v1.payment_methods.attach_async("pm_card_visa", params={"customer": customer_id})
    await sdk.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    await http.close_async()  # type: ignore[no-untyped-call]
    created = await client.post(
        "/graphql",
        json={
            "query": "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) "
            "{ __typename } }",
            "variables": {
                "i": {"planUid": "pro", "billingInterval": "MONTH", "overages": list(overages)}
            },
        },
        headers=auth,
    )
    if created.json()["data"]["createSubscription"]["__typename"] != "SubscriptionPayload":
        raise RuntimeError(f"the bench subscription was not created: {created.text}")
    return org, customer_id


async def read_requests(server: Server, client: Any) -> dict[str, Request]:
    """The four reads, for an organization subscribed on ``server``."""
    org = await subscribed_org(server, client)
    auth = {"authorization": f"Bearer {token(org)}"}

    async def gql_plans(c: Pool, i: int) -> Response:
        return await c.request("POST", "/graphql", json_body={"query": PLANS_QUERY})

    async def gql_status(c: Pool, i: int) -> Response:
        return await c.request("POST", "/graphql", json_body={"query": STATUS_QUERY}, headers=auth)

    async def bare_plans(c: Pool, i: int) -> Response:
        return await c.request("GET", "/bench/plans")

    async def bare_status(c: Pool, i: int) -> Response:
        return await c.request("GET", "/bench/subscription-status", headers=auth)

    pool = Pool(server.port)
    check = (await gql_status(pool, 0)).json()["data"]["subscriptionStatus"]
    pool.close()
    if not (check["isActive"] and check["entitlements"]):
        raise RuntimeError(f"the bench subscription is not active with entitlements: {check}")
    return {
        "plans": gql_plans,
        "plans (bare route)": bare_plans,
        "subscriptionStatus": gql_status,
        "subscriptionStatus (bare route)": bare_status,
    }


async def engine_time(
    pool: Pool, request: Request, quick: bool, cap: float | None = None
) -> dict[str, Any]:
    await load(pool, request, concurrency=1, total=50, seconds=cap)  # warm the caches
    total = 300 if quick else 1000
    return (await load(pool, request, concurrency=1, total=total, seconds=cap)).summary()


async def reads_16(pool: Pool, request: Request, quick: bool) -> dict[str, Any]:
    return (await load(pool, request, concurrency=16, seconds=3.0 if quick else 6.0)).summary()


def add_ratios(reads: dict[str, Any]) -> None:
    for gql, bare in (
        ("plans", "plans (bare route)"),
        ("subscriptionStatus", "subscriptionStatus (bare route)"),
    ):
        reads[f"{gql} / bare"] = round(reads[gql]["per_second"] / reads[bare]["per_second"], 2)


async def api_scenarios(
    server: Server, client: Any, quick: bool, progress: Callable[[str], None]
) -> dict[str, Any]:
    reads = await read_requests(server, client)
    pool = Pool(server.port)
    result: dict[str, Any] = {"engine_time": {}, "reads_16": {}}
    for name, request in reads.items():
        progress(f"engine time: {name}")
        result["engine_time"][name] = await engine_time(pool, request, quick)
    for name, request in reads.items():
        progress(f"reads at 16 connections: {name}")
        result["reads_16"][name] = await reads_16(pool, request, quick)
    add_ratios(result["reads_16"])

    run = uuid.uuid4().hex[:6]

    async def checkout(c: Pool, i: int) -> Response:
        headers = {"authorization": f"Bearer {token(f'org_co_{run}_{i}')}"}
        variables = {"input": {"planUid": "pro", "billingInterval": "MONTH"}}
        return await c.request(
            "POST",
            "/graphql",
            json_body={"query": CHECKOUT, "variables": variables},
            headers=headers,
        )

    def checkout_outcome(response: Any) -> str:
        return str(response.json()["data"]["createCheckoutSession"]["__typename"])

    progress("checkout mutation")
    await load(pool, checkout, concurrency=1, total=5, outcome=checkout_outcome)  # prices made once
    result["checkout_8"] = (
        await load(
            pool,
            checkout,
            concurrency=8,
            total=100 if quick else 300,
            outcome=checkout_outcome,
        )
    ).summary()
    pool.close()
    result["memory"] = server.memory()
    return result


async def flavour_comparison(
    flavours: list[Flavour], log_dir: Path, name: str, quick: bool, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Engine time and the reads at 16 connections on the in-memory store, one server per
    flavour, all running at once and measured phase by phase in turn (the order reversed
    every other phase), so drifting load on the machine falls on each alike."""
    async with contextlib.AsyncExitStack() as stack:
        servers = []
        for flavour in flavours:
            server, client = await stack.enter_async_context(
                running("memory", None, log_dir, f"{name}-{flavour.loop}", flavour=flavour)
            )
            servers.append((flavour, server, await read_requests(server, client)))
        results: dict[str, Any] = {f.label: {"engine_time": {}, "reads_16": {}} for f in flavours}
        phases = [("engine_time", engine_time), ("reads_16", reads_16)]
        turn = 0
        for kind, measure in phases:
            for phase in servers[0][2]:
                order = servers if turn % 2 == 0 else servers[::-1]
                turn += 1
                for flavour, server, reads in order:
                    progress(f"{kind}: {phase} under {flavour.label}")
                    pool = Pool(server.port)
                    results[flavour.label][kind][phase] = await measure(pool, reads[phase], quick)
                    pool.close()
        for flavour, server, _ in servers:
            add_ratios(results[flavour.label]["reads_16"])
            results[flavour.label]["memory"] = server.memory()
    return results


async def webhook_scenarios(
    server: Server, first_mark: int, cap: float, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Engine time per event on a fresh ledger; then the ledger grows at 32 senders up to
    ``first_mark`` events, and a burst of 1,000 events (100 connections at once) follows."""
    events = Events()
    pool = Pool(server.port)
    sent = 0
    result: dict[str, Any] = {"ledger_growth_32": []}

    async def send(count: int, concurrency: int, seconds: float | None = None) -> Sample:
        nonlocal sent
        sample = await load(
            pool,
            events.sender(sent),
            concurrency=concurrency,
            total=count,
            seconds=seconds,
            outcome=webhook_outcome,
        )
        sent += len(sample.latencies)
        return sample

    progress("engine time: webhook event")
    await send(100, 1)  # warm up
    result["engine_time"] = (await send(400, 1)).summary()
    progress(f"webhooks at 32 senders up to a ledger of {first_mark}")
    before, wanted = sent, first_mark - sent
    batch = await send(wanted, 32, cap)
    summary = {**batch.summary(), "ledger_size_before": before, "ledger_size": sent}
    summary["reached"] = "grown by the senders"
    result["ledger_growth_32"].append(summary)
    if len(batch.latencies) < wanted:
        summary["stopped_by_time_cap"] = True
    else:
        progress("burst of 1,000 events")
        before = sent
        burst = (await send(1000, 100)).summary()
        burst["ledger_size_before"] = before
        result["burst_1000"] = burst
    pool.close()
    result["ledger_size"] = sent
    result["memory"] = server.memory()
    return result


async def webhooks_at_mark(
    server: Server, mark: int, new_events: int, cap: float, progress: Callable[[str], None]
) -> dict[str, Any]:
    """On a server whose ledger was seeded with ``mark`` events: 20 events one at a time (the
    warm-up, and the store's cost per event at this size without queueing), then
    ``new_events`` more at 32 senders, within the time cap."""
    events = Events()
    pool = Pool(server.port)
    progress(f"webhooks at 32 senders on a seeded ledger of {mark}")
    warm = await load(pool, events.sender(0), concurrency=1, total=20, outcome=webhook_outcome)
    before = mark + len(warm.latencies)
    batch = await load(
        pool,
        events.sender(len(warm.latencies)),
        concurrency=32,
        total=new_events,
        seconds=cap,
        outcome=webhook_outcome,
    )
    pool.close()
    summary = batch.summary()
    summary.update(
        ledger_size_before=before,
        ledger_size=before + len(batch.latencies),
        reached=f"seeded with {mark} events",
        one_at_a_time=warm.summary(),
        memory=server.memory(),
    )
    if len(batch.latencies) < new_events:
        summary["stopped_by_time_cap"] = True
    return summary


async def webhook_marks(
    store: str,
    uri: str | None,
    log_dir: Path,
    name: str,
    sizes: list[int],
    new_events: int,
    cap: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The webhook phases: the first mark grown over HTTP (with the burst), each later mark on
    a fresh server whose ledger is seeded to it (growing it over HTTP would take the store's
    degrading rate far past any cap), then ``new_events`` measured there."""
    async with running(store, uri, log_dir, f"{name}-{sizes[0]}") as (server, _):
        result = await webhook_scenarios(server, sizes[0], cap, progress)
    for mark in sizes[1:]:
        progress(f"seeding a ledger of {mark}")
        started = time.perf_counter()
        database = database_name()
        try:
            if uri is None:  # in the server process, where the in-memory store lives
                seeding: dict[str, Any] = {"seed": mark, "ready_within": 60 + cap}
            else:  # the store is shared: seeded from here, before the engine starts on it
                await asyncio.wait_for(seed_store(uri, database, mark), 60 + cap)
                seeding = {}
            async with running(
                store, uri, log_dir, f"{name}-{mark}", database=database, **seeding
            ) as (server, _):
                seeded_in = time.perf_counter() - started
                summary = await webhooks_at_mark(server, mark, new_events, cap, progress)
        except (TimeoutError, RuntimeError) as exc:  # not ready within the cap, or exited
            reason = str(exc) or f"not seeded within {60 + cap:.0f} s"
            result["ledger_growth_32"].append(
                {"ledger_size_before": mark, "not_reached": f"seeding: {reason}"}
            )
            break
        summary["seeded_and_started_s"] = round(seeded_in, 1)
        summary["seeded_by"] = "the server process" if uri is None else "the driver"
        result["ledger_growth_32"].append(summary)
        result["ledger_size"] = summary["ledger_size"]
    result["memory"]["peak_rss_mb"] = max(
        [
            result["memory"]["peak_rss_mb"],
            *(s.get("memory", {}).get("peak_rss_mb", 0) for s in result["ledger_growth_32"]),
        ]
    )
    return result


async def rereads_on(
    server: Server, client: Any, emulator: EmulatorProcess, events_per_mark: int, cap: float
) -> dict[str, Any]:
    """On a started server: a subscription of its own, 20 warm-up events, then
    ``events_per_mark`` re-reading events one at a time, with the server's CPU around them."""
    _, customer_id = await subscribe(server, client, stripe_base=emulator.url)
    subscription, invoice = await emulator.objects(customer_id)
    events = RereadEvents(subscription, invoice)
    pool = Pool(server.port)
    await load(pool, events.sender(0), concurrency=1, total=20, outcome=webhook_outcome)
    cpu = server.cpu_seconds()
    sample = await load(
        pool,
        events.sender(20),
        concurrency=1,
        total=events_per_mark,
        seconds=cap,
        outcome=webhook_outcome,
    )
    cpu = server.cpu_seconds() - cpu
    pool.close()
    if set(sample.outcomes) != {"processed"}:
        raise BenchFailure(f"re-reading events not all processed: {dict(sample.outcomes)}")
    summary = sample.summary()
    summary["cpu_ms_per_event"] = round(1000 * cpu / max(len(sample.latencies), 1), 2)
    summary["memory"] = server.memory()
    return summary


async def reread_scenarios(
    store: str,
    uri: str | None,
    log_dir: Path,
    name: str,
    sizes: list[int],
    events_per_mark: int,
    cap: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Re-reading webhook events on a fresh ledger and on ledgers seeded to each mark, Stripe
    being the emulator in another process."""
    emulator = EmulatorProcess(log_dir, name)
    result: dict[str, Any] = {"stripe": "the emulator, in a process of its own", "marks": []}
    try:
        await emulator.ready()
        for mark in [0, *sizes]:
            progress(f"re-reading webhook events on a ledger of {mark}")
            database = database_name()
            seeding: dict[str, Any] = {}
            if mark and uri is None:
                seeding = {"seed": mark, "ready_within": 60 + cap, "seed_linked": False}
            elif mark:
                seeded = seed_store(uri or "", database, mark, link=False)
                try:
                    await asyncio.wait_for(seeded, 60 + cap)
                except TimeoutError:
                    result["marks"].append({"ledger_size": mark, "not_reached": "seeding"})
                    break
            async with running(
                store,
                uri,
                log_dir,
                f"{name}-{mark}",
                database=database,
                stripe_api_base=emulator.url,
                **seeding,
            ) as (server, client):
                summary = await rereads_on(server, client, emulator, events_per_mark, cap)
            summary["ledger_size"] = mark
            result["marks"].append(summary)
    finally:
        emulator.stop()
    return result


USAGE_BATCH_SIZES = (100, 1000)


def batches_per_phase(size: int, quick: bool) -> int:
    """Batches one ingestion phase sends (fewer of the larger size: the same order of events)."""
    if size >= 1000:
        return 10 if quick else 30
    return 60 if quick else 200


def ingestion_summary(sample: Sample, size: int) -> dict[str, Any]:
    """A phase's figures per batch (``summary``) and per event: engine (``app``) and database
    time divided by the events in the batch, and events/s end to end."""
    out = sample.summary()
    out["batch_size"] = size
    out["events"] = size * sample.statuses[200]  # answered: a batch given up on is not
    out["events_per_second"] = round(out["events"] / sample.wall) if sample.wall else None
    for part in ("app", "db"):
        per_event = [t[part] / size * 1000 for t in sample.timings if part in t]  # µs
        if per_event:
            out[f"{part}_us_per_event_p50"] = round(percentile(per_event, 50), 1)
            out[f"{part}_us_per_event_p99"] = round(percentile(per_event, 99), 1)
    return out


async def check_usage(
    pool: Pool, org: str, batches: UsageBatches, *, within: float = 0.0
) -> dict[str, Any]:
    """The ``usage`` query's row of the bench's feature: overage on, and exactly the units
    the accepted events carry — at once, or (``within`` seconds, after retried batches)
    once the engine has completed interrupted batches. Never more: that would be a
    duplicate counted."""
    auth = {"authorization": f"Bearer {token(org)}"}
    deadline = time.monotonic() + within
    while True:
        response = await pool.request(
            "POST", "/graphql", json_body={"query": USAGE_QUERY}, headers=auth
        )
        data = response.json()
        usage = (data.get("data") or {}).get("usage")
        rows = {f["feature"]: f for f in (usage or {}).get("features", [])}
        row = rows.get(batches.feature)
        right = row is not None and row["overageEnabled"]
        if right and row is not None and row["used"] == batches.units:
            return dict(row)
        if not right or row is None or row["used"] > batches.units:
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(2.0)
    raise BenchFailure(
        f"usage of {batches.feature}: expected {batches.units} units with overage on, "
        f"answered {row if row is not None else data}"
    )


async def held_ids(server: Server, batches: UsageBatches) -> set[str]:
    """Which events of the batches given up on the server's store holds, read from the
    driver (a MongoDB server is shared; the in-memory store lives in the server process)."""
    if server.mongodb_uri is None:
        raise BenchFailure("a usage batch was still answered 503 on the in-memory store")
    import pymongo
    from pymongo.collection import Collection

    ids = [e["id"] for batch in batches.given_up for e in batch.fresh]

    def read() -> set[str]:
        client: pymongo.MongoClient[dict[str, Any]]
        with pymongo.MongoClient(server.mongodb_uri, timeoutMS=60_000) as client:
            query = {"organization_id": batches.org, "event_id": {"$in": ids}}
            events: Collection[dict[str, Any]] = client[server.database]["usage_events"]
            found = list(events.find(query, {"event_id": 1}))
            return {str(row["event_id"]) for row in found}

    return await asyncio.to_thread(read)


async def ingestion(
    server: Server,
    client: Any,
    size: int,
    concurrency: int,
    quick: bool,
    cap: float,
    progress: Callable[[str], None],
    *,
    after_warm_up: Callable[[Pool, str, UsageBatches], Awaitable[None]] | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """Batches of ``size`` events from ``concurrency`` senders for a Pro subscription with
    API-call overage on (nothing is refused), after a warm-up, within the time cap (no batch
    starts after it; ``total`` batches, default ``batches_per_phase``); every answer checked
    event by event, and the counter at the end against the units accepted."""
    org = await subscribed_org(server, client, overages=(USAGE_FEATURE,))
    batches = UsageBatches(org)
    pool = Pool(server.port)
    await check_usage(pool, org, batches)
    await load(pool, batches.sender(size), concurrency=1, total=3, seconds=cap)  # warm up
    if after_warm_up is not None:
        await after_warm_up(pool, org, batches)
    progress(f"usage batches of {size}, {concurrency} sender(s)")
    stored = batches.sent["accepted"]
    total = total or batches_per_phase(size, quick)
    sample = await load(
        pool,
        batches.sender(size),
        concurrency=concurrency,
        total=total,
        seconds=cap,
        stop=lambda: bool(batches.given_up),
    )
    summary = ingestion_summary(sample, size)
    summary["senders"] = concurrency
    summary["events_stored_before"] = stored
    gave_up = bool(batches.given_up)
    if gave_up:
        summary["stopped_by_store"] = f"a batch still answered 503 after {USAGE_RETRIES} retries"
        batches.settle_given_up(await held_ids(server, batches))
    summary["events_stored_after"] = batches.sent["accepted"] + batches.sent["stored_unanswered"]
    if not gave_up and summary["requests"] < total:
        summary["stopped_by_time_cap"] = True
    retried = gave_up or batches.sent["retried_after_503"] > 0
    waited = time.perf_counter()
    row = await check_usage(pool, org, batches, within=USAGE_SETTLE_S if retried else 0.0)
    if retried:
        summary["counter_settled_after_s"] = round(time.perf_counter() - waited, 1)
    pool.close()
    summary["answers"] = dict(batches.sent)  # warm-up included
    summary["counter_used"] = row["used"]
    summary["counter_expected"] = batches.units
    summary["memory"] = server.memory()
    return summary


async def usage_query(
    pool: Pool,
    org: str,
    batches: UsageBatches,
    quick: bool,
    cap: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """``usage`` (every query limit on) and the bare route doing the same reads: engine time
    one request at a time, then req/s at 16 connections."""
    auth = {"authorization": f"Bearer {token(org)}"}

    async def gql_usage(c: Pool, i: int) -> Response:
        return await c.request("POST", "/graphql", json_body={"query": USAGE_QUERY}, headers=auth)

    async def bare_usage(c: Pool, i: int) -> Response:
        return await c.request("GET", "/bench/usage", headers=auth)

    await check_usage(pool, org, batches)
    requests = {"usage": gql_usage, "usage (bare route)": bare_usage}
    result: dict[str, Any] = {"engine_time": {}, "reads_16": {}}
    for name, request in requests.items():
        progress(f"engine time: {name}")
        result["engine_time"][name] = await engine_time(pool, request, quick, cap)
    for name, request in requests.items():
        progress(f"reads at 16 connections: {name}")
        sample = await load(pool, request, concurrency=16, seconds=min(cap, 3.0 if quick else 6.0))
        result["reads_16"][name] = sample.summary()
    fast, bare = result["reads_16"]["usage"], result["reads_16"]["usage (bare route)"]
    result["reads_16"]["usage / bare"] = round(fast["per_second"] / bare["per_second"], 2)
    return result


SENDERS = (("one_sender", 1), ("four_senders", 4))


async def usage_scenarios(
    store: str,
    uri: str | None,
    log_dir: Path,
    name: str,
    quick: bool,
    cap: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Ingestion for each batch size and number of senders, each on a fresh server (an empty
    store: the in-memory store's cost per event grows with the events it holds); the
    ``usage`` query on the first one, after its warm-up has counted events."""
    result: dict[str, Any] = {
        "targets": {
            "engine_us_per_event_in_1000_batch": INGEST_TARGET_US,
            "usage_query_engine_p50_ms": USAGE_QUERY_TARGET_MS,
        },
        "ingestion": {},
    }

    async def measure_query(pool: Pool, org: str, batches: UsageBatches) -> None:
        result["query"] = await usage_query(pool, org, batches, quick, cap, progress)

    for size in USAGE_BATCH_SIZES:
        phases = result["ingestion"][str(size)] = {}
        for label, concurrency in SENDERS:
            async with running(store, uri, log_dir, f"{name}-{size}x{concurrency}") as (
                server,
                client,
            ):
                phases[label] = await ingestion(
                    server,
                    client,
                    size,
                    concurrency,
                    quick,
                    cap,
                    progress,
                    after_warm_up=None if "query" in result else measure_query,
                )
    return result


async def validation_cache(n: int) -> dict[str, Any]:
    """Executing ``plans`` in process: limit rules built once vs. built per request (the
    pattern strawberry issue #4635 describes: every request is a validation-cache miss)."""

    from revenue_engine import schema as schema_module
    from revenue_engine.db import connect
    from revenue_engine.schema.pipeline import PipelineRunner
    from revenue_engine.schema.query_cost import QueryCostRule
    from revenue_engine.services.plans_file import load_plans_file
    from revenue_engine.settings import DEMO_PLANS_FILE, Settings

    database = await connect(Settings(_env_file=None, mongodb_database="bench_validation"))
    await load_plans_file(DEMO_PLANS_FILE)
    prebuilt = schema_module.build_schema()

    class PerRequest(PipelineRunner):
        """The cost rule as a new class each request, as a limiter built per request makes."""

        def validation(self) -> Any:
            context = self.execution_context
            fresh = type("QueryCostRule", (QueryCostRule,), {})
            context.validation_rules = (fresh, *context.validation_rules[1:])
            return super().validation()

    def per_request(context: Any, extensions: Any) -> Any:
        return PerRequest(context, extensions)

    rebuilt = schema_module.build_schema()
    vars(rebuilt)["create_extensions_runner"] = per_request  # this instance only

    async def time_it(schema: Any) -> float:
        for _ in range(50):
            await schema.execute(PLANS_QUERY)
        started = time.perf_counter()
        for _ in range(n):
            result = await schema.execute(PLANS_QUERY)
            if result.errors:
                raise RuntimeError(f"the plans query failed: {result.errors}")
        return (time.perf_counter() - started) / n * 1e6

    out = {
        "prebuilt_rules_us": round(await time_it(prebuilt), 1),
        "rules_per_request_us": round(await time_it(rebuilt), 1),
    }
    database.close()
    return out


# --- reporting ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        line = next(
            x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
        )
        memory = f"{int(line.split()[1]) // 1024} MB"
    packages = [
        "strawberry-graphql",
        "graphql-core",
        "starlette",
        "uvicorn",
        "beanie",
        "motor",
        "pymongo",
        "mongomock-motor",
        "stripe",
        "httpx",
        "pydantic",
    ]
    versions = {}
    for name in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    for name in ("uvloop", "httptools"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed (asyncio loop, h11)"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "commit": commit or None,
        "versions": versions,
    }


def fmt(value: Any, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def engine_rows(engine: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    for name, s in engine.items():
        if s:
            yield (
                f"engine time: {name}",
                f"app p50 {fmt(s.get('app_p50_ms'), ' ms')}",
                f"app p99 {fmt(s.get('app_p99_ms'), ' ms')}",
                f"db p50 {fmt(s.get('db_p50_ms'), ' ms')}",
                f"client p50 {fmt(s['p50_ms'], ' ms')}",
            )


def read_rows(api: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    for name, s in api.get("reads_16", {}).items():
        if isinstance(s, dict):
            yield (
                f"x16 {name}",
                f"{s['per_second']}/s",
                f"p50 {s['p50_ms']} ms",
                f"p99 {s['p99_ms']} ms",
                f"driver cpu {s['driver_cpu_pct']}%",
            )
        else:
            yield (f"x16 {name} (req/s ratio)", f"{s}", "", "", "")
    if api.get("checkout_8"):
        s = api["checkout_8"]
        yield (
            "checkout mutation x8",
            f"{s['per_second']}/s",
            f"p50 {s['p50_ms']} ms",
            f"p99 {s['p99_ms']} ms",
            f"stripe p50 {s.get('stripe_p50_ms')} ms",
        )


def webhook_rows(hooks: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    for number, s in enumerate(hooks.get("ledger_growth_32", [])):
        if number == 1:
            yield from burst_rows(hooks)
        if "not_reached" in s:
            yield (
                f"webhooks x32 at ledger {s['ledger_size_before']}",
                s["not_reached"],
                "",
                "",
                "",
            )
            continue
        how = " (seeded)" if s["reached"].startswith("seeded") else ""
        cap = ", stopped by the time cap" if s.get("stopped_by_time_cap") else ""
        yield (
            f"webhooks x32, ledger {s['ledger_size_before']} -> {s['ledger_size']}{how}",
            f"{s['per_second']}/s",
            f"p50 {s['p50_ms']} ms",
            f"p99 {s['p99_ms']} ms",
            f"non-2xx {s['non_2xx']}, db mean {s.get('db_mean_ms')} ms{cap}",
        )
        if "one_at_a_time" in s:
            alone = s["one_at_a_time"]
            yield (
                f"  one at a time at ledger {s['ledger_size_before'] - alone['requests']}",
                f"app p50 {alone.get('app_p50_ms')} ms",
                f"db p50 {alone.get('db_p50_ms')} ms",
                f"client p50 {alone['p50_ms']} ms",
                f"non-2xx {alone['non_2xx']}",
            )
    if len(hooks.get("ledger_growth_32", [])) < 2:
        yield from burst_rows(hooks)


def reread_rows(rereads: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    for s in rereads.get("marks", []):
        if "not_reached" in s:
            yield (f"re-reading webhook, ledger {s['ledger_size']}", s["not_reached"], "", "", "")
            continue
        yield (
            f"re-reading webhook, ledger {s['ledger_size']}",
            f"app p50 {s.get('app_p50_ms')} ms {target(s.get('app_p50_ms'), REREAD_TARGET_MS)}",
            f"stripe p50 {s.get('stripe_p50_ms')} ms",
            f"db p50 {s.get('db_p50_ms')} ms",
            f"server CPU {s['cpu_ms_per_event']} ms/event, client p50 {s['p50_ms']} ms",
        )


def burst_rows(hooks: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    if hooks.get("burst_1000"):
        s = hooks["burst_1000"]
        yield (
            f"burst of 1,000 events x100 at ledger {s['ledger_size_before']}",
            f"{s['per_second']}/s",
            f"p50 {s['p50_ms']} ms",
            f"p99 {s['p99_ms']} ms",
            f"non-2xx {s['non_2xx']}",
        )


def target(value: Any, bound: float) -> str:
    if not isinstance(value, int | float):
        return "-"
    return "met" if value <= bound else f"missed ({value / bound:.1f}x)"


def usage_rows(usage: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    for size, phases in usage.get("ingestion", {}).items():
        one = phases.get("one_sender", {})
        us = one.get("app_us_per_event_p50")
        goal = f", target <= {INGEST_TARGET_US:.0f} us: {target(us, INGEST_TARGET_US)}"
        yield (
            f"ingest {size}/batch: engine time per event",
            f"p50 {fmt(us, ' us')}",
            f"p99 {fmt(one.get('app_us_per_event_p99'), ' us')}",
            f"db p50 {fmt(one.get('db_us_per_event_p50'), ' us')}",
            f"app p50 {fmt(one.get('app_p50_ms'), ' ms')}/batch" + (goal if size == "1000" else ""),
        )
        for label, _ in SENDERS:
            s = phases.get(label)
            if not s:
                continue
            cap = ", stopped by the time cap" if s.get("stopped_by_time_cap") else ""
            if s.get("stopped_by_store"):
                cap = f", stopped: {s['stopped_by_store']}"
            answers = s.get("answers", {})
            yield (
                f"ingest {size}/batch x{s['senders']}, events stored "
                f"{s['events_stored_before']} -> {s['events_stored_after']}",
                f"{fmt(s['events_per_second'])} events/s",
                f"p50 {s['p50_ms']} ms",
                f"p99 {s['p99_ms']} ms",
                f"{s['requests']} batches, db p50 {fmt(s.get('db_p50_ms'), ' ms')}{cap}",
            )
            yield (
                "  answers (warm-up included)",
                f"{answers.get('accepted', 0)} accepted",
                f"{answers.get('duplicates', 0)} duplicates",
                f"0 rejected, {answers.get('retried_after_503', 0)} retried after 503",
                f"counter {s.get('counter_used')} = {s.get('counter_expected')} units"
                + (
                    f" (after {s['counter_settled_after_s']} s)"
                    if "counter_settled_after_s" in s
                    else ""
                ),
            )
    query = usage.get("query")
    if query:
        engine = query.get("engine_time", {})
        p50 = engine.get("usage", {}).get("app_p50_ms")
        yield from engine_rows(engine)
        yield (
            "  usage query target",
            f"p50 <= {USAGE_QUERY_TARGET_MS} ms",
            target(p50, USAGE_QUERY_TARGET_MS),
            "",
            "",
        )
        yield from read_rows(query)


def rows(results: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    for store, data in results["stores"].items():
        api, hooks = data.get("api", {}), data.get("webhooks", {})
        yield (f"[{store}]", "", "", "", "")
        yield from engine_rows(
            {**api.get("engine_time", {}), "webhook event": hooks.get("engine_time", {})}
        )
        yield from webhook_rows(hooks)
        yield from reread_rows(data.get("rereads", {}))
        yield from read_rows(api)
        yield from usage_rows(data.get("usage", {}))
        ingested = data.get("usage", {}).get("ingestion", {}).values()
        rereads = data.get("rereads", {}).get("marks", [])
        parts = [api, hooks, *rereads, *(p for phases in ingested for p in phases.values())]
        peak = max((part.get("memory", {}).get("peak_rss_mb", 0) for part in parts), default=0)
        yield ("peak RSS (server)", f"{peak:.0f} MB", "", "", "")
        for label, other in data.get("flavours", {}).items():
            yield (f"[{store}, {label}: side by side]", "", "", "", "")
            yield from engine_rows(other.get("engine_time", {}))
            yield from read_rows(other)
    cache = results.get("validation_cache")
    if cache:
        yield (
            "plans in process",
            f"prebuilt rules {cache['prebuilt_rules_us']} us",
            f"per-request rules {cache['rules_per_request_us']} us",
            "",
            "",
        )


def print_table(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}")
    print(f"python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    print(f"settings: {results['settings']}\n")
    table = list(rows(results))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


# --- main ---------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    def progress(message: str) -> None:
        print(f"  … {message}", file=sys.stderr, flush=True)

    phases = set(args.only or PHASES)
    sizes = args.ledger_marks or ([1000, 5000] if args.quick else [1000, 5000, 20000])
    new_events = args.new_events or (100 if args.quick else 200)
    flavours = [DEFAULT]
    if args.uvloop:
        missing = [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m) is None]
        if missing:
            print(f"--uvloop: {', '.join(missing)} not installed: skipped", file=sys.stderr)
        else:
            flavours.append(STANDARD)
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "quick": args.quick,
            "server": "uvicorn, 1 worker, 127.0.0.1, asyncio loop + h11, LOG_LEVEL=WARNING, "
            "no access log",
            "also_measured": [f.label for f in flavours[1:]],
            "engine": "ENVIRONMENT=development, every query limit on, bearer JWT (HS256) auth",
            "load_average_at_start": list(os.getloadavg()),
            "ledger_sizes": sizes,
            "ledger_marks_after_the_first": f"seeded in the store, then {new_events} new events",
            "phases": sorted(phases),
            "phase_time_cap_s": args.cap,
            "usage": "POST /v1/usage with a USAGE_API_KEYS key; a Pro subscription with API-call "
            "overage on; batches of 100 and 1,000 events, ~10% duplicates (half from answered "
            "batches, half inside the batch); a fresh server per batch size",
            "driver": "one asyncio process on the same machine: httpx for setup, keep-alive "
            "HTTP/1.1 connections on asyncio streams for the load phases",
        },
        "stores": {},
    }
    stores: list[tuple[str, str | None]] = []
    wire = None
    if args.store in ("memory", "both"):
        stores.append(("memory", None))
    if args.store in ("wire", "both"):
        from tests.wire import start_wire_server

        wire = start_wire_server(os.environ.get("MONGODB_URI"))
        if wire is None:
            print("no wire backend (set MONGODB_URI or run npm install): skipped", file=sys.stderr)
        else:
            stores.append(("wire", wire.uri))
    loads: list[float] = []

    async def sample_load() -> None:
        while True:
            loads.append(os.getloadavg()[0])
            await asyncio.sleep(10)

    sampler = asyncio.create_task(sample_load())
    try:
        for store, uri in stores:
            print(f"store: {store}", file=sys.stderr)
            data: dict[str, Any] = {}
            if "api" in phases:
                async with running(store, uri, out_dir, stamp + "-api") as (server, client):
                    data["api"] = await api_scenarios(server, client, args.quick, progress)
                if store == "memory" and len(flavours) > 1:
                    data["flavours"] = await flavour_comparison(
                        flavours, out_dir, stamp + "-flavours", args.quick, progress
                    )
            if "webhooks" in phases:
                data["webhooks"] = await webhook_marks(
                    store, uri, out_dir, stamp + "-webhooks", sizes, new_events, args.cap, progress
                )
            if "rereads" in phases:
                data["rereads"] = await reread_scenarios(
                    store,
                    uri,
                    out_dir,
                    stamp + "-rereads",
                    sizes,
                    new_events,
                    args.cap,
                    progress,
                )
            if "usage" in phases:
                data["usage"] = await usage_scenarios(
                    store, uri, out_dir, stamp + "-usage", args.quick, args.cap, progress
                )
            results["stores"][store] = data
    finally:
        if wire is not None:
            wire.stop()
    sampler.cancel()
    results["settings"]["load_average_at_end"] = list(os.getloadavg())
    results["settings"]["load_average_1min_during"] = {
        "min": round(min(loads), 2),
        "mean": round(statistics.fmean(loads), 2),
        "max": round(max(loads), 2),
        "samples_every_s": 10,
    }
    if "validation" in phases:
        progress("validation cache (in process)")
        results["validation_cache"] = await validation_cache(300 if args.quick else 1000)
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return results


PHASES = ("api", "webhooks", "rereads", "usage", "validation")


def phase_list(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in names if x not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown phase {', '.join(unknown) or '(none)'}: choose of {', '.join(PHASES)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="(internal) run the server under test")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--seed-ledger", type=int, default=0)
    serve_parser.add_argument("--seed-unlinked", action="store_true")
    serve_parser.add_argument("--loop", default=DEFAULT.loop)
    serve_parser.add_argument("--http", default=DEFAULT.http)
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    parser.add_argument("--store", choices=["memory", "wire", "both"], default="both")
    parser.add_argument(
        "--cap", type=float, default=60.0, help="time cap of one ledger-growth phase, seconds"
    )
    parser.add_argument(
        "--ledger-marks",
        type=lambda text: [int(x) for x in text.split(",")],
        default=None,
        help="ledger sizes, comma-separated (default 1000,5000,20000; 1000,5000 with --quick)",
    )
    parser.add_argument(
        "--new-events",
        type=int,
        default=0,
        help="events sent at each seeded ledger mark (default 200; 100 with --quick)",
    )
    parser.add_argument(
        "--only",
        type=phase_list,
        default=None,
        help=f"phases to run, comma-separated, of {','.join(PHASES)} (default: all)",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="also run the GraphQL phases on the in-memory store under uvicorn's uvloop + "
        "httptools (needs uvicorn[standard])",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(
            args.port,
            seed=args.seed_ledger,
            link=not args.seed_unlinked,
            loop=args.loop,
            http=args.http,
        )
        return 0
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
