"""The emulator's ASGI application: ``/v1`` API, hosted pages, ``/_emulator`` controls.

Works standalone (``EmulatorServer``) or mounted inside another Starlette app — every route and
link is relative to wherever it is mounted. The lifespan starts and stops webhook delivery; a
host app that mounts it (Starlette does not run a mounted app's lifespan) may call
``emulator.start()``/``aclose()`` itself, or rely on delivery starting lazily with the first event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from stripe_emulator import api
from stripe_emulator.control import control_routes
from stripe_emulator.pages import (
    checkout_routes,
    invoice_routes,
    portal_routes,
    setup_routes,
)
from stripe_emulator.urls import root_url

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator


class _KeepRawSend:
    """Remembers the server's own ``send`` so the ``reset`` fault can reach the TCP transport."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[api.RAW_SEND] = send
        await self.app(scope, receive, send)


def build_app(emulator: Emulator) -> ASGIApp:
    async def v1(request: Request) -> Response:
        return await api.handle(emulator, request)

    async def index(request: Request) -> Response:
        # Not request.url_for: it cannot see inside this app when it is mounted in another one.
        base = root_url(request)
        return JSONResponse(
            {
                "emulator": "stripe",
                "api_version": emulator.state.config.api_version,
                "api": f"{base}/v1/",
                "control": f"{base}/_emulator/state",
            }
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await emulator.start()
        try:
            yield
        finally:
            await emulator.aclose()

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/v1/{rest:path}", v1, methods=["GET", "POST", "DELETE"], name="v1"),
        *checkout_routes(emulator),
        *portal_routes(emulator),
        *invoice_routes(emulator),
        *setup_routes(emulator),
        *control_routes(emulator),
    ]
    return _KeepRawSend(Starlette(routes=routes, lifespan=lifespan))
