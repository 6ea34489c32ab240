"""Resolvers of seat changes and change previews: each unpacks its input, calls one service,
converts."""

from __future__ import annotations

from revenue_engine.context import Info
from revenue_engine.documents import BillingInterval
from revenue_engine.resolvers.billing import subscription_status_type
from revenue_engine.schema.billing import ProrationBehavior, SubscriptionPayload
from revenue_engine.schema.previews import (
    PreviewChangeInput,
    SubscriptionChangePreview,
    preview_type,
)
from revenue_engine.services import previews, seats, subscriptions


async def preview_subscription_change(
    info: Info, data: PreviewChangeInput
) -> SubscriptionChangePreview:
    ctx = info.context
    preview = await previews.preview_subscription_change(
        ctx.gateway,
        ctx.settings,
        ctx.require_principal(),
        plan_uid=data.plan_uid,
        interval=BillingInterval(data.billing_interval.value) if data.billing_interval else None,
        overages=list(data.overages) if data.overages is not None else None,
        seats=data.seats,
        proration=subscriptions.ProrationBehavior(data.proration_behavior.value),
        promotion_code=data.promotion_code,
    )
    return preview_type(preview)


async def update_seats(
    info: Info, quantity: int, proration_behavior: ProrationBehavior
) -> SubscriptionPayload:
    ctx = info.context
    doc = await seats.update_seats(
        ctx.gateway,
        ctx.require_principal(),
        quantity=quantity,
        proration=subscriptions.ProrationBehavior(proration_behavior.value),
        request_id=ctx.request_id,
    )
    return SubscriptionPayload(subscription=await subscription_status_type(info, doc))
