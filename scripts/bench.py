#!/usr/bin/env python3
"""The benchmark behind ``make bench`` (README "Performance").

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
* GraphQL reads (req/s, p50/p99) at 16 connections next to the bare routes, with the ratio;
* the checkout mutation against the in-process Stripe emulator (req/s, p99);
* the in-process validation cost of prebuilt limit rules vs. rules built per request;
* peak RSS of the server process.

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
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
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


# --- the server side ---------------------------------------------------------------------


def serve(port: int, *, seed: int = 0, loop: str = "asyncio", http: str = "h11") -> None:
    """Run the engine (settings from the environment) plus the framework-floor routes; with
    ``seed``, the ledger holds that many events before the server accepts connections."""
    import uvicorn
    from starlette.requests import Request as HTTPRequest
    from starlette.responses import JSONResponse

    from revenue_engine.app import create_app
    from revenue_engine.auth import Authenticator
    from revenue_engine.logs import configure_logging
    from revenue_engine.services import plans, subscriptions
    from revenue_engine.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    authenticator = Authenticator(settings)

    async def bare_plans(request: HTTPRequest) -> JSONResponse:
        rows = await plans.list_plans(active_only=True)
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
        assert principal is not None
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

    app.add_route("/bench/plans", bare_plans, methods=["GET"])
    app.add_route("/bench/subscription-status", bare_status, methods=["GET"])
    if seed:
        engine_lifespan = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def seeded_lifespan(app: Any) -> AsyncIterator[None]:
            async with engine_lifespan(app):
                runtime = app.state.runtime
                await runtime.ready.wait()
                await seed_ledger(seed, runtime.database)
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


async def seed_ledger(count: int, database: Any) -> None:
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
    insert, so loading 20,000 events under the index would take longer than measuring them."""
    from revenue_engine.documents import StripeObjectVersion, WebhookEvent, WebhookEventStatus
    from revenue_engine.services import catalog_sync
    from revenue_engine.services.catalog_sync import StripePrice

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
    for index in range(max(0, count - len(events.prices)), count):
        price = json.loads(events.body(index))["data"]["object"]
        await catalog_sync.sync_price(StripePrice.model_validate(price))


async def seed_store(uri: str, database_name: str, count: int) -> None:
    """Seed a database on a MongoDB server from the driver, before the engine starts on it:
    the plans file loaded as the engine loads it at startup, then ``seed_ledger``. Its own
    client allows each insert of a batch the longest operation timeout the settings take."""
    from revenue_engine.db import connect
    from revenue_engine.services.plans import load_plans_file
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
        await seed_ledger(count, database)
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


