"""``StripeRateLimit``: the field extension on every mutation that calls Stripe.

Before the resolver runs it counts the call against the caller's organization
(``RATE_LIMIT_STRIPE_MUTATIONS`` per ``RATE_LIMIT_WINDOW_SECONDS``); over the limit it raises
``RateLimited``, which the field's result union returns as ``RetryableError`` with
``code: RATE_LIMITED`` and ``retryAfterSeconds``. Nothing reaches Stripe. Anonymous calls pass
through to the resolver, which refuses them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.extensions import FieldExtension

from revenue_engine.context import Info
from revenue_engine.services import rate_limits

BUCKET = "stripe"


class StripeRateLimit(FieldExtension):
    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        context = info.context
        if context.principal is not None:
            settings = context.settings
            await rate_limits.hit(
                context.principal.organization_id,
                BUCKET,
                limit=settings.rate_limit_stripe_mutations,
                window_seconds=settings.rate_limit_window_seconds,
            )
        return await next_(source, info, **kwargs)
