"""``CheckoutSession``: a Stripe Checkout started by an organization (pending → done)."""

from __future__ import annotations

import enum
from datetime import datetime

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel

from revenue_engine.clock import utcnow
from revenue_engine.documents.plan import BillingInterval


class CheckoutStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    EXPIRED = "expired"


class CheckoutSession(Document):
    stripe_session_id: str
    organization_id: str
    stripe_customer_id: str
    plan_uid: str
    interval: BillingInterval
    overages: list[str] = Field(default_factory=list)
    trial_days: int | None = None
    #: The Stripe promotion code (``promo_…``) the session applies, checked when it was made.
    promotion_code_id: str | None = None
    #: The base price's quantity: a per-seat plan's seats, else 1.
    seats: int = 1
    success_path: str | None = None
    cancel_path: str | None = None
    url: str | None = None
    status: CheckoutStatus = CheckoutStatus.PENDING
    payment_status: str = "unpaid"
    stripe_subscription_id: str | None = None
    #: Which attempt of this organization this is (part of the idempotency intent).
    attempt: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None

    class Settings:
        name = "checkout_sessions"
        indexes = [
            IndexModel(
                [("stripe_session_id", pymongo.ASCENDING)], unique=True, name="stripe_id_unique"
            ),
            IndexModel(
                [("organization_id", pymongo.ASCENDING), ("created_at", pymongo.DESCENDING)]
            ),
        ]
