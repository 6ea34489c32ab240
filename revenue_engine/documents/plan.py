"""The plan catalog: ``SubscriptionPlan`` with its prices per interval and overage add-ons."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import pymongo
from beanie import Document
from pydantic import BaseModel, Field, model_validator
from pymongo import IndexModel

#: The unique index on ``SubscriptionPlan.lookup_keys``; a duplicate key error naming it means
#: another plan claims one of the keys.
LOOKUP_KEYS_INDEX = "lookup_keys_unique"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (a store that drops tz info returns naive UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class BillingInterval(enum.StrEnum):
    MONTH = "month"
    YEAR = "year"


class PlanPrice(BaseModel):
    """A recurring price: integer minor units of an ISO currency, per interval."""

    interval: BillingInterval
    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    lookup_key: str
    stripe_price_id: str | None = None


class Overage(BaseModel):
    """An optional add-on charged on top of the plan (e.g. bandwidth, API calls)."""

    key: str
    name: str
    unit: str
    prices: list[PlanPrice]
    stripe_product_id: str | None = None

    def price_for(self, interval: BillingInterval) -> PlanPrice | None:
        return next((p for p in self.prices if p.interval is interval), None)


class SubscriptionPlan(Document):
    uid: str
    name: str
    description: str = ""
    features: list[str] = Field(default_factory=list)
    #: Quotas and flags granted by the plan: an int is a limit, a bool a switch, None unlimited.
    entitlements: dict[str, int | bool | None] = Field(default_factory=dict)
    active: bool = True
    sort_order: int = 0
    prices: list[PlanPrice] = Field(default_factory=list)
    overages: list[Overage] = Field(default_factory=list)
    stripe_product_id: str | None = None
    #: The lookup keys this plan claims: every key of its prices and overage prices, kept here
    #: so a unique (multikey) index makes one key one plan's. Derived from the prices when a
    #: stored plan predates the field; loading the plans file at start writes it
    #: (``services.plans.backfill_lookup_keys``).
    lookup_keys: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "subscription_plans"
        indexes = [
            IndexModel([("uid", pymongo.ASCENDING)], unique=True, name="uid_unique"),
            IndexModel([("active", pymongo.ASCENDING), ("sort_order", pymongo.ASCENDING)]),
            # Partial: a plan without keys (an empty list, or a document older than the field)
            # is not indexed; MongoDB would otherwise index it as one null/undefined key.
            IndexModel(
                [("lookup_keys", pymongo.ASCENDING)],
                unique=True,
                name=LOOKUP_KEYS_INDEX,
                partialFilterExpression={"lookup_keys": {"$type": "string"}},
            ),
        ]

    @model_validator(mode="after")
    def _derive_lookup_keys(self) -> SubscriptionPlan:
        if "lookup_keys" not in self.model_fields_set:
            self.lookup_keys = self.price_lookup_keys()
        return self

    def price_lookup_keys(self) -> list[str]:
        """The lookup keys the prices carry: plan prices, then overage prices."""
        keys = [p.lookup_key for p in self.prices]
        keys.extend(p.lookup_key for o in self.overages for p in o.prices)
        return keys

    def price_for(self, interval: BillingInterval) -> PlanPrice | None:
        return next((p for p in self.prices if p.interval is interval), None)
