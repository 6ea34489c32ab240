"""What a webhook handler may raise, and what the endpoint answers for it.

The tree (a handler raises the narrowest that fits)::

    Exception
    ├── IgnoredEvent                  not applied on purpose (stale, not ours): 200, ``ignored``
    ├── WebhookError                  permanent: 200 to Stripe, ledger row ``failed`` + reason
    │   ├── MalformedObject           the event's object lacks a field the handler needs
    │   ├── UnknownObject             it refers to something we do not have (and never will)
    │   └── CatalogMismatch           a Stripe price/product contradicts the plan catalog
    └── TransientWebhookError         retry: 503 to Stripe, the ledger claim is released

``StoreError``, ``TimeoutError`` and the domain ``ServiceUnavailable`` count as transient too,
without wrapping.

Why a 200 for a known permanent failure: answering 5xx would make Stripe redeliver the same
event for three days with the same result. The row stays ``failed`` with its reason, visible to
admins (``webhookEvents``), and is replayed once the cause is fixed (``replayWebhookEvent``,
``revenue-engine events replay``).

A transient failure is retried by Stripe, but not forever: after ``MAX_ATTEMPTS`` deliveries
the row is parked as ``failed`` (see ``webhooks.dispatch``), so an event that can never succeed
does not loop. Any other exception is a handler bug: recorded ``failed`` with its class and
(scrubbed) message, answered 200 so other events keep flowing, and replayable after the fix.

``InvalidSignature`` and ``MalformedEvent`` are raised by the endpoint itself, before anything
is written: both answer 400.
"""

from __future__ import annotations


class WebhookError(Exception):
    """A known, permanent failure to apply an event: recorded ``failed`` with ``reason``."""

    code = "WEBHOOK_FAILED"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedObject(WebhookError):
    """The event's ``data.object`` does not have the shape the handler needs."""

    code = "MALFORMED_OBJECT"


class UnknownObject(WebhookError):
    """The event refers to an object or organization that does not exist here."""

    code = "UNKNOWN_OBJECT"


class CatalogMismatch(WebhookError):
    """A Stripe price or product carries our lookup key / plan uid but contradicts the plan."""

    code = "CATALOG_MISMATCH"


class IgnoredEvent(Exception):
    """The event is authentic but deliberately not applied, e.g. older than what was applied."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientWebhookError(Exception):
    """Applying the event failed for a reason that may pass (a dependency is unavailable).

    The endpoint answers 503 so Stripe redelivers; nothing is recorded as applied.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidSignature(Exception):
    """The request is not a verifiable, recent Stripe delivery. Never tells the sender why."""


class MalformedEvent(Exception):
    """The body is authentic but is not a Stripe event envelope (bad JSON, missing fields)."""
