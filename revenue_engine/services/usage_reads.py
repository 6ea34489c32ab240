"""What a subscription has used in its current period, read from the usage counters by their
ids — (subscription, period start, feature) — never by scanning events.

Per metered feature: ``used``, ``included`` and ``remaining`` (``None``: unlimited), whether
overage is offered and on, and the overage so far: the units the period's invoice bills —
beyond the included quantity while overage is on (never fewer than already reported to
Stripe, which is not taken back), or what was reported before it was switched off — in
packages of ``package_size`` rounded up, times the add-on's price per package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from revenue_engine.clock import as_utc
from revenue_engine.documents import BillingInterval, Subscription, SubscriptionPlan, UsageCounter
from revenue_engine.documents.usage import counter_id
from revenue_engine.services import entitlements, plan_cache
from revenue_engine.services.purchase import live_subscription
from revenue_engine.services.usage_rules import allowance


@dataclass(frozen=True, slots=True)
class FeatureUsage:
    feature: str
    used: int
    included: int | None
    remaining: int | None
    overage_available: bool
    overage_enabled: bool
    package_size: int | None
    overage_units: int
    overage_packages: int
    #: Minor units of ``currency``.
    overage_amount: int
    currency: str
    reported_units: int
    #: Switched off while the period's metered item stays to bill the overage reported.
    removal_pending: bool = False


@dataclass(frozen=True, slots=True)
class UsageSummary:
    organization_id: str
    stripe_subscription_id: str
    plan_uid: str | None
    period_start: datetime
    period_end: datetime
    features: list[FeatureUsage]


async def plan_of(subscription: Subscription) -> SubscriptionPlan | None:
    """The subscription's plan read from the store: a copy the caller may change and save."""
    if not subscription.plan_uid:
        return None
    return await SubscriptionPlan.find_one({"uid": subscription.plan_uid})


def metered_features(plan: SubscriptionPlan) -> list[str]:
    return [f for f in plan.metered if entitlements.is_metered(plan, f)]


async def _counters(
    subscription: Subscription, features: Iterable[str]
) -> dict[str, Mapping[str, Any]]:
    """The current period's counters of ``features`` that exist, by feature."""
    start = subscription.current_period_start
    if start is None:
        return {}
    ids = {counter_id(subscription.stripe_subscription_id, as_utc(start), f): f for f in features}
    if not ids:
        return {}
    rows = (
        await UsageCounter.get_motor_collection()
        .find({"_id": {"$in": list(ids)}}, {"used": 1, "reported": 1})
        .to_list(None)
    )
    return {ids[row["_id"]]: row for row in rows}


def feature_usage(
    subscription: Subscription,
    plan: SubscriptionPlan,
    feature: str,
    counter: Mapping[str, Any] | None,
) -> FeatureUsage:
    """One metered feature's usage in the current period (``counter``: its stored counter)."""
    rule = allowance(subscription, plan, feature)
    included = rule.included if rule else None
    overage_on = rule.overage_on if rule else False
    used = int((counter or {}).get("used") or 0)
    reported = int((counter or {}).get("reported") or 0)
    addon = plan.metered_addon(feature)
    interval = subscription.interval or BillingInterval.MONTH
    price = addon.price_for(interval) if addon else None
    billing = any(i.metered_feature == feature for i in subscription.items) or (
        addon is not None and addon.key in subscription.overages
    )
    if (overage_on or billing) and included is not None:
        # Switched off, nothing past the included quantity is accepted any more: what is
        # beyond it was accepted while on, and the item stays to bill it at the period's end.
        units = max(reported, used - included, 0)
    elif billing:
        units = reported
    else:
        units = 0
    package_size = addon.package_size if addon else None
    count = entitlements.packages(units, package_size)
    base = plan.price_for(interval)
    currency = price.currency if price else base.currency if base else ""
    return FeatureUsage(
        feature=feature,
        used=used,
        included=included,
        remaining=None if included is None else max(0, included - used),
        overage_available=addon is not None,
        overage_enabled=overage_on,
        package_size=package_size,
        overage_units=units,
        overage_packages=count,
        overage_amount=count * price.amount if price else 0,
        currency=currency,
        reported_units=reported,
        removal_pending=billing and feature in subscription.overage_off,
    )


async def summarize(
    subscription: Subscription, plan: SubscriptionPlan | None, features: list[str] | None = None
) -> UsageSummary | None:
    """The subscription's current period and its metered features' usage (``features``:
    those only); ``None`` while it has no current period."""
    start, end = subscription.current_period_start, subscription.current_period_end
    if start is None or end is None:
        return None
    wanted = [] if plan is None else metered_features(plan)
    if features is not None:
        wanted = [f for f in wanted if f in features]
    counters = await _counters(subscription, wanted)
    return UsageSummary(
        organization_id=subscription.organization_id,
        stripe_subscription_id=subscription.stripe_subscription_id,
        plan_uid=subscription.plan_uid,
        period_start=as_utc(start),
        period_end=as_utc(end),
        features=[
            feature_usage(subscription, plan, f, counters.get(f))
            for f in wanted
            if plan is not None
        ],
    )


async def current_usage(organization_id: str) -> UsageSummary | None:
    """The organization's live subscription's usage; ``None`` without one."""
    subscription = await live_subscription(organization_id)
    if subscription is None:
        return None
    return await summarize(subscription, await plan_cache.plan(subscription.plan_uid))


async def entitlement_usage(subscription: Subscription) -> dict[str, FeatureUsage]:
    """``subscriptionStatus.entitlements``' ``used`` and ``remaining``: by metered feature."""
    plan = await plan_cache.plan(subscription.plan_uid)
    summary = await summarize(subscription, plan) if plan is not None else None
    return {u.feature: u for u in summary.features} if summary else {}
