"""``Subscription`` (our view of a Stripe subscription) and its ``AuditEntry`` trail.

Only the reconciler in ``services.reconcile`` writes subscriptions.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import pymongo
from beanie import Document
from pydantic import BaseModel, Field
from pymongo import IndexModel

from revenue_engine.clock import utcnow
from revenue_engine.documents.discount import AppliedDiscount
from revenue_engine.documents.plan import BillingInterval

#: Statuses in which a subscription still exists and may bill: one per organization at a time
#: (a new purchase is refused; cancel / resume / change act on it).
LIVE_STATUSES = frozenset({"incomplete", "trialing", "active", "past_due", "unpaid", "paused"})
#: Statuses Stripe never leaves.
TERMINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})


class AuditSource(enum.StrEnum):
    CHECKOUT_VERIFY = "checkout-verify"
    WEBHOOK = "webhook"
    MUTATION = "mutation"
    RECONCILE = "reconcile"


class SubscriptionItem(BaseModel):
    stripe_item_id: str
    stripe_price_id: str
    lookup_key: str | None = None
    quantity: int = 1
    #: None for the plan's base price, else the overage key.
    overage_key: str | None = None
    #: The feature whose overage this item bills (a metered add-on's price), else None.
    metered_feature: str | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None


class Subscription(Document):
    stripe_subscription_id: str
    organization_id: str
    stripe_customer_id: str
    status: str
    plan_uid: str | None = None
    interval: BillingInterval | None = None
    items: list[SubscriptionItem] = Field(default_factory=list)
    overages: list[str] = Field(default_factory=list)
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    cancel_at: datetime | None = None
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    latest_invoice_id: str | None = None
    #: The Stripe test clock the subscription runs on (test mode only): its time, not ours, is
    #: the subscription's "now".
    test_clock: str | None = None
    #: Stripe's discounts on the subscription (coupons, promotion codes), in Stripe's order.
    discounts: list[AppliedDiscount] = Field(default_factory=list)
    #: The seats held (the base item's quantity) when the plan is priced per seat, else None.
    seats: int | None = None
    #: The plan's entitlements with the packs bought added (metered features: per month).
    entitlements: dict[str, int | bool | None] = Field(default_factory=dict)
    #: Metered features whose overage the organization switched off while the add-on's
    #: metered item is still on the Stripe subscription (kept until the period ends, so the
    #: overage already reported is billed). Written by ``services.overage`` only, never by the
    #: reconciler: usage beyond the included quantity is refused for these features.
    overage_off: list[str] = Field(default_factory=list)
    #: A plan change kept the period's metered item of the previous plan (its overage so far
    #: is billed at the period end); ``services.overage`` swaps it afterwards, then clears this.
    overage_settle: bool = False
    #: When the applied Stripe state was observed; older observations are never applied.
    observed_at: datetime
    #: The latest ``created`` (unix seconds, on Stripe's clock or the object's test clock) of a
    #: subscription/invoice event whose re-read has been applied: an event created in an
    #: earlier second is already included in our copy.
    last_event_created: int | None = None
    #: Incremented on every applied change (optimistic concurrency + idempotency intents).
    version: int = 0
    #: The audit row of the last applied change, written in the same update as the change and
    #: cleared once the row is in ``audit_entries`` (an outbox: a crash in between cannot lose
    #: it — the next apply of this subscription writes it first).
    pending_audit: dict[str, Any] | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "subscriptions"
        indexes = [
            IndexModel(
                [("stripe_subscription_id", pymongo.ASCENDING)],
                unique=True,
                name="stripe_id_unique",
            ),
            IndexModel([("organization_id", pymongo.ASCENDING), ("status", pymongo.ASCENDING)]),
        ]

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


class AuditEntry(Document):
    organization_id: str
    kind: str
    stripe_subscription_id: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    source: AuditSource
    reference: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "audit_entries"
        indexes = [
            IndexModel([("organization_id", pymongo.ASCENDING), ("at", pymongo.ASCENDING)]),
            IndexModel([("stripe_subscription_id", pymongo.ASCENDING)]),
        ]
