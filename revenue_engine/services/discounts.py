"""Reading Stripe's discounts: a subscription's ``discounts`` into ``AppliedDiscount`` rows, and
what an invoice (or one of its lines) had taken off. Pure: no Stripe calls, no writes.

The gateway expands a subscription's ``discounts.source.coupon`` and ``discounts.promotion_code``
on every read and write (``gateway.client.SUBSCRIPTION_EXPAND``); a subscription object whose
discounts are bare ids (an event payload, a server that ignored ``expand``) says nothing we can
show, and :func:`applied_discounts` answers ``None`` for it: the stored view is left as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from revenue_engine.documents import AppliedDiscount


def _ts(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _coupon_of(discount: dict[str, Any]) -> Any:
    """The current API's ``source.coupon``; before 2025-09-30 it was ``coupon``."""
    source = discount.get("source")
    if isinstance(source, dict) and "coupon" in source:
        return source.get("coupon")
    return discount.get("coupon")


def applied_discount(discount: Any) -> AppliedDiscount | None:
    """One expanded discount (its coupon expanded too) as we store it; ``None`` if it is not."""
    if not isinstance(discount, dict) or not isinstance(discount.get("id"), str):
        return None
    coupon = _coupon_of(discount)
    if not isinstance(coupon, dict) or not isinstance(coupon.get("id"), str):
        return None
    promo = discount.get("promotion_code")
    promo_id = promo.get("id") if isinstance(promo, dict) else promo
    percent = coupon.get("percent_off")
    return AppliedDiscount(
        stripe_discount_id=discount["id"],
        coupon_id=coupon["id"],
        coupon_name=coupon.get("name") if isinstance(coupon.get("name"), str) else None,
        promotion_code_id=promo_id if isinstance(promo_id, str) else None,
        promotion_code=promo.get("code") if isinstance(promo, dict) else None,
        percent_off=float(percent) if isinstance(percent, int | float) else None,
        amount_off=_int(coupon.get("amount_off")),
        currency=coupon.get("currency") if isinstance(coupon.get("currency"), str) else None,
        duration=str(coupon.get("duration") or "once"),
        duration_in_months=_int(coupon.get("duration_in_months")),
        start=_ts(discount.get("start")),
        end=_ts(discount.get("end")),
    )


def applied_discounts(raw: Any) -> list[AppliedDiscount] | None:
    """A subscription's ``discounts`` list, or ``None`` when it is not expanded enough to read
    (nor a list at all)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        return None
    found = [applied_discount(d) for d in raw]
    if any(d is None for d in found):
        return None
    return [d for d in found if d is not None]


def _sum(rows: Any) -> int:
    if not isinstance(rows, list):
        return 0
    return sum(_int(r.get("amount")) or 0 for r in rows if isinstance(r, dict))


def invoice_discount_total(invoice: dict[str, Any]) -> int:
    """What the invoice's discounts took off (its ``total_discount_amounts``)."""
    return _sum(invoice.get("total_discount_amounts"))


def line_discount_total(line: dict[str, Any]) -> int:
    """What discounts took off one invoice line (its ``discount_amounts``)."""
    return _sum(line.get("discount_amounts"))
