"""The ASGI application: ``create_app(settings)`` wires storage, auth, GraphQL, the Stripe
webhook route, the usage route and health routes.

Startup connects to MongoDB and creates indexes. If the database is unreachable the process
still starts (``/healthz`` answers, ``/readyz`` says 503) and keeps retrying in the background,
so an orchestrator can tell "up" from "ready".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from revenue_engine import store_timeouts
from revenue_engine.auth import Authenticator, AuthError
from revenue_engine.context import Context
from revenue_engine.db import Database, StoreError, open_database
from revenue_engine.errors import BadUserInput, ResponseTooLarge, ValidationFailed
from revenue_engine.gateway import EMULATOR_MOUNT, StripeGateway
from revenue_engine.request_checks import (
    check_size,
    check_text,
    decode_request_json,
)
from revenue_engine.schema import build_schema, http_cache
from revenue_engine.schema.error_policy import shape_errors
from revenue_engine.services import background, plan_cache
from revenue_engine.services.plans_file import load_plans_file
from revenue_engine.settings import Settings, get_settings
from revenue_engine.transport import http_middleware
from revenue_engine.usage_endpoint import PATH as USAGE_PATH
from revenue_engine.usage_endpoint import UsageEndpoint
from revenue_engine.webhooks.dispatch import HANDLERS
from revenue_engine.webhooks.endpoint import WebhookEndpoint

if TYPE_CHECKING:
    from revenue_engine.embedded import Emulator

log = logging.getLogger(__name__)

#: Stripe's reachability is probed in the background (readiness only reads the result): every
#: ``STRIPE_PROBE_SECONDS`` while it answers, every ``STRIPE_REPROBE_SECONDS`` while it does not
#: (at start the embedded emulator is not served yet); one probe may take ``STRIPE_PROBE_TIMEOUT``.
STRIPE_PROBE_SECONDS = 30.0
STRIPE_REPROBE_SECONDS = 2.0
STRIPE_PROBE_TIMEOUT = 2.0

WEB_DIR = Path(__file__).parent / "web"
# GraphiQL with its scripts served from here, not a CDN: the IDE works offline.
GRAPHIQL_DIR = Path(__file__).parent / "graphiql"


@dataclass
class Runtime:
    """What the lifespan builds and the routes use."""

    settings: Settings
    database: Database
    gateway: StripeGateway
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    #: Stripe's reachability as last probed by ``probe_stripe`` (readiness reports it).
    stripe: str = "unchecked"


_HTTP_ERROR_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}


class EngineGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context (the principal comes from ``AuthGate``) and our
    request checks (``request_checks``): JSON depth and UTF-8, then text."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(build_schema(settings), **kwargs)
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            with store_timeouts.request_scope():
                response = await self._conditional(request) or await self._kept(request)
                if response is not None:  # complete, headers and all
                    await response(scope, receive, send)
                    return
                response = await self.run(request)
        except BadUserInput as exc:
            # Answered like a variable that does not fit its type (graphql-core's coercion
            # errors): the request is readable, one of its values is not acceptable.
            response = JSONResponse(
                {
                    "data": None,
                    "errors": [{"message": exc.message, "extensions": {"code": exc.code}}],
                }
            )
        except HTTPException as exc:
            # A request GraphQL cannot even read (bad JSON, no query, a batch, a wrong content
            # type) answers in the GraphQL response shape, not plain text, with a code; without
            # a ``data`` entry, as GraphQL over HTTP has it for a request that never executed.
            code = _HTTP_ERROR_CODES.get(exc.status_code, "BAD_REQUEST")
            response = JSONResponse(
                {"errors": [{"message": exc.reason, "extensions": {"code": code}}]},
                status_code=exc.status_code,
            )
        if request.scope.get("state", {}).get(http_cache.GET_REFUSED):
            response = JSONResponse(
                {
                    "errors": [
                        {"message": http_cache.GET_REFUSED, "extensions": {"code": "BAD_REQUEST"}}
                    ]
                },
                status_code=400,
            )
        self._cache_headers(request, response)
        self._keep(request, response)
        await response(scope, receive, send)

    async def _conditional(self, request: Request) -> Response | None:
        """``304 Not Modified`` for a catalog query over GET whose tag the client holds
        (``schema.http_cache``), without executing it; else ``None``."""
        if_none_match = request.headers.get("if-none-match")
        if request.method != "GET" or not if_none_match:
            return None
        tag = await http_cache.conditional_tag(self.schema, request.query_params)
        if tag is None or not http_cache.matches(if_none_match, tag):
            return None
        return Response(status_code=304, headers=self._catalog_headers(tag))

    async def _kept(self, request: Request) -> Response | None:
        """The kept answer of this catalog request as sent before, while the catalog is the
        one it read (``schema.http_cache``); else ``None``, the key it may be kept under
        waiting in the request's state."""
        if request.method == "GET":
            payload = request.scope["query_string"]
        elif request.method == "POST":
            payload = await request.body()
        else:
            return None
        headers = request.headers
        key = http_cache.answer_key(
            self.schema,
            request.method,
            headers.get("accept", ""),
            headers.get("content-type", ""),
            payload,
        )
        if key is None:
            return None
        kept = http_cache.RESPONSES.get(key)
        if kept is not None and kept.catalog == await plan_cache.catalog_digest():
            return Response(kept.body, headers=dict(kept.headers))
        request.scope.setdefault("state", {})[http_cache.ANSWER_KEY] = key
        return None

    def _keep(self, request: Request, response: Response) -> None:
        """Keeps a catalog answer that executed without errors, with the catalog it read."""
        state = request.scope.get("state", {})
        key = state.get(http_cache.ANSWER_KEY)
        catalog = state.get(http_cache.ANSWERED)
        if key is None or catalog is None or response.status_code != 200:
            return
        body = bytes(response.body)
        if len(body) <= http_cache.RESPONSE_MAX_BYTES:
            headers = tuple((k, v) for k, v in response.headers.items() if k != "content-length")
            http_cache.RESPONSES.put(key, http_cache.Kept(catalog, body, headers))

    def _catalog_headers(self, tag: str) -> dict[str, str]:
        max_age = self.settings.catalog_cache_seconds
        return {"etag": tag, "cache-control": f"public, max-age={max_age}"}

    def _cache_headers(self, request: Request, response: Response) -> None:
        tag = request.scope.get("state", {}).get(http_cache.STATE_KEY)
        if tag is not None and response.status_code == 200:
            response.headers.update(self._catalog_headers(tag))
        elif response.status_code != 304:
            response.headers["cache-control"] = "no-store"

    def decode_json(self, data: str | bytes) -> object:
        # Every JSON the view reads (a POST body, a GET request's variables and extensions).
        value = decode_request_json(data)
        if not isinstance(value, (dict, list)):
            # Strawberry reads fields off whatever decoded (``null`` was an AttributeError, a
            # 500); a list is a batch, which it refuses itself.
            raise HTTPException(400, "The request JSON must be an object")
        return value

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        parsed = await super().parse_http_body(request)
        check_size(parsed)
        await check_text(request, parsed)
        return parsed

    @property
    def graphql_ide_html(self) -> str:
        return (GRAPHIQL_DIR / "page.html").read_text(encoding="utf-8")

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            request_id = request.scope.get("state", {}).get("request_id", "-")
            result.errors = shape_errors(
                result.errors, request_id, hide_suggestions=self.settings.is_production
            )
            if any(isinstance(e.original_error, ResponseTooLarge) for e in result.errors):
                log.warning("response too large request_id=%s cause=large_values", request_id)
                return self._too_large()
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> str | bytes:
        # The response budget's last line: an answer over GRAPHQL_MAX_RESPONSE_BYTES is never
        # sent, not even in part; the client gets one typed error instead. (ASCII-only JSON,
        # so its length is its size in bytes.)
        body = super().encode_json(data)
        limit = self.settings.graphql_max_response_bytes
        if len(body) <= limit:
            return body
        log.warning("response too large bytes=%d limit=%d", len(body), limit)
        return super().encode_json(self._too_large())

    def _too_large(self) -> GraphQLHTTPResponse:
        """The whole answer when the response budget is exceeded: no data, one error."""
        error = ResponseTooLarge(self.settings.graphql_max_response_bytes)
        extensions = {"code": error.code, "limitBytes": error.limit}
        return {"data": None, "errors": [{"message": error.message, "extensions": extensions}]}

    async def get_context(self, request: Any, response: Any) -> Context:
        state = request.scope.get("state", {})
        runtime: Runtime = request.app.state.runtime
        return Context(
            request=request,
            response=response,
            settings=self.settings,
            gateway=runtime.gateway,
            principal=state.get("principal"),
            request_id=state.get("request_id", "-"),
        )


