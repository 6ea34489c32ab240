"""Re-reading subscriptions from Stripe and applying them (the fresh-truth path)."""

from __future__ import annotations

from revenue_engine.documents import AuditSource, Subscription
from revenue_engine.documents.plan import utcnow
from revenue_engine.gateway import StripeGateway
from revenue_engine.services.reconcile import apply_subscription


async def refresh_subscription(
    gateway: StripeGateway,
    stripe_subscription_id: str,
    *,
    source: AuditSource,
    reference: str | None = None,
) -> Subscription:
    """Fetch the subscription from Stripe and apply it. The observation time is taken before
    the request is sent: what comes back is at least that fresh, so a slower, older read can
    never win over a later one."""
    observed_at = utcnow()
    obj = await gateway.retrieve_subscription(stripe_subscription_id)
    return await apply_subscription(
        obj, source=source, reference=reference, observed_at=observed_at
    )
