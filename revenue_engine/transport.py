"""HTTP hygiene around every route: the middleware stack ``create_app`` installs.

Outermost first:

1. ``RequestIdMiddleware`` — ``X-Request-ID`` in and out (``middleware``);
2. ``ServerTimingMiddleware`` — ``Server-Timing: app, db, stripe`` (``timing``);
3. Starlette's ``CORSMiddleware`` — only when ``CORS_ALLOW_ORIGINS`` lists origins; explicit
   origins, credentials off unless ``CORS_ALLOW_CREDENTIALS``;
4. ``SecurityHeadersMiddleware`` — ``nosniff`` on everything, and on HTML pages (GraphiQL, the
   demo SPA, the emulator's hosted pages) a Content-Security-Policy, no framing, no referrer;
   HSTS when ``PUBLIC_BASE_URL`` is https;
5. ``BodyLimitMiddleware`` — a request body over ``HTTP_MAX_BODY_BYTES`` is answered 413,
   declared or streamed, before it is all read. The webhook route is left to its own limit
   (``WEBHOOK_MAX_BODY_BYTES``), so it is not limited twice; ``POST /v1/usage`` has its own
   (``USAGE_MAX_BODY_BYTES``): its largest valid batch, 1,000 events with 200-character ids,
   is over 256 KiB.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from revenue_engine.middleware import RequestIdMiddleware
from revenue_engine.settings import Settings
from revenue_engine.timing import ServerTimingMiddleware
from revenue_engine.usage_endpoint import PATH as USAGE_PATH

#: HTML the engine serves itself (the demo SPA, the emulator's pages): no third-party code.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: GraphiQL (development): its scripts are served from here (no CDN, no inline script); GraphiQL
#: and CodeMirror set inline styles, so styles alone may be inline.
GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_HTML_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, graphiql_path: str = "/graphql", hsts: bool = False) -> None:
        self.app = app
        self.graphiql_path = graphiql_path
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = GRAPHIQL_CSP if scope["path"] == self.graphiql_path else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                if self.hsts:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("content-security-policy", csp)
                    for name, value in _HTML_HEADERS.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _TooLarge(Exception):
    pass


def _too_large() -> JSONResponse:
    body = {"errors": [{"message": "request body too large", "extensions": {"code": "TOO_LARGE"}}]}
    return JSONResponse(body, status_code=413)


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes`` (or the limit ``limits`` gives the path): at once when
    ``Content-Length`` says so, else as soon as the streamed body passes the limit (the rest is
    never read). Paths in ``exempt`` are not limited here."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        exempt: frozenset[str] = frozenset(),
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt
        self.limits = dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        max_bytes = self.limits.get(scope["path"], self.max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await JSONResponse({"error": "invalid Content-Length"}, 400)(
                        scope, receive, send
                    )
                    return
                if int(value) > max_bytes:
                    await _too_large()(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:  # pragma: no cover - nothing here answers before reading the body
                raise
            await _too_large()(scope, receive, send)


def http_middleware(settings: Settings) -> list[Middleware]:
    """The stack described in the module docstring, outermost first."""
    stack = [
        Middleware(RequestIdMiddleware),
        Middleware(ServerTimingMiddleware, enabled=settings.server_timing),
    ]
    if settings.cors_allow_origins:
        headers = ["authorization", "content-type", "x-request-id"]
        if settings.dev_headers_enabled:
            headers += ["x-organization-id", "x-customer-email", "x-roles"]
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_allow_origins),
                allow_credentials=settings.cors_allow_credentials,
                allow_methods=["GET", "POST"],
                allow_headers=headers,
                expose_headers=["x-request-id", "server-timing"],
                max_age=600,
            )
        )
    stack += [
        Middleware(SecurityHeadersMiddleware, hsts=settings.public_base_url.startswith("https://")),
        Middleware(
            BodyLimitMiddleware,
            max_bytes=settings.http_max_body_bytes,
            exempt=frozenset({settings.stripe_webhook_path}),
            limits={USAGE_PATH: settings.usage_max_body_bytes},
        ),
    ]
    return stack
