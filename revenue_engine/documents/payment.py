"""``Payment``: a one-time payment intent of an organization and what was refunded."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel

from revenue_engine.clock import utcnow


class Payment(Document):
    stripe_payment_intent_id: str
    organization_id: str
    stripe_customer_id: str | None = None
    amount: int
    currency: str
    amount_refunded: int = 0
    status: str
    failure_reason: str | None = None
    #: Hash of (amount, currency, metadata): the duplicate guard looks it up.
    fingerprint: str
    metadata: dict[str, str] = Field(default_factory=dict)
    refund_ids: list[str] = Field(default_factory=list)
    #: Declined confirmations so far (part of the next confirmation's idempotency intent).
    declines: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "payments"
        indexes = [
            IndexModel(
                [("stripe_payment_intent_id", pymongo.ASCENDING)],
                unique=True,
                name="stripe_id_unique",
            ),
            IndexModel(
                [
                    ("organization_id", pymongo.ASCENDING),
                    ("fingerprint", pymongo.ASCENDING),
                    ("created_at", pymongo.DESCENDING),
                ]
            ),
        ]
