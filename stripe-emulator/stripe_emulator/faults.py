"""Fault injection and the request log, for reliability tests of Stripe clients.

A :class:`Fault` makes the next ``count`` matching ``/v1`` requests misbehave:

* ``500`` / ``503`` — Stripe's ``api_error`` envelope with that status;
* ``429`` — ``rate_limit`` error with a ``Stripe-Rate-Limited-Reason`` header;
* ``409`` — ``idempotency_error``: another request with the same key is still in progress
  (the SDKs retry 409s);
* ``timeout`` — the response is held for ``hang_seconds`` (or until the client gives up);
* ``reset`` — the TCP connection is dropped without a response.

``when="before"`` (default) fails the request before it executes — nothing is created.
``when="after"`` executes it first (the object exists and the idempotent result is saved), then
loses the response — the case where only a retry with the *same* idempotency key avoids a
duplicate. The :class:`RequestLog` counts requests and idempotency keys per ``METHOD /path`` so a
test can assert "retried with the same key, one object created".
"""

from __future__ import annotations

import fnmatch
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FaultKind = Literal["409", "429", "500", "503", "timeout", "reset"]
KINDS: tuple[str, ...] = ("409", "429", "500", "503", "timeout", "reset")
RATE_LIMIT_REASONS = (
    "global-rate",
    "global-concurrency",
    "endpoint-rate",
    "endpoint-concurrency",
    "resource-specific",
)


@dataclass
class Fault:
    kind: FaultKind
    count: int = 1
    method: str | None = None
    path: str | None = None  # exact path or a glob such as "/v1/customers*"
    when: Literal["before", "after"] = "before"
    hang_seconds: float = 30.0
    rate_limited_reason: str = "global-rate"
    # Sets ``Stripe-Should-Retry``, which the SDKs obey (Stripe sends "true" on lock timeouts).
    should_retry: bool | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        if self.rate_limited_reason not in RATE_LIMIT_REASONS:
            raise ValueError(f"rate_limited_reason must be one of {RATE_LIMIT_REASONS}")
        if self.count < 1:
            raise ValueError("count must be at least 1")

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one shot of the first armed fault matching this request."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.fired += 1
                    if fault.fired >= fault.count:
                        self._faults.remove(fault)
                    return fault
        return None

    def armed(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)


@dataclass
class LoggedRequest:
    method: str
    path: str
    idempotency_key: str | None
    status: int | None = None
    replayed: bool = False
    fault: str | None = None


# Enough for any test; bounded so a long-running embedded emulator does not grow forever.
MAX_LOGGED_REQUESTS = 50_000


@dataclass
class RequestLog:
    entries: deque[LoggedRequest] = field(default_factory=lambda: deque(maxlen=MAX_LOGGED_REQUESTS))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, path: str, idempotency_key: str | None) -> LoggedRequest:
        entry = LoggedRequest(method.upper(), path, idempotency_key)
        with self._lock:
            self.entries.append(entry)
        return entry

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self._select(method, path))

    def idempotency_keys(self, method: str | None = None, path: str | None = None) -> Counter[str]:
        """How many times each idempotency key was seen on matching requests."""
        return Counter(e.idempotency_key for e in self._select(method, path) if e.idempotency_key)

    def _select(self, method: str | None, path: str | None) -> list[LoggedRequest]:
        with self._lock:
            entries = list(self.entries)
        return [
            e
            for e in entries
            if (method is None or e.method == method.upper())
            and (path is None or fnmatch.fnmatchcase(e.path, path))
        ]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            entries = list(self.entries)
        counts: Counter[str] = Counter(f"{e.method} {e.path}" for e in entries)
        keys: dict[str, Counter[str]] = {}
        for e in entries:
            if e.idempotency_key:
                keys.setdefault(f"{e.method} {e.path}", Counter())[e.idempotency_key] += 1
        return {
            "requests": [asdict(e) for e in entries],
            "counts": dict(counts),
            "idempotency_keys": {route: dict(c) for route, c in keys.items()},
        }