class AuthGate:
    """Resolves the caller before GraphQL runs; a rejected credential is a 401/403 JSON answer."""

    def __init__(self, app: EngineGraphQL, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            try:
                principal = await self.authenticator.authenticate(request.headers)
            except AuthError as exc:
                extensions: dict[str, Any] = {"code": exc.code}
                headers: dict[str, str] = {}
                if exc.status_code == 401:
                    headers["www-authenticate"] = "Bearer"
                if exc.retry_after is not None:
                    extensions["retryAfterSeconds"] = exc.retry_after
                    headers["retry-after"] = str(round(exc.retry_after))
                body = {"errors": [{"message": str(exc), "extensions": extensions}]}
                await JSONResponse(body, status_code=exc.status_code, headers=headers)(
                    scope, receive, send
                )
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _initialise(runtime: Runtime) -> None:
    """Create indexes and load the plans file; retried until the database answers."""
    settings = runtime.settings
    delay = 0.5
    while True:
        try:
            await runtime.database.initialise()
            await load_plans_file(settings.plans_path)
        except (StoreError, TimeoutError) as exc:
            log.warning("database not ready, retrying in %.1fs error=%s", delay, type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        except ValidationFailed as exc:
            # Not retried: the engine stays unready (readyz 503) and says why.
            problems = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
            log.error("plans not loaded: %s %s", exc.message, problems)
            raise
        runtime.ready.set()
        log.info(
            "ready database=%s in_memory=%s", settings.mongodb_database, runtime.database.in_memory
        )
        return


async def probe_stripe(runtime: Runtime) -> None:
    """Keep ``runtime.stripe`` current (see ``STRIPE_PROBE_SECONDS``); one authenticated read per
    interval and instance, however often readiness is polled."""
    while True:
        result = await runtime.gateway.probe(STRIPE_PROBE_TIMEOUT)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # The SDK turns a cancellation in flight into a connection error: stop anyway.
            raise asyncio.CancelledError
        runtime.stripe = result
        ok = runtime.stripe == "ok"
        await asyncio.sleep(STRIPE_PROBE_SECONDS if ok else STRIPE_REPROBE_SECONDS)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime = _runtime(request)
    timeout = runtime.settings.mongodb_timeout_ms / 1000
    if not runtime.ready.is_set():
        return JSONResponse({"status": "unavailable", "mongo": "initialising"}, status_code=503)
    try:
        await asyncio.wait_for(runtime.database.ping(), timeout=timeout)
    except (StoreError, TimeoutError):
        return JSONResponse({"status": "unavailable", "mongo": "unreachable"}, status_code=503)
    # Stripe is reported, not required: with Stripe down, webhooks already received, status
    # reads and the catalog still work, and taking every instance out of rotation would stop
    # them too. A refused key (``unauthorized``) is a configuration error to alert on.
    return JSONResponse({"status": "ok", "mongo": "ok", "stripe": runtime.stripe})


def create_app(settings: Settings | None = None, *, database_name: str | None = None) -> Starlette:
    """Build the engine. ``settings`` defaults to the environment; tests pass their own.

    The steps: the embedded emulator (when no Stripe is configured), one Stripe client, the
    routes, the lifespan that opens the database and runs the background work, and the HTTP
    middleware stack around it all.
    """
    settings = settings or get_settings()
    emulator = _embedded_emulator(settings)
    # One Stripe client per app (no I/O until the first call); closed by the lifespan.
    gateway = StripeGateway.from_settings(settings)
    webhook = WebhookEndpoint(settings, gateway)
    app = Starlette(
        routes=_routes(settings, webhook, emulator),
        lifespan=_lifespan(settings, database_name, gateway, webhook, emulator),
        middleware=http_middleware(settings),
    )
    app.state.settings = settings
    app.state.emulator = emulator
    return app


def _embedded_emulator(settings: Settings) -> Emulator | None:
    """The built-in Stripe emulator of the embedded default, or ``None`` with Stripe configured.

    It is mounted in the engine and stands in for Stripe (the gateway's base address points at
    this mount); never used with a real key.
    """
    if not settings.embedded_emulator:
        return None
    from revenue_engine.embedded import build_emulator

    return build_emulator(settings)


def _routes(
    settings: Settings, webhook: WebhookEndpoint, emulator: Emulator | None
) -> list[BaseRoute]:
    """The engine's routes: webhook, GraphQL, usage, health; GraphiQL's assets, the emulator's
    mount and the demo front end when enabled."""
    graphql = EngineGraphQL(
        settings,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        # In production only catalog queries (schema.http_cache), which HTTP caches may reuse.
        allow_queries_via_get=True,
        multipart_uploads_enabled=False,
    )
    authenticator = Authenticator(settings)
    gate = AuthGate(graphql, authenticator)
    routes: list[BaseRoute] = [
        # Authenticated by its signature, not by AuthGate; answers its own 405/415/413.
        Route(settings.stripe_webhook_path, webhook),
        Route("/graphql", gate, methods=["GET", "POST"]),
        # A service credential (usage API key or token); answers its own 401/403/405/415.
        Route(USAGE_PATH, UsageEndpoint(settings, authenticator)),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if settings.graphiql_enabled:
        routes.append(Mount("/graphiql", app=StaticFiles(directory=GRAPHIQL_DIR / "assets")))
    if emulator is not None:
        routes.append(Mount(EMULATOR_MOUNT, app=emulator.app))
    if settings.demo_spa_enabled:
        routes.append(Mount("/demo", app=StaticFiles(directory=WEB_DIR, html=True)))
        routes.append(Route("/", lambda request: RedirectResponse("/demo/"), methods=["GET"]))
    return routes


def _lifespan(
    settings: Settings,
    database_name: str | None,
    gateway: StripeGateway,
    webhook: WebhookEndpoint,
    emulator: Emulator | None,
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: open the database, start the emulator (if any) and the background
    tasks, wait briefly for readiness; at shutdown stop the tasks and close what was opened."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = open_database(settings, database_name=database_name)
        runtime = Runtime(settings=settings, database=database, gateway=gateway)
        app.state.runtime = runtime
        if emulator is not None:
            await _start_emulator(emulator, settings, webhook)
        init = _start_background(runtime)
        # Wait briefly so a healthy start is ready before the first request; a down database
        # does not block startup (readyz reports it).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(init), timeout=settings.mongodb_timeout_ms / 1000 + 1
            )
        try:
            yield
        finally:
            await _shut_down(runtime, emulator)

    return lifespan


async def _start_emulator(emulator: Emulator, settings: Settings, webhook: WebhookEndpoint) -> None:
    """Start the embedded emulator and register the engine's webhook route with it; the
    endpoint's signing secret joins those the webhook route accepts."""
    from revenue_engine.embedded import register_webhook_endpoint

    await emulator.start()
    # Every handled type: the emulator also sends the meter error reports Stripe sends only to
    # event destinations.
    secret = await register_webhook_endpoint(emulator, settings, sorted(HANDLERS))
    webhook.secrets.append(secret)


def _start_background(runtime: Runtime) -> asyncio.Task[None]:
    """Start the background tasks (initialisation, the Stripe probe, the periodic jobs) on
    ``runtime.tasks``; returns the initialisation task."""
    settings = runtime.settings
    init = asyncio.create_task(_initialise(runtime))
    runtime.tasks.append(init)
    runtime.tasks.append(asyncio.create_task(probe_stripe(runtime)))
    # Periodic work (usage reports to Stripe, …) once the database is initialised.
    jobs = background.usage_jobs(runtime.gateway, settings)
    runtime.tasks.append(
        asyncio.create_task(
            background.run_periodically(
                jobs, settings.usage_report_interval_seconds, ready=runtime.ready
            )
        )
    )
    return init


async def _shut_down(runtime: Runtime, emulator: Emulator | None) -> None:
    """Cancel the background tasks and wait for them, then close the Stripe client, the
    emulator and the database."""
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    await runtime.gateway.close()
    if emulator is not None:
        await emulator.aclose()
    runtime.database.close()
