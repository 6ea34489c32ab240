"""Keeping the plan catalog's Stripe products and prices in step (idempotent by lookup key).

A plan price is found at Stripe by its ``lookup_key``; when none carries that key and matches
what the catalog says, a new price is created and takes the lookup key over
(``transfer_lookup_key``), since Stripe prices are immutable. What must match: amount,
currency, interval, and the kind of price — a plan price or a pack is licensed (billed per unit
up front); a metered add-on is a metered price on its feature's meter (``services.meters``)
that bills packages of ``package_size`` units, rounded up
(``transform_quantity={divide_by: package_size, round: up}``), at ``unit_amount`` per package.
A licensed price under a metered add-on's lookup key is no match, nor the reverse. Keys are
derived from the catalog content, so a retried sync creates nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from revenue_engine.documents import (
    AddonKind,
    BillingInterval,
    Overage,
    PlanPrice,
    SubscriptionPlan,
)
from revenue_engine.errors import ServiceUnavailable
from revenue_engine.gateway import CatalogCalls, idempotency_key
from revenue_engine.gateway.models.catalog import CatalogPrice
from revenue_engine.invariants import present
from revenue_engine.services.meters import CATALOG, ensure_meter
from revenue_engine.services.plan_store import save_if_unchanged
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Metering:
    """What makes a price metered: the meter it reads and the units one package holds."""

    meter_id: str
    package_size: int


@dataclass(frozen=True, slots=True)
class ChosenPrice:
    """A Stripe price of a purchase: the plan's own (``addon`` None) or an add-on's."""

    stripe_price_id: str
    addon: Overage | None = None
    #: How many are bought: the seats of a per-seat plan's price, else 1.
    quantity: int = 1

    @property
    def metered(self) -> bool:
        return self.addon is not None and self.addon.kind is AddonKind.METERED

    def item(self) -> dict[str, Any]:
        """A checkout line item / subscription item. Stripe refuses a quantity on a metered
        price (usage sets what is billed); every other price is bought ``quantity`` times."""
        if self.metered:
            return {"price": self.stripe_price_id}
        return {"price": self.stripe_price_id, "quantity": self.quantity}


async def _ensure_product(
    gateway: CatalogCalls, plan: SubscriptionPlan, key: str, name: str
) -> str:
    product = await gateway.create_product(
        {"name": name, "metadata": {"plan_uid": plan.uid, "catalog_key": key}},
        key=idempotency_key(CATALOG, "product.create", plan.uid, key, name),
    )
    return product.id


def _matches(found: CatalogPrice, price: PlanPrice, metering: Metering | None) -> bool:
    """Is ``found`` (a Stripe price) the price the catalog describes? The lookup key is
    checked too: a server that ignores the ``lookup_keys`` filter must not hand another
    plan's price over."""
    recurring = found.recurring
    transform = found.transform_quantity
    if recurring is None:
        return False
    if metering is None:
        kind_matches = (
            recurring.usage_type == "licensed" and not recurring.meter and transform is None
        )
    else:
        kind_matches = (
            recurring.usage_type == "metered"
            and recurring.meter == metering.meter_id
            and transform is not None
            and transform.divide_by == metering.package_size
            and transform.round == "up"
        )
    return (
        kind_matches
        and found.lookup_key == price.lookup_key
        and found.active
        and found.unit_amount == price.amount
        and found.currency == price.currency
        and recurring.interval == price.interval.value
        and recurring.interval_count == 1
    )


def _price_params(
    product_id: str, price: PlanPrice, plan_uid: str, metering: Metering | None
) -> dict[str, Any]:
    recurring: dict[str, Any] = {"interval": price.interval.value}
    params: dict[str, Any] = {
        "product": product_id,
        "unit_amount": price.amount,
        "currency": price.currency,
        "recurring": recurring,
        "lookup_key": price.lookup_key,
        "transfer_lookup_key": True,
        "metadata": {"plan_uid": plan_uid},
    }
    if metering is not None:
        recurring.update(usage_type="metered", meter=metering.meter_id)
        params["transform_quantity"] = {"divide_by": metering.package_size, "round": "up"}
    return params


async def _ensure_price(
    gateway: CatalogCalls,
    product_id: str,
    price: PlanPrice,
    plan_uid: str,
    metering: Metering | None,
) -> str:
    for found in await gateway.find_prices([price.lookup_key]):
        if _matches(found, price, metering):
            return found.id
    intent: list[object] = [price.lookup_key, price.amount, price.currency, product_id]
    if metering is not None:
        # Another meter or package size is another price (and a licensed one's key stays).
        intent += [metering.meter_id, metering.package_size]
    created = await gateway.create_price(
        _price_params(product_id, price, plan_uid, metering),
        key=idempotency_key(CATALOG, "price.create", *intent),
    )
    log.info("stripe price created lookup_key=%s price=%s", price.lookup_key, created.id)
    return created.id


