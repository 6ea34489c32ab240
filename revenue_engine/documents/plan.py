"""The plan catalog: ``SubscriptionPlan`` with its prices per interval, metered features and
add-ons.

A numeric entitlement is a *limit* (``seats: 15``); listed in ``metered`` it is a *metered
feature*: a quantity used per billing period, counted from reported usage, with the
entitlement as the included quantity per month (a yearly period includes twelve months').
Every add-on does one of two things to one feature:

* ``pack`` — a licensed pack: each unit bought raises the feature's limit by ``pack_size``;
* ``metered`` — overage: usage beyond the included quantity is billed per package of
  ``package_size`` units (rounded up per period) on the next invoice, through a Stripe Billing
  Meter and a metered price. Without it (or with the subscription's overage switched off) the
  included quantity is a hard cap.
"""

from __future__ import annotations

import enum
from datetime import datetime

import pymongo
from beanie import Delete, Document, Insert, Replace, Save, SaveChanges, Update, after_event
from pydantic import BaseModel, Field, model_validator
from pymongo import IndexModel

from revenue_engine.clock import utcnow

#: The unique index on ``SubscriptionPlan.lookup_keys``; a duplicate key error naming it means
#: another plan claims one of the keys.
LOOKUP_KEYS_INDEX = "lookup_keys_unique"


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


class AddonKind(enum.StrEnum):
    #: Licensed: raises ``feature``'s limit by ``pack_size`` per unit bought, paid up front.
    PACK = "pack"
    #: Metered overage for ``feature``: usage beyond the included quantity, billed in arrears.
    METERED = "metered"


class Overage(BaseModel):
    """An add-on of a plan (see the module docstring). Its prices are per pack (``pack``) or
    per package of ``package_size`` units beyond the included quantity (``metered``).

    ``kind`` is None only for an add-on stored before kinds existed: it changes no entitlement
    and bills no usage; saving the plan again requires a kind."""

    key: str
    name: str
    unit: str
    prices: list[PlanPrice]
    kind: AddonKind | None = None
    #: The entitlement the add-on acts on.
    feature: str | None = None
    #: ``pack``: how much one unit raises the limit.
    pack_size: int | None = None
    #: ``metered``: how many units beyond the included quantity one billed package holds.
    package_size: int | None = None
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
    #: Entitlements counted per billing period from reported usage (numeric ones only).
    metered: list[str] = Field(default_factory=list)
    active: bool = True
    sort_order: int = 0
    prices: list[PlanPrice] = Field(default_factory=list)
    overages: list[Overage] = Field(default_factory=list)
    stripe_product_id: str | None = None
    #: Priced per seat: the plan's prices are per seat, a subscription holds ``min_seats`` to
    #: ``max_seats`` (None: no bound of the plan's) of them as its base item's quantity, and
    #: its ``seats`` entitlement is that quantity.
    per_seat: bool = False
    min_seats: int = 1
    max_seats: int | None = None
    #: The lookup keys this plan claims: every key of its prices and overage prices, kept here
    #: so a unique (multikey) index makes one key one plan's. Derived from the prices when a
    #: stored plan predates the field; loading the plans file at start writes it
    #: (``services.plans_file.backfill_lookup_keys``).
    lookup_keys: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @after_event(Insert, Replace, Save, SaveChanges, Update, Delete)
    async def catalog_written(self) -> None:
        """A document write of a plan (its own ``insert``, ``save``, ...) changes the catalog;
        the services' targeted query updates call ``catalog_changed`` themselves."""
        await catalog_changed()

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

    def seats_problem(self, quantity: int) -> str | None:
        """Why ``quantity`` seats cannot be bought on this plan, or None."""
        if not self.per_seat:
            return f"plan {self.uid!r} is not priced per seat"
        if quantity < self.min_seats:
            return f"plan {self.uid!r} is sold from {self.min_seats} seats"
        if self.max_seats is not None and quantity > self.max_seats:
            return f"plan {self.uid!r} is sold up to {self.max_seats} seats"
        return None

    def addon(self, key: str) -> Overage | None:
        return next((o for o in self.overages if o.key == key), None)

    def metered_addon(self, feature: str) -> Overage | None:
        """The add-on that bills ``feature``'s overage, if the plan offers one."""
        return next(
            (o for o in self.overages if o.kind is AddonKind.METERED and o.feature == feature),
            None,
        )


#: The collection of the catalog's version counter: one document, ``{_id: "plans", version}``.
CATALOG_VERSIONS = "catalog_versions"
_CATALOG_VERSION_ID = "plans"
_local_changes = 0


def local_catalog_changes() -> int:
    """How many catalog writes this process has made (the plan cache's same-instance check)."""
    return _local_changes


async def catalog_changed() -> None:
    """Record a write to the plan catalog: every instance's plan cache rebuilds — this one at
    its next read, the others at their next version check (``services.plan_cache``). Called
    after each write of a plan; a document's own ``insert``/``save``/``replace``/``delete``
    call it through Beanie's event hooks."""
    global _local_changes
    _local_changes += 1
    await (
        SubscriptionPlan.get_motor_collection()
        .database[CATALOG_VERSIONS]
        .update_one({"_id": _CATALOG_VERSION_ID}, {"$inc": {"version": 1}}, upsert=True)
    )


async def catalog_version() -> int:
    """The catalog's version in the store (0 before the first write)."""
    row = await (
        SubscriptionPlan.get_motor_collection()
        .database[CATALOG_VERSIONS]
        .find_one({"_id": _CATALOG_VERSION_ID}, {"version": 1})
    )
    return int((row or {}).get("version") or 0)
