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


@strawberry.enum(description="What an add-on does to its feature.")
class AddonKind(enum.Enum):
    PACK = strawberry.enum_value(
        "pack", description="Licensed: each unit bought raises the limit by `packSize`."
    )
    METERED = strawberry.enum_value(
        "metered",
        description="Overage: usage beyond the included quantity is billed per package of "
        "`packageSize` units (rounded up per period) on the next invoice.",
    )


@strawberry.type(
    description="An optional add-on of a plan: a pack that raises a limit, or the metered "
    "overage price of a feature. Prices are per pack, or per package of `packageSize` units "
    "beyond the included quantity."
)
class Overage:
    key: str
    name: str
    unit: str
    prices: list[Price]
    kind: AddonKind | None = strawberry.field(
        description="Null only for an add-on stored before kinds existed (it does nothing)."
    )
    feature: str | None = strawberry.field(description="The entitlement the add-on acts on.")
    pack_size: int | None = strawberry.field(description="`PACK`: how much one unit raises.")
    package_size: int | None = strawberry.field(
        description="`METERED`: the units beyond the included quantity one package holds."
    )


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
    metered: list[str] = strawberry.field(
        description="Entitlements counted per billing period from reported usage; the "
        "entitlement is the included quantity per month (a yearly period includes 12 months')."
    )
    active: bool
    sort_order: int
    prices: list[Price]
    overages: list[Overage]
    per_seat: bool = strawberry.field(
        description="Priced per seat: `prices` are per seat, a purchase buys `minSeats` to "
        "`maxSeats` of them, and the `seats` entitlement is the number bought."
    )
    min_seats: int | None = strawberry.field(
        description="The fewest seats a purchase buys (per-seat plans; null otherwise)."
    )
    max_seats: int | None = strawberry.field(
        description="The most seats a subscription holds (null: no bound of the plan's)."
    )

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
        kind=AddonKind(overage.kind.value) if overage.kind else None,
        feature=overage.feature,
        pack_size=overage.pack_size,
        package_size=overage.package_size,
    )


def plan_type(plan: SubscriptionPlan) -> Plan:
    return Plan(
        uid=strawberry.ID(plan.uid),
        name=plan.name,
        description=plan.description,
        features=list(plan.features),
        entitlements=[entitlement_type(k, v) for k, v in sorted(plan.entitlements.items())],
        metered=list(plan.metered),
        active=plan.active,
        sort_order=plan.sort_order,
        prices=[price_type(p) for p in plan.prices],
        overages=[overage_type(o) for o in plan.overages],
        per_seat=plan.per_seat,
        min_seats=plan.min_seats if plan.per_seat else None,
        max_seats=plan.max_seats if plan.per_seat else None,
    )


@strawberry.input
class PriceInput:
    interval: BillingInterval
    amount: int = strawberry.field(description="Minor units; must not be negative.")
    currency: str
    lookup_key: str | None = None


@strawberry.input(
    description="An add-on: `kind` with `feature` and `packSize` (PACK) or "
    "`packageSize` (METERED, the feature listed in the plan's `metered`)."
)
class OverageInput:
    key: str
    name: str
    unit: str = "unit"
    prices: list[PriceInput]
    # Optional in the schema so that an input without it gets the validation's message.
    kind: AddonKind | None = None
    feature: str | None = None
    pack_size: int | None = None
    package_size: int | None = None


@strawberry.input(
    description="A quota (`limit`, or `unlimited`) or a switch (`enabled` without a limit)."
)
class EntitlementInput:
    key: str
    enabled: bool = True
    limit: int | None = None
    unlimited: bool = False


@strawberry.input(description="A whole plan; `upsertPlan` replaces the stored plan with it.")
class PlanInput:
    uid: strawberry.ID
    name: str
    description: str = ""
    features: list[str] = strawberry.field(default_factory=list)
    entitlements: list[EntitlementInput] = strawberry.field(default_factory=list)
    metered: list[str] = strawberry.field(default_factory=list)
    active: bool = True
    sort_order: int = 0
    prices: list[PriceInput]
    overages: list[OverageInput] = strawberry.field(default_factory=list)
    per_seat: bool = strawberry.field(
        default=False,
        description="Prices are per seat; the `seats` entitlement is the number bought (leave "
        "it out of `entitlements`).",
    )
    min_seats: int | None = strawberry.field(
        default=None, description="Per-seat plans: the fewest seats a purchase buys (default 1)."
    )
    max_seats: int | None = strawberry.field(
        default=None, description="Per-seat plans: the most seats (default: no bound)."
    )


@strawberry.type
class PlanPayload:
    plan: Plan


UpsertPlanResult = Annotated[
    PlanPayload | ValidationError | AlreadyExistsError, strawberry.union("UpsertPlanResult")
]
ArchivePlanResult = Annotated[PlanPayload | NotFoundError, strawberry.union("ArchivePlanResult")]
