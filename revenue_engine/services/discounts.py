"""Reading Stripe's discounts: a subscription's ``discounts`` (``gateway.models``'
``StripeDiscount``) into ``AppliedDiscount`` rows. Pure: no Stripe calls, no writes. (What an
invoice's discounts took off is the invoice model's ``discount_amount``.)

The gateway expands a subscription's ``discounts.source.coupon`` and ``discounts.promotion_code``
on every read and write (``gateway.client.SUBSCRIPTION_EXPAND``); a subscription object whose
discounts are bare ids (an event payload, a server that ignored ``expand``) says nothing we can
show, and :func:`applied_discounts` answers ``None`` for it: the stored view is left as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from revenue_engine.documents import AppliedDiscount
from revenue_engine.gateway.models.subscription import (
    DiscountCoupon,
    DiscountPromotionCode,
    StripeDiscount,
)


def _ts(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _coupon_of(discount: StripeDiscount) -> DiscountCoupon | str | None:
    """The current API's ``source.coupon``; before 2025-09-30 it was ``coupon``."""
    if discount.source is not None and discount.source.coupon is not None:
        return discount.source.coupon
    return discount.coupon


def applied_discount(discount: StripeDiscount | str) -> AppliedDiscount | None:
    """One expanded discount (its coupon expanded too) as we store it; ``None`` if it is not."""
    if isinstance(discount, str) or not discount.id:
        return None
    coupon = _coupon_of(discount)
    if not isinstance(coupon, DiscountCoupon) or not coupon.id:
        return None
    promo = discount.promotion_code
    expanded = promo if isinstance(promo, DiscountPromotionCode) else None
    return AppliedDiscount(
        stripe_discount_id=discount.id,
        coupon_id=coupon.id,
        coupon_name=coupon.name,
        promotion_code_id=expanded.id if expanded is not None else promo or None,
        promotion_code=expanded.code if expanded is not None else None,
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        duration=coupon.duration or "once",
        duration_in_months=coupon.duration_in_months,
        start=_ts(discount.start),
        end=_ts(discount.end),
    )


def applied_discounts(raw: list[StripeDiscount | str] | None) -> list[AppliedDiscount] | None:
    """A subscription's ``discounts``, or ``None`` when they are not expanded enough to read."""
    if raw is None:
        return []
    found = [applied_discount(d) for d in raw]
    if any(d is None for d in found):
        return None
    return [d for d in found if d is not None]
