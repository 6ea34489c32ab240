"""How long the engine waits for MongoDB: the driver options behind ``MONGODB_TIMEOUT_MS``, and
the deadline of an operation that waits for a worker thread.

Two promises rest on this module (docs/security.md, "Store outages"):

* **During an outage every request answers within ``MONGODB_TIMEOUT_MS`` + 1 s.**
  ``timeoutMS`` (PyMongo's client-side operation timeout) bounds one operation as a whole:
  server selection, connection checkout, connecting, the round trip, and every retry of
  ``retryReads`` / ``retryWrites`` (each selects a server again, within what is left). The
  per-phase timeouts are set to the same value for anything outside it; under ``timeoutMS``
  PyMongo uses what remains instead. Two things still went past it. PyMongo's server selection
  waits in steps of 0.5 s and checks its deadline after each, so an operation may end up to
  0.5 s late (inside the promise's second). And Motor runs every operation on one shared pool
  of five threads per CPU, where the operation's clock only started once a thread was free:
  during an outage every thread waits out a whole timeout, so a request queued behind them
  waited two or three. ``anchored`` starts the clock when the operation is submitted: one that
  waited for a thread gets only what is left, and fails at once if nothing is.
* **Once the database is reachable again, the engine serves within 5 s**, also after a silent
  partition that strands pooled connections (nothing ever comes back on them, nothing resets
  them). A timeout on an operation's connection does not make PyMongo doubt the server (the
  SDAM specification says so), so each stranded connection used to cost one more request a
  full timeout, until the monitor's next check (10 s by default) found out. The monitor now
  polls every ``HEARTBEAT_MS`` with a connect/``hello`` timeout of at most
  ``MONITOR_TIMEOUT_MS``: within a few seconds of a partition its own connection times out, the
  server is marked unknown and the whole pool, stranded connections included, is discarded.
  ``poll`` mode keeps that bound (a streaming monitor waits up to a heartbeat longer).
* **One request waits out the timeout once, not once per operation.** A GraphQL request runs
  its mutations one after another; during an outage each would wait a whole timeout (15
  aliased mutations: 15 timeouts). Inside ``request_scope`` an operation submitted after one
  of the request's operations failed to reach the store fails at once, the same way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo.errors import ConnectionFailure, NetworkTimeout
from pymongo.synchronous.client_session import ClientSession
from pymongo.synchronous.collection import Collection
from pymongo.synchronous.command_cursor import CommandCursor
from pymongo.synchronous.cursor import Cursor
from pymongo.synchronous.database import Database

#: The monitor's polling interval (one ``hello`` per interval and server: negligible load).
HEARTBEAT_MS = 1000
#: At most this long for the monitor to connect and answer ``hello`` (loopback or a region
#: answer in milliseconds); operations are bounded by ``MONGODB_TIMEOUT_MS`` whatever this is.
MONITOR_TIMEOUT_MS = 2000
#: Pooled connections idle this long are closed rather than reused: a middlebox may have
#: dropped them silently, and the first request on one would wait out its timeout.
MAX_IDLE_MS = 60_000


@dataclass(slots=True)
class _RequestStore:
    """What one request has learnt of the store (shared by the tasks the request runs)."""

    unreachable: bool = False


_request: ContextVar[_RequestStore | None] = ContextVar("store_request", default=None)


@contextlib.contextmanager
def request_scope() -> Iterator[None]:
    """Within it, operations after a failed one fail at once (see the module docstring)."""
    token = _request.set(_RequestStore())
    try:
        yield
    finally:
        _request.reset(token)


def client_options(timeout_ms: int) -> dict[str, Any]:
    """Motor / PyMongo client keyword arguments for ``MONGODB_TIMEOUT_MS``."""
    return {
        "timeoutMS": timeout_ms,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": min(timeout_ms, MONITOR_TIMEOUT_MS),
        "socketTimeoutMS": timeout_ms,
        "waitQueueTimeoutMS": timeout_ms,
        "heartbeatFrequencyMS": HEARTBEAT_MS,
        "serverMonitoringMode": "poll",
        "maxIdleTimeMS": MAX_IDLE_MS,
    }


def _client_timeout(fn: Any, args: tuple[Any, ...]) -> float | None:
    """The ``timeoutMS`` (seconds) of the client a Motor job runs against, when it can be told:
    Motor passes the PyMongo object first, or runs a bound method of one. (Type checks, not
    attribute probes: a PyMongo database or collection answers any attribute name.)"""
    target = args[0] if args else getattr(fn, "__self__", None)
    if isinstance(target, Cursor):
        target = target.collection
    elif isinstance(target, CommandCursor):
        target = target._collection
    if isinstance(target, Collection):
        target = target.database
    if isinstance(target, (Database, ClientSession)):
        target = target.client
    if isinstance(target, pymongo.MongoClient):
        timeout: float | None = target.options.timeout
        return timeout
    return None


def anchored(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[..., Any]:
    """``fn`` with its client's operation timeout counted from now (submission), not from when
    a worker thread picks it up; unchanged when its client has no timeout."""
    timeout = _client_timeout(fn, args)
    if not timeout:
        return fn
    deadline = time.monotonic() + timeout
    scope = _request.get()  # read at submission, in the request's context

    def run(*a: Any, **kw: Any) -> Any:
        if scope is not None and scope.unreachable:
            raise NetworkTimeout("store operation not started: the store did not answer earlier")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NetworkTimeout(
                f"store operation not started: no worker thread within {timeout:g} s (timeoutMS)"
            )
        try:
            with pymongo.timeout(remaining):
                return fn(*a, **kw)
        except ConnectionFailure:  # timeouts, server selection, reset connections
            if scope is not None:
                scope.unreachable = True
            raise

    return run
