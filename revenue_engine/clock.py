"""Wall-clock time: the one place the engine reads "now".

A leaf: it imports nothing of the engine, so documents, services and webhooks all may use it.
Every stored moment is an aware UTC ``datetime``; ``as_utc`` restores the zone where a store
hands back naive UTC. A subscription's own time (a Stripe test clock's) is
``services.clock.subscription_now``, built on this.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as an aware UTC ``datetime``."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (a store that drops tz info returns naive UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def unix_now() -> float:
    """Now, in seconds since the Unix epoch (Stripe's timestamps, JWT claims, rate windows)."""
    return time.time()
