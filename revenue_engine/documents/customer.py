"""``Customer``: the one Stripe customer of an organization."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel

from revenue_engine.documents.plan import utcnow


class Customer(Document):
    organization_id: str
    stripe_customer_id: str
    email: str | None = None
    name: str | None = None
    default_payment_method: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "customers"
        indexes = [
            # One customer per organization: the index decides get-or-create races.
            IndexModel([("organization_id", pymongo.ASCENDING)], unique=True, name="org_unique"),
            IndexModel(
                [("stripe_customer_id", pymongo.ASCENDING)], unique=True, name="stripe_id_unique"
            ),
        ]
