"""A subscription's own time: the time its periods, grace windows and usage are counted in."""

from __future__ import annotations

from datetime import UTC, datetime

from revenue_engine.clock import as_utc, utcnow
from revenue_engine.documents import Subscription


def subscription_now(subscription: Subscription) -> datetime:
    """Now on the subscription's own time: ours, or for a subscription on a Stripe test clock
    the clock's time as last seen — the ``created`` of the latest applied event, and never
    before the current period started."""
    if subscription.test_clock is None:
        return utcnow()
    seen = [
        as_utc(t)
        for t in (
            subscription.current_period_start,
            datetime.fromtimestamp(subscription.last_event_created, tz=UTC)
            if subscription.last_event_created is not None
            else None,
        )
        if t is not None
    ]
    return max(seen) if seen else utcnow()
