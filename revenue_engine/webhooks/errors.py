"""What a webhook handler may raise, and ``OUTCOMES``: the one table of what each raised
error makes of a delivery.

The handlers' own signals (a handler raises the narrowest that fits)::

    Exception
    ├── IgnoredEvent                  not applied on purpose (stale, not ours)
    ├── WebhookError                  permanent: the event cannot be applied (``code``, reason)
    │   ├── MalformedObject           the event's object lacks a field the handler needs
    │   ├── UnknownObject             it refers to something we do not have (and never will)
    │   └── CatalogMismatch           a Stripe price/product contradicts the plan catalog
    └── TransientWebhookError         may pass: a dependency is unavailable

``OUTCOMES`` maps those and the domain errors services raise (``revenue_engine.errors``) to a
verdict; an error takes the row of its nearest class (``outcome_of``):

=================================  ========  ===========================================
raised                             verdict   ledger row, and the answer to Stripe
=================================  ========  ===========================================
``IgnoredEvent``                   ignored   ``ignored`` with the reason; 200
``WebhookError`` (subclasses)      failed    ``failed``, ``CODE: reason``; 200
``MalformedStripeObject``          failed    ``failed``, ``MALFORMED_OBJECT: …``; 200
``StripeNotFound``                 failed    ``failed``, ``NOT_FOUND: … does not exist at
                                             Stripe``; 200
``TransientWebhookError``          retry     released; 503 (Stripe redelivers)
``UnknownOrganization``            retry     released; 503 (the customer document may be
                                             written a moment later by its mutation)
``ServiceUnavailable``,            retry     released; 503
``RateLimited``, ``db.StoreError``,
``TimeoutError``
anything else (a handler bug)      failed    ``failed``, ``Class: message`` (scrubbed); 200
=================================  ========  ===========================================

Why a 200 for a known permanent failure: answering 5xx would make Stripe redeliver the same
event for three days with the same result. The row stays ``failed`` with its reason, visible to
admins (``webhookEvents``), and is replayed once the cause is fixed (``replayWebhookEvent``,
``revenue-engine events replay``).

A transient failure is retried by Stripe, but not forever: after ``MAX_ATTEMPTS`` deliveries
the row is parked as ``failed`` (see ``webhooks.dispatch``), so an event that can never succeed
does not loop. The HTTP status of each outcome is ``webhooks.endpoint.ANSWERS``.

``InvalidSignature`` and ``MalformedEvent`` are raised by the endpoint itself, before anything
is written: both answer 400.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from revenue_engine.db import StoreError
from revenue_engine.errors import (
    DomainError,
    MalformedStripeObject,
    RateLimited,
    ServiceUnavailable,
    StripeNotFound,
    UnknownOrganization,
)
from revenue_engine.logs import scrub


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


# --- the table ---------------------------------------------------------------------------
class Verdict(enum.Enum):
    """What a raised error makes of a delivery (``webhooks.dispatch`` records it)."""

    IGNORED = "ignored"
    FAILED = "failed"
    RETRY = "retry"


def describe(exc: BaseException) -> str:
    """``Class: message`` with anything secret-looking scrubbed (stored and shown to admins)."""
    message = str(exc)
    return scrub(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def _own_reason(exc: IgnoredEvent | TransientWebhookError) -> str:
    return exc.reason


def _failed(exc: WebhookError) -> str:
    return f"{exc.code}: {scrub(exc.reason)}"


def _coded(exc: DomainError) -> str:
    return f"{exc.code}: {scrub(exc.message)}"


def _gone(exc: StripeNotFound) -> str:
    said = scrub(exc.detail) if exc.detail else exc.message
    return f"{exc.code}: an object the event refers to does not exist at Stripe ({said})"


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """Raised ``exception`` (and its subclasses without a row of their own) gives ``verdict``,
    with the reason ``reason`` writes for the ledger row."""

    exception: type[BaseException]
    verdict: Verdict
    reason: Callable[[Any], str]


#: The one mapping of raised errors to webhook outcomes (the module docstring's table).
OUTCOMES: tuple[OutcomeRow, ...] = (
    OutcomeRow(IgnoredEvent, Verdict.IGNORED, _own_reason),
    OutcomeRow(WebhookError, Verdict.FAILED, _failed),
    OutcomeRow(MalformedStripeObject, Verdict.FAILED, _coded),
    OutcomeRow(StripeNotFound, Verdict.FAILED, _gone),
    OutcomeRow(TransientWebhookError, Verdict.RETRY, lambda exc: scrub(exc.reason)),
    OutcomeRow(UnknownOrganization, Verdict.RETRY, describe),
    OutcomeRow(ServiceUnavailable, Verdict.RETRY, describe),
    OutcomeRow(RateLimited, Verdict.RETRY, describe),  # Stripe throttled a re-read
    OutcomeRow(StoreError, Verdict.RETRY, describe),
    OutcomeRow(TimeoutError, Verdict.RETRY, describe),
)

_ROWS = {row.exception: row for row in OUTCOMES}


def outcome_of(exc: BaseException) -> tuple[Verdict, str] | None:
    """The verdict and reason of the row of ``exc``'s nearest class; None when no row maps it
    (a handler bug: ``dispatch`` records it ``failed`` with ``describe``)."""
    for cls in type(exc).__mro__:
        row = _ROWS.get(cls)
        if row is not None:
            return row.verdict, row.reason(exc)
    return None
