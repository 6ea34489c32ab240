"""Keeping the plan catalog's Stripe ids true from Stripe's own price and product objects.

* A **price** belongs to a plan slot (a plan price, or an overage price) by ``lookup_key``.
  An active price whose amount, currency, interval and kind match the slot becomes its
  ``stripe_price_id``; one that contradicts the slot is reported as a mismatch and not linked
  (checkout would otherwise charge an amount the catalog does not show). The kind: a plan
  price or a pack is licensed; a metered add-on's price is metered, on its feature's meter (a
  ``BillingMeter`` we stored), with ``transform_quantity`` dividing by the package size,
  rounded up (see ``services.catalog``). An archived or deleted
  price, or one whose lookup key moved away, is unlinked wherever it is linked.
* A **product** belongs to a plan by ``metadata.plan_uid`` (and to one of its overages with
  ``metadata.overage_key`` too). A product without that metadata is matched through its prices:
  linking a price also links the price's product to the slot's owner when it has none yet.
  Names are not used for matching: they are neither unique nor stable.

Only ids change here; the rest of the plan is the plans file's / admins' business. Each write
is a compare-and-set on the plan's ``updated_at`` so a concurrent change is re-read, not lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId

from revenue_engine.clock import utcnow
from revenue_engine.documents import AddonKind, BillingMeter, Overage, PlanPrice, SubscriptionPlan
from revenue_engine.documents.plan import catalog_changed
from revenue_engine.errors import ServiceUnavailable
from revenue_engine.gateway.models.catalog import CatalogPrice, CatalogProduct
from revenue_engine.invariants import present

_CAS_ATTEMPTS = 5


@dataclass(slots=True)
class CatalogSync:
    """What a sync did: uids of the plans it changed, slots it matched, contradictions."""

    matched: bool = False
    changed: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


Mutation = Callable[[SubscriptionPlan, CatalogSync], bool]


def _slots(plan: SubscriptionPlan) -> list[tuple[SubscriptionPlan | Overage, PlanPrice]]:
    owned: list[tuple[SubscriptionPlan | Overage, PlanPrice]] = [(plan, p) for p in plan.prices]
    for overage in plan.overages:
        owned.extend((overage, p) for p in overage.prices)
    return owned


#: Feature -> the ids among its stored meters (``BillingMeter``) that a price reads.
Meters = dict[str, set[str]]


def _kind_mismatch(owner: SubscriptionPlan | Overage, price: CatalogPrice, meters: Meters) -> str:
    """What the slot's kind of price needs that ``price`` lacks ("" when it has it)."""
    recurring = price.recurring
    usage = recurring.usage_type if recurring else "licensed"
    meter = recurring.meter if recurring else None
    transform = price.transform_quantity
    if not isinstance(owner, Overage) or owner.kind is not AddonKind.METERED:
        if usage == "licensed" and meter is None and transform is None:
            return ""
        return "licensed (per unit, no meter, no transform_quantity)"
    feature = owner.feature or ""
    known = meters.get(feature, set())
    if (
        usage == "metered"
        and meter in known
        and transform is not None
        and (transform.divide_by, transform.round) == (owner.package_size, "up")
    ):
        return ""
    return f"metered on the meter of {feature} per {owner.package_size} units rounded up"


def _mismatch(
    owner: SubscriptionPlan | Overage, slot: PlanPrice, price: CatalogPrice, meters: Meters
) -> str | None:
    recurring = price.recurring
    kind = _kind_mismatch(owner, price, meters)
    if (
        recurring is not None
        and recurring.interval == slot.interval.value
        and recurring.interval_count == 1
        and (price.currency or "").lower() == slot.currency
        and price.unit_amount == slot.amount
        and not kind
    ):
        return None
    says = f"{slot.amount} {slot.currency}/{slot.interval.value}"
    return (
        f"price {price.id} ({price.lookup_key}) is {price.describe()}, "
        f"the plan says {says}{f' {kind}' if kind else ''}"
    )


