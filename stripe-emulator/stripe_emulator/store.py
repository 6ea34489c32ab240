"""In-memory object storage for one emulator instance.

Objects are stored as the JSON dicts the API returns (Stripe's shapes, see ``builders`` in each
resource module), keyed by type and id, in insertion order so lists can be served newest-first
like Stripe's. Facts Stripe never exposes (a card's test behaviour, dunning bookkeeping, a
webhook secret after creation) live in a per-id ``private`` dict beside the object.

A failed write must change nothing, as on Stripe: :meth:`Store.savepoint` / :meth:`Store.rollback`
bracket each write request. Events are append-only, so a savepoint only remembers which existed.

One re-entrant lock guards everything: the HTTP app may run in a server thread while a test
thread pokes the same emulator through its Python control methods.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_emulator.errors import resource_missing
from stripe_emulator.ids import PREFIXES

JSON = dict[str, Any]

# Labels used in "No such …" messages, as Stripe words them.
LABELS: dict[str, str] = {
    "checkout.session": "checkout.session",
    "test_helpers.test_clock": "test clock",
    "billing_portal.session": "billing portal session",
    "payment_method": "PaymentMethod",
    "payment_intent": "payment_intent",
    "setup_intent": "setupintent",
    "webhook_endpoint": "webhook endpoint",
    "subscription_item": "subscription item",
    "invoice_payment": "invoice payment",
    "billing.meter": "billing meter",
}


class Store:
    """Objects by type and id, plus private per-id bookkeeping."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._objects: dict[str, dict[str, JSON]] = {}
        self._types: dict[str, str] = {}
        self.private: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        with self.lock:
            self._objects.clear()
            self._types.clear()
            self.private.clear()

    def put(self, obj: JSON) -> JSON:
        """Insert (or keep the position of) an object; returns the stored dict."""
        kind = obj["object"]
        self._objects.setdefault(kind, {})[obj["id"]] = obj
        self._types[obj["id"]] = kind
        return obj

    def get(self, kind: str, object_id: str) -> JSON | None:
        return self._objects.get(kind, {}).get(object_id)

    def require(self, kind: str, object_id: str | None, *, param: str = "id") -> JSON:
        """The object, or Stripe's 404 ``resource_missing`` naming the parameter."""
        obj = self.get(kind, object_id or "")
        if obj is None or self.priv(obj["id"]).get("deleted"):
            raise resource_missing(LABELS.get(kind, kind), object_id or "", param=param)
        return obj

    def find(self, object_id: str) -> JSON | None:
        """Any object by id (used by ``expand``); falls back on the prefix table."""
        kind = self._types.get(object_id)
        if kind is None:
            for prefix, candidate in PREFIXES.items():
                if object_id.startswith(prefix):
                    kind = candidate
                    break
        return self.get(kind, object_id) if kind else None

    def all(self, kind: str, where: Callable[[JSON], bool] | None = None) -> list[JSON]:
        """Live objects of a type, newest first."""
        items = [
            obj
            for obj in reversed(self._objects.get(kind, {}).values())
            if not self.priv(obj["id"]).get("deleted")
        ]
        return [obj for obj in items if where is None or where(obj)]

    def remove(self, kind: str, object_id: str) -> None:
        self._objects.get(kind, {}).pop(object_id, None)
        self._types.pop(object_id, None)
        self.private.pop(object_id, None)

    def priv(self, object_id: str) -> dict[str, Any]:
        return self.private.setdefault(object_id, {})

    def count(self, kind: str) -> int:
        return len(self.all(kind))

    def savepoint(self) -> Savepoint:
        """Everything needed to undo a write that fails half-way."""
        objects = {kind: items for kind, items in self._objects.items() if kind != "event"}
        copied = copy.deepcopy((objects, self.private))
        return Savepoint(
            copied[0], dict(self._types), copied[1], set(self._objects.get("event", {}))
        )

    def rollback(self, point: Savepoint) -> None:
        events = {
            event_id: event
            for event_id, event in self._objects.get("event", {}).items()
            if event_id in point.event_ids
        }
        self._objects = {**point.objects, "event": events}
        self._types = point.types
        self.private = point.private


@dataclass(frozen=True)
class Savepoint:
    objects: dict[str, dict[str, JSON]]
    types: dict[str, str]
    private: dict[str, dict[str, Any]]
    event_ids: set[str]


def snapshot(obj: JSON) -> JSON:
    """A deep copy, so responses and event payloads never alias stored state."""
    return copy.deepcopy(obj)