class Pool:
    """Keep-alive connections to the server, opened as needed and reused."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.idle: list[Connection] = []

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
        connection = self.idle.pop() if self.idle else None
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
) -> Sample:
    """``request(client, i)`` from ``concurrency`` workers until ``total`` or ``seconds``."""
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
    from revenue_engine.services.plans import read_plans_file
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
        t = int(time.time())
        v1 = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256)
        return {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": f"t={t},v1={v1.hexdigest()}",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }

    def sender(self, offset: int) -> Request:
        async def send(pool: Pool, i: int) -> Response:
            body = self.body(offset + i)
            return await pool.request(
                "POST", "/webhooks/stripe", body=body, headers=self.headers(body)
            )

        return send


def webhook_outcome(response: Any) -> str:
    try:
        return str(response.json().get("status", response.status_code))
    except ValueError:
        return str(response.status_code)


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
        self.settings = {k: env[k] for k in ("ENVIRONMENT", "LOG_LEVEL") if k in env}
        self.log = (log_dir / f"server-{store}-{name}.log").open("w")
        command = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(self.port)]
        command += ["--loop", flavour.loop, "--http", flavour.http]
        if seed:
            command += ["--seed-ledger", str(seed)]
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
) -> Any:
    import httpx

    server = Server(store, uri, log_dir, name, seed=seed, flavour=flavour, database=database)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    client = httpx.AsyncClient(base_url=server.base, timeout=60, limits=limits)
    try:
        await server.ready(client, ready_within)
        yield server, client
    finally:
        await client.aclose()
        server.stop()


# --- the scenarios -----------------------------------------------------------------------


async def subscribed_org(server: Server, client: Any) -> str:
    """An organization with an active subscription, made through the API and the emulator."""
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
    base = server.base + "/stripe-emulator"
    http = stripe.HTTPXClient(timeout=10)
    sdk = stripe.StripeClient(
        "sk_test_emulator",
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
            "variables": {"i": {"planUid": "pro", "billingInterval": "MONTH"}},
        },
        headers=auth,
    )
    assert created.json()["data"]["createSubscription"]["__typename"] == "SubscriptionPayload"
    return org


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
    assert check["isActive"], check
    assert check["entitlements"], check
    return {
        "plans": gql_plans,
        "plans (bare route)": bare_plans,
        "subscriptionStatus": gql_status,
        "subscriptionStatus (bare route)": bare_status,
    }


async def engine_time(pool: Pool, request: Request, quick: bool) -> dict[str, Any]:
    await load(pool, request, concurrency=1, total=50)  # warm the caches
    return (await load(pool, request, concurrency=1, total=300 if quick else 1000)).summary()


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


async def validation_cache(n: int) -> dict[str, Any]:
    """Executing ``plans`` in process: limit rules built once vs. built per request (the
    pattern strawberry issue #4635 describes: every request is a validation-cache miss)."""

    from revenue_engine import schema as schema_module
    from revenue_engine.db import connect
    from revenue_engine.schema.query_cost import QueryCostRule
    from revenue_engine.services.plans import load_plans_file
    from revenue_engine.settings import DEMO_PLANS_FILE, Settings

    database = await connect(Settings(_env_file=None, mongodb_database="bench_validation"))
    await load_plans_file(DEMO_PLANS_FILE)
    prebuilt = schema_module.build_schema()

    class PerRequest(schema_module.QueryLimits):
        """The cost rule as a new class each request, as a limiter built per request makes."""

        def on_operation(self) -> Iterator[None]:
            context = self.execution_context
            fresh = type("QueryCostRule", (QueryCostRule,), {})
            context.validation_rules = (
                fresh,
                *schema_module.with_limits(context.validation_rules)[1:],
            )
            yield

    original = schema_module.QueryLimits
    schema_module.QueryLimits = PerRequest  # type: ignore[misc]
    try:
        rebuilt = schema_module.build_schema()
    finally:
        schema_module.QueryLimits = original  # type: ignore[misc]

    async def time_it(schema: Any) -> float:
        for _ in range(50):
            await schema.execute(PLANS_QUERY)
        started = time.perf_counter()
        for _ in range(n):
            result = await schema.execute(PLANS_QUERY)
            assert not result.errors
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


def rows(results: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    for store, data in results["stores"].items():
        api, hooks = data.get("api", {}), data.get("webhooks", {})
        yield (f"[{store}]", "", "", "", "")
        yield from engine_rows(
            {**api.get("engine_time", {}), "webhook event": hooks.get("engine_time", {})}
        )
        yield from webhook_rows(hooks)
        yield from read_rows(api)
        peak = max(
            (part.get("memory", {}).get("peak_rss_mb", 0) for part in (api, hooks)), default=0
        )
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
            "phase_time_cap_s": args.cap,
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
            async with running(store, uri, out_dir, stamp + "-api") as (server, client):
                data["api"] = await api_scenarios(server, client, args.quick, progress)
            if store == "memory" and len(flavours) > 1:
                data["flavours"] = await flavour_comparison(
                    flavours, out_dir, stamp + "-flavours", args.quick, progress
                )
            data["webhooks"] = await webhook_marks(
                store, uri, out_dir, stamp + "-webhooks", sizes, new_events, args.cap, progress
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
    progress("validation cache (in process)")
    results["validation_cache"] = await validation_cache(300 if args.quick else 1000)
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="(internal) run the server under test")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--seed-ledger", type=int, default=0)
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
        "--uvloop",
        action="store_true",
        help="also run the GraphQL phases on the in-memory store under uvicorn's uvloop + "
        "httptools (needs uvicorn[standard])",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port, seed=args.seed_ledger, loop=args.loop, http=args.http)
        return 0
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
