"""The subscription's read model (``StripeSubscription``) and the price it bills
(``StripePrice``), with a listing's unreadable items (``UnreadableSubscription``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from revenue_engine.errors import MalformedStripeObject
from revenue_engine.gateway.models.base import ExpandableId, StripeModel, list_data, parse_model


class StripeRecurring(StripeModel):
    """A recurring price's billing: interval, and ``metered`` (with its meter) or ``licensed``."""

    interval: str | None = None
    interval_count: int | None = None
    usage_type: str | None = None
    meter: str | None = None


class StripePrice(StripeModel):
    id: Annotated[str, Field(min_length=1)]
    lookup_key: str | None = None
    recurring: StripeRecurring | None = None
    unit_amount: int | None = None
    currency: str | None = None
    product: ExpandableId = None

    @property
    def metered(self) -> bool:
        return self.recurring is not None and self.recurring.usage_type == "metered"


class StripeSubscriptionItem(StripeModel):
    """One item; since API 2025-03-31 the billing period lives here. Stripe leaves
    ``quantity`` out on a metered item."""

    id: Annotated[str, Field(min_length=1)]
    price: StripePrice
    quantity: int | None = None
    current_period_start: int | None = None
    current_period_end: int | None = None


class DiscountCoupon(StripeModel):
    """A discount's coupon, expanded: what it takes off and for how long."""

    id: str | None = None
    name: str | None = None
    percent_off: float | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration: str | None = None
    duration_in_months: int | None = None


class DiscountPromotionCode(StripeModel):
    """A discount's promotion code, expanded: its id and the code the customer typed."""

    id: str | None = None
    code: str | None = None


class DiscountSource(StripeModel):
    """Where a discount comes from (API 2025-09-30 on): its coupon, expanded or an id."""

    coupon: DiscountCoupon | str | None = None


class StripeDiscount(StripeModel):
    """A subscription's discount as sent. Every field may be missing: an event payload carries
    discounts as bare ids, a server may ignore ``expand``; ``services.discounts`` tells a
    discount it can show from one it cannot."""

    id: str | None = None
    source: DiscountSource | None = None
    #: Before API 2025-09-30 the coupon was the discount's own field.
    coupon: DiscountCoupon | str | None = None
    promotion_code: DiscountPromotionCode | str | None = None
    start: int | None = None
    end: int | None = None


class StripeSubscription(StripeModel):
    """What the engine reads of a Stripe subscription (``services.reconcile`` turns it into our
    ``Subscription``).

    ``customer`` is required but may be empty as sent: the reconciler refuses a subscription of
    no customer with its own message. ``discounts`` holds each discount as sent: the read model
    when an object (expanded, its coupon expanded or not), the id when a bare id.
    """

    object: Literal["subscription"]
    id: Annotated[str, Field(min_length=1)]
    status: Annotated[str, Field(min_length=1)]
    customer: ExpandableId
    metadata: dict[str, str] = Field(default_factory=dict)
    items: Annotated[list[StripeSubscriptionItem], BeforeValidator(list_data)] = Field(
        default_factory=list
    )
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    trial_start: int | None = None
    trial_end: int | None = None
    latest_invoice: ExpandableId = None
    test_clock: ExpandableId = None
    default_payment_method: ExpandableId = None
    discounts: list[StripeDiscount | str] | None = None


def parse_subscription(data: Any) -> StripeSubscription:
    """``data`` (Stripe's JSON of a subscription: a gateway answer, an event's object, a
    session's expanded ``subscription``) as the read model; ``MalformedStripeObject`` when it is
    not one (the validation error is its cause)."""
    return parse_model(StripeSubscription, "subscription", data)


@dataclass(frozen=True, slots=True)
class UnreadableSubscription:
    """An item of a subscription listing that is not a subscription the engine can read: its
    id (as listed, for the listing's cursor) and why."""

    id: str
    reason: str


def parse_listed(data: Any) -> StripeSubscription | UnreadableSubscription:
    """One item of a listing: the read model, or why not (one bad item spoils no other)."""
    try:
        return parse_subscription(data)
    except MalformedStripeObject as exc:
        raw = data.get("id") if isinstance(data, dict) else None
        return UnreadableSubscription(id=str(raw or "-"), reason=exc.message)