def _link_price(price: CatalogPrice, linkable: bool, meters: Meters) -> Mutation:
    def mutate(plan: SubscriptionPlan, sync: CatalogSync) -> bool:
        changed = False
        for owner, slot in _slots(plan):
            ours = slot.stripe_price_id == price.id
            named = linkable and slot.lookup_key == price.lookup_key
            if ours or named:
                sync.matched = True
            problem = _mismatch(owner, slot, price, meters) if named else None
            if problem:
                sync.mismatches.append(problem)
            if ours and (not named or problem):
                slot.stripe_price_id = None
                changed = True
            elif named and not problem:
                if not ours:
                    slot.stripe_price_id = price.id
                    changed = True
                if owner.stripe_product_id is None and price.product_id:
                    owner.stripe_product_id = price.product_id
                    changed = True
        return changed

    return mutate


def _link_product(product: CatalogProduct, linkable: bool) -> Mutation:
    uid = product.metadata.get("plan_uid")
    key = product.metadata.get("overage_key")

    def mutate(plan: SubscriptionPlan, sync: CatalogSync) -> bool:
        changed = False
        owners: list[tuple[SubscriptionPlan | Overage, bool]] = [
            (plan, uid == plan.uid and key is None)
        ]
        owners.extend((o, uid == plan.uid and key == o.key) for o in plan.overages)
        for owner, is_target in owners:
            ours = owner.stripe_product_id == product.id
            if ours or is_target:
                sync.matched = True
            if ours and (not linkable or (uid is not None and not is_target)):
                owner.stripe_product_id = None
                changed = True
            elif linkable and is_target and not ours:
                owner.stripe_product_id = product.id
                changed = True
        return changed

    return mutate


async def _update_plan(plan_id: PydanticObjectId, mutate: Mutation, sync: CatalogSync) -> None:
    """Apply ``mutate`` to the stored plan with a compare-and-set on ``updated_at``."""
    for _ in range(_CAS_ATTEMPTS):
        plan = await SubscriptionPlan.get(plan_id)
        if plan is None:
            return
        attempt = CatalogSync()
        if not mutate(plan, attempt):
            sync.matched |= attempt.matched
            sync.mismatches.extend(attempt.mismatches)
            return
        before = plan.updated_at
        after = max(utcnow(), before + timedelta(milliseconds=1))
        result = await SubscriptionPlan.find_one({"_id": plan_id, "updated_at": before}).update(
            {
                "$set": {
                    "prices": [p.model_dump(mode="json") for p in plan.prices],
                    "overages": [o.model_dump(mode="json") for o in plan.overages],
                    "stripe_product_id": plan.stripe_product_id,
                    "updated_at": after,
                }
            }
        )
        if getattr(result, "matched_count", 0):
            await catalog_changed()
            sync.matched |= attempt.matched
            sync.mismatches.extend(attempt.mismatches)
            sync.changed.append(plan.uid)
            return
    raise ServiceUnavailable(f"plan {plan_id} kept changing; retry")


async def _sync(query: list[dict[str, Any]], mutate: Mutation) -> CatalogSync:
    sync = CatalogSync()
    plans = await SubscriptionPlan.find({"$or": query}).sort("uid").to_list()
    for plan in plans:
        await _update_plan(present(plan.id, f"the id of stored plan {plan.uid!r}"), mutate, sync)
    return sync


async def sync_price(price: CatalogPrice, *, deleted: bool = False) -> CatalogSync:
    """Link or unlink ``price`` in every plan slot it belongs to (see the module docstring)."""
    linkable = price.active and not (deleted or price.deleted) and bool(price.lookup_key)
    query: list[dict[str, Any]] = [
        {"prices.stripe_price_id": price.id},
        {"overages.prices.stripe_price_id": price.id},
    ]
    if linkable:
        query += [
            {"prices.lookup_key": price.lookup_key},
            {"overages.prices.lookup_key": price.lookup_key},
        ]
    meters: Meters = {}
    if linkable and price.recurring and price.recurring.meter:
        for row in await BillingMeter.find({"stripe_meter_id": price.recurring.meter}).to_list():
            meters.setdefault(row.feature, set()).add(row.stripe_meter_id)
    return await _sync(query, _link_price(price, linkable, meters))


async def sync_product(product: CatalogProduct, *, deleted: bool = False) -> CatalogSync:
    """Link or unlink ``product`` as a plan's or overage's product."""
    linkable = product.active and not (deleted or product.deleted)
    query: list[dict[str, Any]] = [
        {"stripe_product_id": product.id},
        {"overages.stripe_product_id": product.id},
    ]
    uid = product.metadata.get("plan_uid")
    if uid:
        query.append({"uid": uid})
    return await _sync(query, _link_product(product, linkable))
