"""GraphQL types for the plan catalog and their converters from documents."""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry

from revenue_engine.documents import Overage as OverageDoc
from revenue_engine.documents import PlanPrice, SubscriptionPlan
from revenue_engine.schema.errors import AlreadyExistsError, NotFoundError, ValidationError


@strawberry.enum(description="How often a plan is billed.")
class BillingInterval(enum.StrEnum):
    MONTH = "month"
    YEAR = "year"


@strawberry.type(description="A recurring price in integer minor units of `currency`.")
class Price:
    interval: BillingInterval
    amount: int = strawberry.field(description="Minor units (cents): 1900 = 19.00.")
    currency: str = strawberry.field(description="ISO 4217 code, lower case.")
    lookup_key: str
    stripe_price_id: str | None


@strawberry.type(description="An optional add-on charged on top of a plan.")
class Overage:
    key: str
    name: str
    unit: str
    prices: list[Price]


@strawberry.type(
    description="A quota or a switch granted by a plan: a quota has a `limit` (or is "
    "`unlimited`); a switch is just `enabled`."
)
class Entitlement:
    key: str
    enabled: bool
    limit: int | None
    unlimited: bool = strawberry.field(description="A quota without a limit.")


@strawberry.type(description="A plan of the catalog.")
class Plan:
    uid: strawberry.ID
    name: str
    description: str
    features: list[str]
    entitlements: list[Entitlement]
    active: bool
    sort_order: int
    prices: list[Price]
    overages: list[Overage]

    @strawberry.field(description="The price for one billing interval, if offered.")
    def price(self, interval: BillingInterval) -> Price | None:
        return next((p for p in self.prices if p.interval == interval), None)


def entitlement_type(key: str, value: int | bool | None) -> Entitlement:
    if isinstance(value, bool):
        return Entitlement(key=key, enabled=value, limit=None, unlimited=False)
    if value is None:
        return Entitlement(key=key, enabled=True, limit=None, unlimited=True)
    return Entitlement(key=key, enabled=value > 0, limit=value, unlimited=False)


def price_type(price: PlanPrice) -> Price:
    return Price(
        interval=BillingInterval(price.interval.value),
        amount=price.amount,
        currency=price.currency,
        lookup_key=price.lookup_key,
        stripe_price_id=price.stripe_price_id,
    )


def overage_type(overage: OverageDoc) -> Overage:
    return Overage(
        key=overage.key,
        name=overage.name,
        unit=overage.unit,
        prices=[price_type(p) for p in overage.prices],
    )


def plan_type(plan: SubscriptionPlan) -> Plan:
    return Plan(
        uid=strawberry.ID(plan.uid),
        name=plan.name,
        description=plan.description,
        features=list(plan.features),
        entitlements=[entitlement_type(k, v) for k, v in sorted(plan.entitlements.items())],
        active=plan.active,
        sort_order=plan.sort_order,
        prices=[price_type(p) for p in plan.prices],
        overages=[overage_type(o) for o in plan.overages],
    )


@strawberry.input
class PriceInput:
    interval: BillingInterval
    amount: int = strawberry.field(description="Minor units; must not be negative.")
    currency: str
    lookup_key: str | None = None


@strawberry.input
class OverageInput:
    key: str
    name: str
    unit: str = "unit"
    prices: list[PriceInput]


@strawberry.input
class EntitlementInput:
    key: str
    enabled: bool = True
    limit: int | None = None


@strawberry.input(description="A whole plan; `upsertPlan` replaces the stored plan with it.")
class PlanInput:
    uid: strawberry.ID
    name: str
    description: str = ""
    features: list[str] = strawberry.field(default_factory=list)
    entitlements: list[EntitlementInput] = strawberry.field(default_factory=list)
    active: bool = True
    sort_order: int = 0
    prices: list[PriceInput]
    overages: list[OverageInput] = strawberry.field(default_factory=list)


@strawberry.type
class PlanPayload:
    plan: Plan


UpsertPlanResult = Annotated[
    PlanPayload | ValidationError | AlreadyExistsError, strawberry.union("UpsertPlanResult")
]
ArchivePlanResult = Annotated[PlanPayload | NotFoundError, strawberry.union("ArchivePlanResult")]
