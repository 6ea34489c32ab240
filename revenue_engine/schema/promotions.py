"""GraphQL types of discounts: what a promotion code (or coupon) takes off a subscription."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from revenue_engine.documents import AppliedDiscount


@strawberry.enum(description="How long a discount lasts (Stripe's coupon `duration`).")
class DiscountDuration(enum.Enum):
    ONCE = "once"
    REPEATING = "repeating"
    FOREVER = "forever"


@strawberry.type(description="A discount on the subscription, from a promotion code or coupon.")
class Discount:
    promotion_code: str | None = strawberry.field(
        description="The code the customer entered; null for a coupon applied without one."
    )
    coupon_id: str
    name: str | None
    percent_off: float | None
    amount_off: int | None = strawberry.field(description="Minor units of `currency`.")
    currency: str | None
    duration: DiscountDuration
    duration_in_months: int | None
    start: datetime | None
    end: datetime | None = strawberry.field(
        description="When a repeating discount ends; null: forever, or the next invoice (once)."
    )


def discount_type(doc: AppliedDiscount) -> Discount:
    try:
        duration = DiscountDuration(doc.duration)
    except ValueError:
        duration = DiscountDuration.ONCE
    return Discount(
        promotion_code=doc.promotion_code,
        coupon_id=doc.coupon_id,
        name=doc.coupon_name,
        percent_off=doc.percent_off,
        amount_off=doc.amount_off,
        currency=doc.currency,
        duration=duration,
        duration_in_months=doc.duration_in_months,
        start=doc.start,
        end=doc.end,
    )
