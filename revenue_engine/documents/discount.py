"""``AppliedDiscount``: a Stripe discount as our subscription view stores it (embedded)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AppliedDiscount(BaseModel):
    """One discount on a subscription: where it comes from (a promotion code's coupon, or a
    bare coupon), what it takes off and for how long (``end`` None: forever, or once)."""

    stripe_discount_id: str
    coupon_id: str
    coupon_name: str | None = None
    #: The promotion code's Stripe id and customer-facing code, when one was redeemed.
    promotion_code_id: str | None = None
    promotion_code: str | None = None
    percent_off: float | None = None
    #: Minor units of ``currency``.
    amount_off: int | None = None
    currency: str | None = None
    #: ``once``, ``repeating`` or ``forever``.
    duration: str
    duration_in_months: int | None = None
    start: datetime | None = None
    end: datetime | None = None
