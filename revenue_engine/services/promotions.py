"""Promotion codes: will Stripe honour the code a customer typed, for this purchase?

A purchase (Checkout, ``createSubscription``, a plan change) that names a ``promotionCode`` is
checked here before anything is written. The only requests are reads: the codes spelled so
(``promotion_codes.list`` by ``code``, their coupons expanded with ``applies_to``), and, for a
first-time-only code, whether the customer has paid an invoice. The purchase then hands Stripe
``discounts=[{promotion_code: <id>}]`` and Stripe applies its own rules once more.

Reasons a code is refused (``PromotionCodeRejected.reason``), in the order they are checked:

==================  ==================================================================
UNKNOWN             no such code, or one restricted to another customer (answered alike,
                    so a code of someone else's is not revealed)
INACTIVE            switched off, or its coupon deleted / no longer valid
EXPIRED             the code's ``expires_at`` or its coupon's ``redeem_by`` has passed
EXHAUSTED           the code's or its coupon's ``max_redemptions`` are used up
NOT_APPLICABLE      the coupon is limited to other products (``applies_to``), or takes
                    an amount off in another currency
MINIMUM_NOT_MET     the purchase (before discounts, in ``minimum_amount_currency``) is
                    below the code's ``minimum_amount``
FIRST_TIME_ONLY     the code is for customers without a payment, and this one has paid
REFUSED             passed these checks, then Stripe refused it when used (nothing made)
==================  ==================================================================

Stripe matches ``code`` regardless of case; what it returns is checked to carry the code (a
server that ignored the filter must not hand out another code's discount).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from revenue_engine.documents import AddonKind, BillingInterval, Payment, SubscriptionPlan
from revenue_engine.errors import (
    FieldProblem,
    PaymentProviderRejected,
    PromotionCodeProblem,
    PromotionCodeRejected,
)
from revenue_engine.gateway import PromotionCalls
from revenue_engine.gateway.models.catalog import StripeCoupon, StripePromotionCode
from revenue_engine.invariants import present

#: What Stripe accepts as a code: letters, digits and dashes (we take up to 200 of them).
CODE = re.compile(r"[A-Za-z0-9-]{1,200}")


#: Why a code cannot be used (the domain's vocabulary, in ``errors``).
Problem = PromotionCodeProblem


_MESSAGES = {
    Problem.UNKNOWN: "there is no promotion code {code!r}",
    Problem.INACTIVE: "the promotion code {code!r} is not active",
    Problem.EXPIRED: "the promotion code {code!r} has expired",
    Problem.EXHAUSTED: "the promotion code {code!r} has been used up",
    Problem.NOT_APPLICABLE: "the promotion code {code!r} does not apply to this plan",
    Problem.MINIMUM_NOT_MET: "the promotion code {code!r} needs a larger purchase",
    Problem.FIRST_TIME_ONLY: "the promotion code {code!r} is for first-time customers only",
    Problem.REFUSED: "Stripe refused the promotion code {code!r}",
}


def rejected(code: str, problem: Problem) -> PromotionCodeRejected:
    return PromotionCodeRejected(code, problem.value, _MESSAGES[problem].format(code=code))


@dataclass(frozen=True, slots=True)
class Promotion:
    """A code Stripe will take: its id (what Stripe is sent), as typed, and its coupon."""

    id: str
    code: str
    coupon_id: str

    def discounts(self) -> list[dict[str, str]]:
        """The ``discounts`` parameter of a subscription or Checkout Session."""
        return [{"promotion_code": self.id}]


@dataclass(frozen=True, slots=True)
class Purchase:
    """What a code is checked against. ``products``: the Stripe products bought (a plan not
    yet at Stripe has none, so no product-limited coupon applies to it); ``amount``: what the
    recurring items cost per period before discounts, in ``currency``; ``now``: the
    customer's time at Stripe (a test clock's, for a subscription on one)."""

    organization_id: str
    customer_id: str | None
    products: frozenset[str]
    amount: int
    currency: str
    now: datetime


def normalize(
    code: str | None, problems: list[FieldProblem], field: str = "promotionCode"
) -> str | None:
    """The code as Stripe is asked for it (surrounding space dropped); ``None`` stays ``None``.
    A code Stripe could not hold is an input problem (appended), found before any request."""
    if code is None:
        return None
    stripped = code.strip()
    if not CODE.fullmatch(stripped):
        problems.append(FieldProblem(field, "a promotion code is 1-200 letters, digits or dashes"))
        return None
    return stripped


@contextlib.contextmanager
def refused_by_stripe(promotion: Promotion | None) -> Iterator[None]:
    """Stripe's own refusal of the code (its rules moved since our check: the last use was
    taken a moment ago) as ``PromotionCodeRejected`` (REFUSED); Stripe wrote nothing."""
    try:
        yield
    except PaymentProviderRejected as exc:
        if promotion is None or not (exc.param or "").startswith("discounts"):
            raise
        raise PromotionCodeRejected(
            promotion.code, Problem.REFUSED.value, f"Stripe refused the promotion code: {exc}"
        ) from exc


def purchase_of(
    organization_id: str,
    customer_id: str | None,
    plan: SubscriptionPlan,
    interval: BillingInterval,
    addon_keys: list[str],
    now: datetime,
    *,
    base_quantity: int = 1,
) -> Purchase:
    """The purchase of ``plan`` at ``interval`` with ``addon_keys`` (checked to be offered):
    the base price times ``base_quantity`` plus one of each pack; a metered add-on costs
    nothing up front but is one of the products bought."""
    price = present(plan.price_for(interval), f"plan {plan.uid!r}'s {interval.value} price")
    products = {plan.stripe_product_id} if plan.stripe_product_id else set()
    amount = price.amount * base_quantity
    for key in addon_keys:
        addon = plan.addon(key)
        if addon is None:
            continue
        if addon.stripe_product_id:
            products.add(addon.stripe_product_id)
        addon_price = addon.price_for(interval)
        if addon.kind is AddonKind.PACK and addon_price is not None:
            amount += addon_price.amount
    return Purchase(
        organization_id=organization_id,
        customer_id=customer_id,
        products=frozenset(products),
        amount=amount,
        currency=price.currency.lower(),
        now=now,
    )


def _choose(
    code: str, found: list[StripePromotionCode], customer_id: str | None
) -> StripePromotionCode:
    """The code among Stripe's answers: spelled ``code``, for anyone or for this customer;
    an active one before an inactive one."""
    mine = [
        promo
        for promo in found
        if promo.code.lower() == code.lower() and promo.customer in (None, customer_id)
    ]
    if not mine:
        raise rejected(code, Problem.UNKNOWN)
    mine.sort(key=lambda promo: not promo.active)
    return mine[0]


def _at(timestamp: int | None) -> datetime | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC)


async def _coupon(gateway: PromotionCalls, promo: StripePromotionCode) -> StripeCoupon:
    coupon = promo.coupon_ref
    if isinstance(coupon, StripeCoupon) and "applies_to" in coupon.model_fields_set:
        return coupon
    # Not expanded as asked (or an older shape): read the coupon itself.
    coupon_id = coupon.id if isinstance(coupon, StripeCoupon) else coupon
    if not coupon_id:
        raise rejected(promo.code, Problem.INACTIVE)
    return await gateway.retrieve_coupon(coupon_id)


def _judge(code: str, promo: StripePromotionCode, coupon: StripeCoupon, purchase: Purchase) -> None:
    """Every rule that needs no further request (see the module's table)."""
    redeem_by = _at(coupon.redeem_by)
    expires_at = _at(promo.expires_at)
    if coupon.deleted:
        raise rejected(code, Problem.INACTIVE)
    if (expires_at is not None and purchase.now >= expires_at) or (
        redeem_by is not None and purchase.now > redeem_by
    ):
        raise rejected(code, Problem.EXPIRED)
    if promo.used_up or coupon.used_up:
        raise rejected(code, Problem.EXHAUSTED)
    if not promo.active or coupon.valid is False:
        raise rejected(code, Problem.INACTIVE)
    currency = (coupon.currency or "").lower()
    if coupon.amount_off is not None and currency != purchase.currency:
        raise rejected(code, Problem.NOT_APPLICABLE)
    products = coupon.applies_to.products if coupon.applies_to else None
    if products is not None and not set(products) & purchase.products:
        raise rejected(code, Problem.NOT_APPLICABLE)
    restrictions = promo.restrictions
    minimum = restrictions.minimum_amount if restrictions else None
    if restrictions is not None and minimum is not None:
        minimum_currency = (restrictions.minimum_amount_currency or "").lower()
        if minimum_currency != purchase.currency or purchase.amount < minimum:
            raise rejected(code, Problem.MINIMUM_NOT_MET)


async def _has_paid(gateway: PromotionCalls, purchase: Purchase) -> bool:
    """A successful one-time payment of the organization, or a paid invoice at Stripe."""
    paid_here = await Payment.find(
        {"organization_id": purchase.organization_id, "status": "succeeded"}
    ).count()
    if paid_here:
        return True
    if purchase.customer_id is None:
        return False
    return await gateway.has_paid_invoice(purchase.customer_id)


async def check_promotion_code(
    gateway: PromotionCalls,
    code: str,
    purchase: Purchase,
    *,
    applied: frozenset[str] = frozenset(),
) -> Promotion:
    """The promotion code ``code`` if Stripe will honour it for ``purchase``; else
    ``PromotionCodeRejected`` with the reason (see the module). Reads only. A code in
    ``applied`` (already on the subscription) is taken as it is: Stripe keeps it, and its last
    redemption may well have been this one."""
    found = await gateway.find_promotion_codes(code)
    promo = _choose(code, found, purchase.customer_id)
    coupon = await _coupon(gateway, promo)
    if promo.id in applied:
        return Promotion(id=promo.id, code=promo.code, coupon_id=coupon.id)
    _judge(code, promo, coupon, purchase)
    first_time = promo.restrictions is not None and promo.restrictions.first_time_transaction
    if first_time and await _has_paid(gateway, purchase):
        raise rejected(code, Problem.FIRST_TIME_ONLY)
    return Promotion(id=promo.id, code=promo.code, coupon_id=coupon.id)
