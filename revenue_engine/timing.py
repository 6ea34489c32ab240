"""Where a request's time goes: the engine's own work, the database, Stripe.

``ServerTimingMiddleware`` opens a ``RequestTimings`` for each HTTP request (in a context
variable, so tasks the request starts share it) and answers with a ``Server-Timing`` header::

    Server-Timing: app;dur=0.41, db;dur=1.20, stripe;dur=0.00

``db`` and ``stripe`` are wall-clock time spent awaiting the database (``db.py`` instruments
the drivers) and Stripe (``gateway`` times each call); ``app`` is the rest of the time until
the response starts — the engine's own cost, plus waiting for the event loop when other
requests keep it busy. Durations are milliseconds. Outside a request nothing is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

P = ParamSpec("P")
T = TypeVar("T")


class RequestTimings:
    """Seconds spent awaiting the database and Stripe during one request."""

    __slots__ = ("db", "started", "stripe")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.db = 0.0
        self.stripe = 0.0

    def header(self) -> str:
        total = time.perf_counter() - self.started
        app = max(0.0, total - self.db - self.stripe)
        return (
            f"app;dur={app * 1000:.3f}, db;dur={self.db * 1000:.3f}, "
            f"stripe;dur={self.stripe * 1000:.3f}"
        )


_current: ContextVar[RequestTimings | None] = ContextVar("request_timings", default=None)


def current() -> RequestTimings | None:
    """The timings of the request being served, if any."""
    return _current.get()


def timed_db(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """``method`` (an async driver call) with its awaited time counted as ``db``."""

    @wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        timings = _current.get()
        if timings is None:
            return await method(*args, **kwargs)
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            timings.db += time.perf_counter() - started

    wrapper.__timed_db__ = True  # type: ignore[attr-defined]
    return wrapper


async def timed_stripe(call: Awaitable[T]) -> T:
    """Await one Stripe call, counting its time as ``stripe``."""
    timings = _current.get()
    if timings is None:
        return await call
    started = time.perf_counter()
    try:
        return await call
    finally:
        timings.stripe += time.perf_counter() - started


def add_db_time(seconds: float, timings: RequestTimings | None) -> None:
    """For drivers that report a finished operation through a callback."""
    if timings is not None:
        timings.db += seconds


class ServerTimingMiddleware:
    """Measures every HTTP request; adds ``Server-Timing`` when ``enabled``."""

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timings = RequestTimings()
        token = _current.set(timings)

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.enabled:
                MutableHeaders(scope=message).append("server-timing", timings.header())
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            _current.reset(token)


def instrument(cls: type[Any], names: list[str] | None = None) -> None:
    """Wrap the coroutine methods of a driver class (``names``, or every one) with ``timed_db``.

    Idempotent: a method wrapped once is left alone."""
    import inspect

    for name in names if names is not None else dir(cls):
        if name.startswith("__") and name not in ("__anext__",):
            continue
        method = getattr(cls, name, None)
        if not inspect.iscoroutinefunction(method) or getattr(method, "__timed_db__", False):
            continue
        setattr(cls, name, timed_db(method))
