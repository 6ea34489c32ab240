"""The dispatch table and the one place that turns a handler's result into a ledger outcome.

``HANDLERS`` maps a Stripe event type to ``async def handler(event, context) -> None``.
Register a handler by adding its types here (and to docs/webhooks.md's list of events to enable on
the Stripe endpoint; a test keeps the two in step and checks every key is a real event type,
or one of ``DESTINATION_EVENT_TYPES``).

``process(event, claim, context)`` runs the handler for an owned claim and records what its
result makes of it: returned → ``processed``; type not in ``HANDLERS`` or the other livemode →
``ignored`` (recorded in one insert); raised → the verdict of ``webhooks.errors.OUTCOMES``
(ignored, failed with the reason, or retry), where a retry is bounded:

==========================================  ===========  ==================================
retry verdict                               row          outcome
==========================================  ===========  ==================================
on an early delivery                        released     ``RETRY`` (Stripe redelivers)
on the ``MAX_ATTEMPTS``-th try              failed       ``FAILED`` (parked for replay)
first delivery past redelivery              failed       ``FAILED`` (``ledger.give_up_after``;
                                                         a later Stripe delivery retakes it)
on a row Stripe redelivered after it was    released     ``RETRY`` (Stripe evidently still
parked for its age                                       retries: ``Claim.revived``)
on an operator's replay                     released     ``RETRY``
==========================================  ===========  ==================================

The HTTP answer of each outcome is ``webhooks.endpoint.ANSWERS``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable

from revenue_engine.documents import WebhookEventStatus
from revenue_engine.webhooks import ledger
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.errors import Verdict, describe, outcome_of
from revenue_engine.webhooks.event import StripeEvent
from revenue_engine.webhooks.handlers import catalog
from revenue_engine.webhooks.handlers.billing import BILLING_HANDLERS
from revenue_engine.webhooks.handlers.discounts import DISCOUNT_HANDLERS
from revenue_engine.webhooks.handlers.metering import METERING_HANDLERS
from revenue_engine.webhooks.handlers.payment_methods import PAYMENT_METHOD_HANDLERS

log = logging.getLogger(__name__)

Handler = Callable[[StripeEvent, HandlerContext], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    "price.created": catalog.price_changed,
    "price.updated": catalog.price_changed,
    "price.deleted": catalog.price_changed,
    "product.created": catalog.product_changed,
    "product.updated": catalog.product_changed,
    "product.deleted": catalog.product_changed,
    **BILLING_HANDLERS,
    **DISCOUNT_HANDLERS,
    **METERING_HANDLERS,
    **PAYMENT_METHOD_HANDLERS,
}

#: Handled types Stripe does not offer to a webhook endpoint by name (it sends them to event
#: destinations, as ``v1.``-prefixed thin events): left out of the endpoint's
#: ``enabled_events`` and of backfill's listing, which Stripe (and the emulator) refuse them in.
DESTINATION_EVENT_TYPES = frozenset({"billing.meter.error_report_triggered"})
#: The types to enable on the Stripe webhook endpoint (docs/webhooks.md lists them).
ENDPOINT_EVENT_TYPES = sorted(set(HANDLERS) - DESTINATION_EVENT_TYPES)

#: Claims of one event after which a transient failure parks it as ``failed`` (W7: bounded).
MAX_ATTEMPTS = 8


class Outcome(enum.StrEnum):
    """What a delivery (or a replay) achieved; the endpoint maps it to an HTTP status."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"
    DUPLICATE = "duplicate"  # already finished: nothing done
    BUSY = "busy"  # another delivery holds the claim
    RETRY = "retry"  # transient failure: claim released, deliver again later


async def _finish(
    claim: ledger.Claim,
    status: WebhookEventStatus,
    error: str | None,
    outcome: Outcome,
    *,
    parked_for_age: bool = False,
) -> Outcome:
    if not await ledger.finish(claim, status, error, parked_for_age=parked_for_age):
        # Our lease ran out and another delivery re-took the event; its outcome stands.
        log.warning("webhook claim lost event_id=%s", claim.event_id)
    return outcome