async def ensure_plan_prices(
    gateway: CatalogCalls,
    settings: Settings,
    plan: SubscriptionPlan,
    interval: BillingInterval,
    overage_keys: list[str],
) -> list[ChosenPrice]:
    """The Stripe prices of the plan's price and the chosen add-ons at ``interval`` (the
    plan's first, then the add-ons in the plan's order), creating what is missing at Stripe
    (metered add-ons' meters included) and remembering the ids on the plan.

    The ids are written with a compare-and-set; when another writer changed the plan in
    between, the plan is re-read and the work redone (Stripe calls are keyed: no duplicates)."""
    for _ in range(_CAS_ATTEMPTS):
        seen = plan.updated_at
        chosen, changed = await _ensure(gateway, settings, plan, interval, overage_keys)
        if not changed or await save_if_unchanged(plan, seen):
            return chosen
        fresh = await SubscriptionPlan.get(plan.id)
        if fresh is None:
            raise ServiceUnavailable(f"plan {plan.uid!r} disappeared; retry")
        plan = fresh
    raise ServiceUnavailable(f"plan {plan.uid!r} kept changing; retry")


async def ensure_addon_price(
    gateway: CatalogCalls,
    settings: Settings,
    plan: SubscriptionPlan,
    interval: BillingInterval,
    key: str,
) -> ChosenPrice:
    """The Stripe price of one add-on at ``interval`` (e.g. to add a metered item to a live
    subscription); the add-on must be offered at that interval."""
    chosen = await ensure_plan_prices(gateway, settings, plan, interval, [key])
    return next(c for c in chosen if c.addon is not None and c.addon.key == key)


async def _metering(
    gateway: CatalogCalls, settings: Settings, addon: Overage | None
) -> Metering | None:
    if addon is None or addon.kind is not AddonKind.METERED:
        return None
    # Validated on every save: a metered add-on names its feature and package size.
    feature = present(addon.feature, f"the feature of metered add-on {addon.key!r}")
    package_size = present(addon.package_size, f"the package size of add-on {addon.key!r}")
    meter = await ensure_meter(gateway, settings, feature)
    return Metering(meter.stripe_meter_id, package_size)


async def _ensure(
    gateway: CatalogCalls,
    settings: Settings,
    plan: SubscriptionPlan,
    interval: BillingInterval,
    overage_keys: list[str],
) -> tuple[list[ChosenPrice], bool]:
    changed = False
    if plan.stripe_product_id is None:
        plan.stripe_product_id = await _ensure_product(gateway, plan, "plan", plan.name)
        changed = True
    wanted: list[tuple[PlanPrice, str, Overage | None]] = []
    # Callers choose an interval the plan is offered at.
    base = present(plan.price_for(interval), f"plan {plan.uid!r}'s {interval.value} price")
    wanted.append((base, plan.stripe_product_id, None))
    for overage in plan.overages:
        if overage.key not in overage_keys:
            continue
        if overage.stripe_product_id is None:
            overage.stripe_product_id = await _ensure_product(
                gateway, plan, f"overage:{overage.key}", f"{plan.name}: {overage.name}"
            )
            changed = True
        price = present(
            overage.price_for(interval), f"add-on {overage.key!r}'s {interval.value} price"
        )
        wanted.append((price, overage.stripe_product_id, overage))
    chosen: list[ChosenPrice] = []
    for price, product_id, addon in wanted:
        if price.stripe_price_id is None:
            metering = await _metering(gateway, settings, addon)
            price.stripe_price_id = await _ensure_price(
                gateway, product_id, price, plan.uid, metering
            )
            changed = True
        chosen.append(ChosenPrice(price.stripe_price_id, addon))
    return chosen, changed


async def sync_catalog(gateway: CatalogCalls, settings: Settings) -> list[str]:
    """Make every active plan's prices, and the meters of its metered add-ons, exist at
    Stripe (the ``plans sync`` command)."""
    done: list[str] = []
    for plan in await SubscriptionPlan.find({"active": True}).to_list():
        for addon in plan.overages:
            if addon.kind is AddonKind.METERED and addon.feature:
                await ensure_meter(gateway, settings, addon.feature)
        for price in plan.prices:
            keys = [o.key for o in plan.overages if o.price_for(price.interval)]
            await ensure_plan_prices(gateway, settings, plan, price.interval, keys)
        done.append(plan.uid)
    return done
