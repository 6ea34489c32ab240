"""Keeping the plan catalog's Stripe products and prices in step (idempotent by lookup key).

A plan price is found at Stripe by its ``lookup_key``; when none matches the stored amount and
currency, a new price is created and takes the lookup key over (``transfer_lookup_key``), since
Stripe prices are immutable. Keys are derived from the catalog content, so a retried sync
creates nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from revenue_engine.documents import BillingInterval, PlanPrice, SubscriptionPlan
from revenue_engine.errors import ServiceUnavailable
from revenue_engine.gateway import StripeGateway, idempotency_key
from revenue_engine.services.plans import save_if_unchanged

log = logging.getLogger(__name__)

CATALOG = "catalog"
_CAS_ATTEMPTS = 5


async def _ensure_product(
    gateway: StripeGateway, plan: SubscriptionPlan, key: str, name: str
) -> str:
    product = await gateway.create_product(
        {"name": name, "metadata": {"plan_uid": plan.uid, "catalog_key": key}},
        key=idempotency_key(CATALOG, "product.create", plan.uid, key, name),
    )
    return str(product["id"])


def _matches(found: dict[str, Any], price: PlanPrice) -> bool:
    recurring = found.get("recurring") or {}
    return (
        found.get("unit_amount") == price.amount
        and found.get("currency") == price.currency
        and recurring.get("interval") == price.interval.value
    )


async def _ensure_price(
    gateway: StripeGateway, product_id: str, price: PlanPrice, plan_uid: str
) -> str:
    for found in await gateway.find_prices([price.lookup_key]):
        if _matches(found, price):
            return str(found["id"])
    created = await gateway.create_price(
        {
            "product": product_id,
            "unit_amount": price.amount,
            "currency": price.currency,
            "recurring": {"interval": price.interval.value},
            "lookup_key": price.lookup_key,
            "transfer_lookup_key": True,
            "metadata": {"plan_uid": plan_uid},
        },
        key=idempotency_key(
            CATALOG, "price.create", price.lookup_key, price.amount, price.currency, product_id
        ),
    )
    log.info("stripe price created lookup_key=%s price=%s", price.lookup_key, created["id"])
    return str(created["id"])


async def ensure_plan_prices(
    gateway: StripeGateway,
    plan: SubscriptionPlan,
    interval: BillingInterval,
    overage_keys: list[str],
) -> list[str]:
    """Stripe price ids for the plan's price and the chosen overages at ``interval``,
    creating what is missing at Stripe and remembering the ids on the plan.

    The ids are written with a compare-and-set; when another writer changed the plan in
    between, the plan is re-read and the work redone (Stripe calls are keyed: no duplicates)."""
    for _ in range(_CAS_ATTEMPTS):
        seen = plan.updated_at
        ids, changed = await _ensure(gateway, plan, interval, overage_keys)
        if not changed or await save_if_unchanged(plan, seen):
            return ids
        fresh = await SubscriptionPlan.get(plan.id)
        if fresh is None:
            raise ServiceUnavailable(f"plan {plan.uid!r} disappeared; retry")
        plan = fresh
    raise ServiceUnavailable(f"plan {plan.uid!r} kept changing; retry")


async def _ensure(
    gateway: StripeGateway,
    plan: SubscriptionPlan,
    interval: BillingInterval,
    overage_keys: list[str],
) -> tuple[list[str], bool]:
    changed = False
    if plan.stripe_product_id is None:
        plan.stripe_product_id = await _ensure_product(gateway, plan, "plan", plan.name)
        changed = True
    wanted: list[tuple[PlanPrice, str]] = []
    base = plan.price_for(interval)
    assert base is not None
    wanted.append((base, plan.stripe_product_id))
    for overage in plan.overages:
        if overage.key not in overage_keys:
            continue
        if overage.stripe_product_id is None:
            overage.stripe_product_id = await _ensure_product(
                gateway, plan, f"overage:{overage.key}", f"{plan.name}: {overage.name}"
            )
            changed = True
        price = overage.price_for(interval)
        assert price is not None
        wanted.append((price, overage.stripe_product_id))
    ids: list[str] = []
    for price, product_id in wanted:
        if price.stripe_price_id is None:
            price.stripe_price_id = await _ensure_price(gateway, product_id, price, plan.uid)
            changed = True
        ids.append(price.stripe_price_id)
    return ids, changed


async def sync_catalog(gateway: StripeGateway) -> list[str]:
    """Make every active plan's prices exist at Stripe (the ``plans sync`` command)."""
    done: list[str] = []
    for plan in await SubscriptionPlan.find({"active": True}).to_list():
        for price in plan.prices:
            keys = [o.key for o in plan.overages if o.price_for(price.interval)]
            await ensure_plan_prices(gateway, plan, price.interval, keys)
        done.append(plan.uid)
    return done