def ignore_reason(event: StripeEvent, context: HandlerContext) -> str | None:
    """Why ``event`` is not for us (the other livemode, no handler), or None."""
    if event.livemode != context.livemode:
        return f"livemode={str(event.livemode).lower()} event on a " + (
            "live deployment" if context.livemode else "test-mode deployment"
        )
    if event.type not in HANDLERS:
        return "no handler for this event type"
    return None


async def process(event: StripeEvent, claim: ledger.Claim, context: HandlerContext) -> Outcome:
    """Apply ``event`` under an owned ``claim`` and record the outcome (see the table above).

    Store errors while recording propagate: the caller answers 503 and the lease expires.
    """
    if not claim.owned:
        raise ValueError(f"event {claim.event_id}: processing needs an owned claim")
    ignored = ignore_reason(event, context)
    if ignored is not None:
        return await _finish(claim, WebhookEventStatus.IGNORED, ignored, Outcome.IGNORED)
    handler = HANDLERS[event.type]
    if claim.attempts > MAX_ATTEMPTS and not claim.replay:
        reason = f"gave up: claimed {claim.attempts} times without finishing"
        return await _finish(claim, WebhookEventStatus.FAILED, reason, Outcome.FAILED)
    try:
        await handler(event, context)
    except Exception as exc:
        found = outcome_of(exc)
        if found is None:
            log.exception("webhook handler error event_id=%s type=%s", event.id, event.type)
            return await _finish(claim, WebhookEventStatus.FAILED, describe(exc), Outcome.FAILED)
        verdict, reason = found
        if verdict is Verdict.IGNORED:
            return await _finish(claim, WebhookEventStatus.IGNORED, reason, Outcome.IGNORED)
        if verdict is Verdict.FAILED:
            log.warning(
                "webhook failed event_id=%s type=%s error=%s",
                event.id,
                event.type,
                reason.split(":", 1)[0],
            )
            return await _finish(claim, WebhookEventStatus.FAILED, reason, Outcome.FAILED)
        return await _retry(event, claim, exc, reason)
    return await _finish(claim, WebhookEventStatus.PROCESSED, None, Outcome.PROCESSED)


async def _retry(event: StripeEvent, claim: ledger.Claim, exc: Exception, reason: str) -> Outcome:
    """A retry verdict: release the claim for Stripe's redelivery, or park the row as
    ``failed`` once retrying is over (the module docstring's table)."""
    log.warning(
        "webhook transient failure event_id=%s type=%s attempts=%d error=%s",
        event.id,
        event.type,
        claim.attempts,
        type(exc).__name__,
    )
    gave_up = None
    for_age = False
    if claim.replay:
        pass  # an operator's replay is retried by the operator
    elif claim.attempts >= MAX_ATTEMPTS:
        gave_up = f"gave up after {claim.attempts} attempts"
    elif claim.revived:
        pass  # Stripe redelivered a row parked for its age: it is still retrying
    elif ledger.past_redelivery(claim, event.livemode):
        gave_up = f"gave up (Stripe stops redelivering) after {claim.attempts} attempts"
        for_age = True
    if gave_up is not None:
        error = f"{gave_up}: {reason}"
        return await _finish(
            claim, WebhookEventStatus.FAILED, error, Outcome.FAILED, parked_for_age=for_age
        )
    await ledger.release(claim, f"transient: {reason}")
    return Outcome.RETRY


async def deliver(event: StripeEvent, payload: str, context: HandlerContext) -> Outcome:
    """A verified delivery from Stripe: claim it in the ledger, then process it once."""
    claim = await ledger.claim(event, payload, ignored=ignore_reason(event, context))
    if claim.recorded:
        outcome = Outcome.IGNORED
    elif not claim.owned:
        if claim.status is WebhookEventStatus.PROCESSING:
            return Outcome.BUSY
        return Outcome.DUPLICATE
    else:
        outcome = await process(event, claim, context)
    log.info(
        "webhook event_id=%s type=%s outcome=%s attempts=%d",
        event.id,
        event.type,
        outcome,
        claim.attempts,
    )
    return outcome
