"""``Customer``: the one Stripe customer of an organization, and its saved payment methods as
Stripe last showed them (``services.payment_methods`` keeps that view true)."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document
from pydantic import BaseModel, Field
from pymongo import IndexModel

from revenue_engine.clock import utcnow


class SavedPaymentMethod(BaseModel):
    """One payment method saved to the customer at Stripe (a card, or a bank account)."""

    id: str
    type: str
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


class Customer(Document):
    organization_id: str
    stripe_customer_id: str
    email: str | None = None
    name: str | None = None
    #: ``invoice_settings.default_payment_method`` and ``default_source`` at Stripe.
    default_payment_method: str | None = None
    default_source: str | None = None
    payment_methods: list[SavedPaymentMethod] = Field(default_factory=list)
    #: When Stripe was read for the view above (a later read only is written over it).
    payment_methods_seen_at: datetime | None = None
    #: Changes of the default made through the engine: part of the next change's intent.
    default_changes: int = 0
    #: The latest SetupIntent handed out, handed out again while it is still unused.
    setup_intent_id: str | None = None
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
