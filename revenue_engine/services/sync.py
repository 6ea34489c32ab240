"""Re-reading subscriptions from Stripe and applying them (the fresh-truth path)."""

from __future__ import annotations

from revenue_engine.clock import utcnow
from revenue_engine.documents import AuditSource, Subscription
from revenue_engine.gateway import SubscriptionCalls
from revenue_engine.services.reconcile import apply_subscription


async def refresh_subscription(
    gateway: SubscriptionCalls,
    stripe_subscription_id: str,
    *,
    source: AuditSource,
    reference: str | None = None,
    event_created: int | None = None,
) -> Subscription:
    """Fetch the subscription from Stripe and apply it. The observation time is taken before
    the request is sent: what comes back is at least that fresh, so a slower, older read can
    never win over a later one.

    ``event_created`` is the ``created`` of the event that caused the re-read: the read began
    after that event was delivered, so our copy now includes every change made before it. It
    becomes the subscription's ``last_event_created`` watermark (only ever raised)."""
    observed_at = utcnow()
    obj = await gateway.retrieve_subscription(stripe_subscription_id)
    applied = await apply_subscription(
        obj, source=source, reference=reference, observed_at=observed_at
    )
    if event_created is not None and (applied.last_event_created or 0) < event_created:
        # Raised only (a conditional $set: a concurrent later event's value is kept).
        await Subscription.find_one(
            {
                "_id": applied.id,
                "$or": [
                    {"last_event_created": None},
                    {"last_event_created": {"$lt": event_created}},
                ],
            }
        ).update({"$set": {"last_event_created": event_created}})
    return applied
