"""Idempotent requests: the first response to a key is replayed for every retry.

Stripe keys results by (account, ``Idempotency-Key``); we key by (API key, idempotency key). The
saved result is the first response — its status and body, including a 402 decline — and a retry
with the *same* method, path and parameters gets it back with ``Idempotent-Replayed: true``. The
same key with different parameters is a 400 ``idempotency_error``. Like Stripe, a request that
failed validation before it started executing (400/401/404) saves nothing, so it can be fixed and
retried with the same key. Saved results expire after 24 hours, Stripe's minimum retention.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, replace

from stripe_emulator.errors import idempotency_mismatch

# Statuses whose response is saved: work happened (or was attempted) on Stripe's side.
_SAVED_STATUSES = frozenset({200, 402, 500})
RETENTION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class SavedResponse:
    fingerprint: str
    status: int
    body: bytes
    request_id: str
    saved_at: float = 0.0


class IdempotencyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._saved: dict[tuple[str, str], SavedResponse] = {}

    def reset(self) -> None:
        with self._lock:
            self._saved.clear()

    @staticmethod
    def fingerprint(method: str, path: str, pairs: list[tuple[str, str]]) -> str:
        digest = hashlib.sha256(f"{method} {path}".encode())
        for key, value in sorted(pairs):
            digest.update(f"\n{key}={value}".encode())
        return digest.hexdigest()

    def lookup(self, api_key: str, key: str, fingerprint: str) -> SavedResponse | None:
        """The saved response for this key, or None; raises on a parameter mismatch."""
        with self._lock:
            saved = self._saved.get((api_key, key))
        if saved is None or time.monotonic() - saved.saved_at > RETENTION_SECONDS:
            return None
        if saved.fingerprint != fingerprint:
            raise idempotency_mismatch(key)
        return saved

    def save(self, api_key: str, key: str, response: SavedResponse) -> None:
        if response.status not in _SAVED_STATUSES:
            return
        now = time.monotonic()
        with self._lock:
            expired = [k for k, v in self._saved.items() if now - v.saved_at > RETENTION_SECONDS]
            for stale in expired:
                del self._saved[stale]
            self._saved.setdefault((api_key, key), replace(response, saved_at=now))

    def __len__(self) -> int:
        with self._lock:
            return len(self._saved)
