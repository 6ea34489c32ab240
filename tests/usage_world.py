"""A metered plan and subscriptions to it, made directly in the store (no Stripe): what the
usage tests count against.

``metered`` plan: ``api_calls`` (1,000 a month, overage sold per package of 100 at $15),
``storage_gb`` (unlimited, metered), ``exports`` (metered, 50 a month, no overage offered),
``seats`` (a limit, not metered; packs of 5) and ``sso`` (a switch).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from revenue_engine.clock import utcnow
from revenue_engine.documents import (
    AddonKind,
    BillingInterval,
    Customer,
    Overage,
    PlanPrice,
    Subscription,
    SubscriptionItem,
    SubscriptionPlan,
)
from revenue_engine.services import entitlements
from revenue_engine.services.usage_rules import shift_months
from revenue_engine.settings import Settings

PLAN = "metered"
INCLUDED = 1000
PACKAGE = 100
PACKAGE_PRICE = 1500


def _price(key: str, amount: int, interval: BillingInterval) -> PlanPrice:
    return PlanPrice(interval=interval, amount=amount, currency="usd", lookup_key=key)


def metered_plan(uid: str = PLAN, *, api_calls: int | None = INCLUDED) -> SubscriptionPlan:
    month, year = BillingInterval.MONTH, BillingInterval.YEAR
    return SubscriptionPlan(
        uid=uid,
        name="Metered",
        entitlements={
            "seats": 5,
            "api_calls": api_calls,
            "storage_gb": None,
            "exports": 50,
            "sso": True,
        },
        metered=["api_calls", "storage_gb", "exports"],
        prices=[_price(f"{uid}_month", 4900, month), _price(f"{uid}_year", 49000, year)],
        overages=[
            Overage(
                key="api_calls",
                name="Extra API calls",
                unit="100 calls",
                kind=AddonKind.METERED,
                feature="api_calls",
                package_size=PACKAGE,
                prices=[
                    _price(f"{uid}_api_calls_month", PACKAGE_PRICE, month),
                    _price(f"{uid}_api_calls_year", PACKAGE_PRICE, year),
                ],
            ),
            Overage(
                key="seats_pack",
                name="Five more seats",
                unit="5 seats",
                kind=AddonKind.PACK,
                feature="seats",
                pack_size=5,
                prices=[
                    _price(f"{uid}_seats_pack_month", 1000, month),
                    _price(f"{uid}_seats_pack_year", 10000, year),
                ],
            ),
        ],
    )


async def save_plan(plan: SubscriptionPlan | None = None) -> SubscriptionPlan:
    plan = plan or metered_plan()
    await plan.insert()
    return plan


async def subscribe(
    org: str,
    plan: SubscriptionPlan,
    *,
    overage: bool = True,
    start: datetime | None = None,
    interval: BillingInterval = BillingInterval.MONTH,
    status: str = "active",
    packs: int = 0,
    customer: bool = True,
) -> Subscription:
    """A subscription of ``org`` to ``plan`` whose period started ``start`` (default: ten days
    ago), with the metered api_calls item when ``overage``."""
    start = (start or utcnow() - timedelta(days=10)).replace(microsecond=0)
    end = shift_months(start, 12 if interval is BillingInterval.YEAR else 1, start.day)
    sid = f"sub_{org}"
    items = [
        SubscriptionItem(
            stripe_item_id=f"si_{org}_base",
            stripe_price_id=f"price_{plan.uid}_{interval}",
            lookup_key=f"{plan.uid}_{interval}",
        )
    ]
    if overage:
        items.append(
            SubscriptionItem(
                stripe_item_id=f"si_{org}_api",
                stripe_price_id=f"price_{plan.uid}_api_{interval}",
                lookup_key=f"{plan.uid}_api_calls_{interval}",
                overage_key="api_calls",
                metered_feature="api_calls",
            )
        )
    if packs:
        items.append(
            SubscriptionItem(
                stripe_item_id=f"si_{org}_seats",
                stripe_price_id=f"price_{plan.uid}_seats_{interval}",
                quantity=packs,
                overage_key="seats_pack",
            )
        )
    if customer and await Customer.find_one({"organization_id": org}) is None:
        await Customer(organization_id=org, stripe_customer_id=f"cus_{org}").insert()
    sub = Subscription(
        stripe_subscription_id=sid,
        organization_id=org,
        stripe_customer_id=f"cus_{org}",
        status=status,
        plan_uid=plan.uid,
        interval=interval,
        items=items,
        overages=sorted(i.overage_key for i in items if i.overage_key),
        current_period_start=start,
        current_period_end=end,
        entitlements=entitlements.limits(plan, items),
        observed_at=utcnow(),
    )
    await sub.insert()
    return sub


def event(
    event_id: str,
    quantity: int = 1,
    *,
    org: str = "org_a",
    feature: str = "api_calls",
    **extra: object,
) -> dict[str, object]:
    return {
        "id": event_id,
        "organization_id": org,
        "feature": feature,
        "quantity": quantity,
        **extra,
    }


async def metered_engine(
    client_for: Callable[[Settings], Awaitable[Any]], settings: Settings
) -> httpx.AsyncClient:
    """The app on ``settings``, with the ``metered`` plan and two subscriptions to it:
    ``org_a`` (overage on) and ``org_capped`` (overage off: its limit is a hard cap)."""
    client: httpx.AsyncClient = await client_for(settings)
    plan = await save_plan()
    await subscribe("org_a", plan)
    await subscribe("org_capped", plan, overage=False)
    return client
