"""The per-subscription overage switch of a metered feature: ``setOverage(feature, enabled)``.

Overage is on for a feature when an item billing it is on the Stripe subscription and the
feature is not in ``Subscription.overage_off`` (``entitlements.overage_on``); off, the
included quantity is a hard cap (``services.usage`` refuses what would pass it).

* **on** — drop the feature from ``overage_off``; when the metered item is not on the
  subscription, add it at Stripe (``items=[{price}]``, no proration: a metered price bills
  usage in arrears, nothing up front) and apply Stripe's answer through the reconciler. The
  current period's counter is marked for the reporter, which then reports what is billable.
* **off** — add the feature to ``overage_off`` first, so usage beyond the included quantity
  is refused from this moment, then report what was accepted while it was on
  (``meter_reports.flush_subscription_reports``). When nothing of the period is billable
  (no units reported, none in flight or due, the previous period's reports settled) the item
  is removed now and the feature leaves ``overage_off``; otherwise the item stays until the
  period ends — Stripe bills what was reported at renewal (it would bill a removed item for
  nothing) — and ``settle_overage_switches`` (the background loop) removes it once that
  holds, in a later period; so it does when Stripe cannot be reached for the removal (the
  switch is off all the same: ``removal_pending``).

``settle_overage_switches`` also finishes a plan change: the period's metered item of the
previous plan stays to the end of the period (``services.subscriptions``); once nothing of it
is left to bill, it is swapped for the current plan's metered price (or removed when the plan
bills no overage for the feature, or it is switched off).

Stripe writes carry keys derived from (organization, "overage.on"/"overage.off",
subscription, feature, the subscription's version): a double-submit shares the key, the next
change gets a new one (every applied change bumps the version).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from revenue_engine.auth import Principal
from revenue_engine.clock import as_utc, utcnow
from revenue_engine.db import StoreError
from revenue_engine.documents import (
    AuditSource,
    BillingInterval,
    Overage,
    Subscription,
    SubscriptionItem,
    SubscriptionPlan,
    UsageCounter,
)
from revenue_engine.documents.usage import counter_id
from revenue_engine.errors import (
    DomainError,
    FieldProblem,
    NoActiveSubscription,
    OverageNotOffered,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from revenue_engine.gateway import StripeApi, SubscriptionCalls, idempotency_key
from revenue_engine.services import entitlements
from revenue_engine.services.catalog import ensure_addon_price
from revenue_engine.services.meter_reports import flush_subscription_reports
from revenue_engine.services.purchase import live_subscription
from revenue_engine.services.reconcile import apply_subscription
from revenue_engine.services.usage_reads import plan_of
from revenue_engine.services.usage_rules import Window
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OverageSwitch:
    """The subscription after a switch; ``removal_pending``: switched off, but the metered
    item stays until the period's reported overage is billed."""

    subscription: Subscription
    plan: SubscriptionPlan
    feature: str
    removal_pending: bool


async def set_overage(
    gateway: StripeApi,
    settings: Settings,
    principal: Principal,
    feature: str,
    enabled: bool,
    *,
    request_id: str | None = None,
) -> OverageSwitch:
    """Switch ``feature``'s overage for the caller's live subscription (module docstring)."""
    live = await live_subscription(principal.organization_id)
    if live is None:
        raise NoActiveSubscription()
    plan = await plan_of(live)
    if plan is None or not entitlements.is_metered(plan, feature):
        raise ValidationFailed(
            "unknown feature",
            [FieldProblem("feature", "not a metered feature of the subscription's plan")],
        )
    addon = plan.metered_addon(feature)
    if addon is None:
        raise OverageNotOffered(feature)
    if enabled:
        live = await _switch_on(gateway, settings, live, plan, addon, feature, request_id)
        return OverageSwitch(live, plan, feature, removal_pending=False)
    live, pending = await _switch_off(gateway, settings, live, feature, request_id)
    return OverageSwitch(live, plan, feature, removal_pending=pending)


def _item_for(sub: Subscription, feature: str) -> SubscriptionItem | None:
    """The item billing ``feature``'s overage (the plan's metered add-on, or the previous
    plan's kept to the end of the period)."""
    return next((i for i in sub.items if i.metered_feature == feature), None)


async def _switch_on(
    gateway: StripeApi,
    settings: Settings,
    live: Subscription,
    plan: SubscriptionPlan,
    addon: Overage,
    feature: str,
    request_id: str | None,
) -> Subscription:
    interval = live.interval or BillingInterval.MONTH
    if addon.price_for(interval) is None:
        raise ValidationFailed(
            "overage not offered for this interval",
            [FieldProblem("feature", f"its overage is not offered per {interval}")],
        )
    await _turn_on(live, feature)
    if _item_for(live, feature) is None:
        price = await ensure_addon_price(gateway, settings, plan, interval, addon.key)
        sid = live.stripe_subscription_id
        key = idempotency_key(live.organization_id, "overage.on", sid, feature, live.version)
        observed_at = utcnow()
        result = await gateway.update_subscription(
            sid, {"items": [price.item()], "proration_behavior": "none"}, key=key
        )
        await apply_subscription(
            result, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
        )
    await _mark_due(live, feature)
    return await _fresh(live)


async def _switch_off(
    gateway: StripeApi,
    settings: Settings,
    live: Subscription,
    feature: str,
    request_id: str | None,
) -> tuple[Subscription, bool]:
    item = _item_for(live, feature)
    if item is None:
        # No metered item: overage is off already, and nothing is left to settle.
        await _turn_on(live, feature)
        return await _fresh(live), False
    await _collection().update_one({"_id": live.id}, {"$addToSet": {"overage_off": feature}})
    # What was accepted while it was on is billable: report it before deciding on the item.
    await flush_subscription_reports(gateway, settings, live.stripe_subscription_id)
    if not await _nothing_reported(live, feature):
        log.info(
            "overage switched off, item kept until the period ends organization_id=%s "
            "subscription=%s feature=%s",
            live.organization_id,
            live.stripe_subscription_id,
            feature,
        )
        return await _fresh(live), True
    try:
        await _replace_item(gateway, live, item, None, "overage.off", request_id)
    except (ServiceUnavailable, RateLimited, TimeoutError) as exc:
        # Off is in force already (the feature is in ``overage_off``); the item's removal is
        # left to ``settle_overage_switches``, which retries it: answering "retry" would say
        # nothing changed.
        log.warning(
            "overage switched off, item removal pending organization_id=%s subscription=%s "
            "feature=%s error=%s",
            live.organization_id,
            live.stripe_subscription_id,
            feature,
            type(exc).__name__,
        )
        return await _fresh(live), True
    await _turn_on(live, feature)
    return await _fresh(live), False


async def _replace_item(
    gateway: SubscriptionCalls,
    live: Subscription,
    item: SubscriptionItem,
    price: dict[str, Any] | None,
    operation: str,
    request_id: str | None,
) -> None:
    """Take the metered ``item`` off the subscription (and add ``price`` in its place)."""
    sid = live.stripe_subscription_id
    feature = item.metered_feature
    key = idempotency_key(live.organization_id, operation, sid, feature, live.version)
    items: list[dict[str, Any]] = [{"id": item.stripe_item_id, "deleted": True}]
    if price is not None:
        items.append(price)
    observed_at = utcnow()
    result = await gateway.update_subscription(
        sid, {"items": items, "proration_behavior": "none"}, key=key
    )
    await apply_subscription(
        result, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
    )


async def _nothing_reported(live: Subscription, feature: str) -> bool:
    """Whether removing the metered item loses nothing billed: the current period's counter
    reported no unit and has no report in flight, and the previous period's reports are
    settled (Stripe bills them at renewal, within its grace)."""
    window = Window.of(live, utcnow(), 0)
    if window is None:
        return True
    sid = live.stripe_subscription_id
    current = counter_id(sid, window.current.start, feature)
    previous = counter_id(sid, window.previous.start, feature)
    rows = (
        await UsageCounter.get_motor_collection()
        .find(
            {"_id": {"$in": [current, previous]}}, {"reported": 1, "inflight": 1, "report_due": 1}
        )
        .to_list(None)
    )
    for row in rows:
        if row.get("inflight") is not None:
            return False
        if row["_id"] == current and (int(row.get("reported") or 0) > 0 or row.get("report_due")):
            return False
        if row["_id"] == previous and row.get("report_due"):
            return False
    return True


async def _mark_due(live: Subscription, feature: str) -> None:
    """Have the reporter look at the current period's counter (overage just came on)."""
    if live.current_period_start is None:
        return
    cid = counter_id(live.stripe_subscription_id, as_utc(live.current_period_start), feature)
    await UsageCounter.get_motor_collection().update_one(
        {"_id": cid}, {"$set": {"report_due": True, "updated_at": utcnow()}}
    )


async def settle_overage_switches(
    gateway: StripeApi, settings: Settings, *, limit: int = 100
) -> int:
    """Finish the switches and plan changes that wait for a period's overage to be billed
    (see the module docstring); returns how many features were settled. One subscription's
    failure (Stripe or the store down) is logged and left for the next run."""
    subs = (
        await Subscription.find(
            {
                "$or": [
                    {"overage_off": {"$exists": True, "$ne": []}},
                    {"overage_settle": True},
                ]
            }
        )
        .limit(limit)
        .to_list()
    )
    settled = 0
    for sub in subs:
        try:
            settled += await _settle(gateway, settings, sub)
        except (DomainError, StoreError, TimeoutError) as exc:
            log.warning(
                "overage switch not settled subscription=%s error=%s",
                sub.stripe_subscription_id,
                type(exc).__name__,
            )
    return settled


async def _settle(gateway: StripeApi, settings: Settings, sub: Subscription) -> int:
    plan = await plan_of(sub)
    settled = 0
    for feature in list(sub.overage_off):
        item = _item_for(sub, feature)
        if not sub.is_live or item is None:
            # Nothing left to remove (canceled, or the item is gone).
            await _turn_on(sub, feature)
            settled += 1
            continue
        if await _nothing_reported(sub, feature):
            await _replace_item(gateway, sub, item, None, "overage.off", "settle-overage")
            await _turn_on(sub, feature)
            sub = await _fresh(sub)
            settled += 1
    if sub.overage_settle:
        settled += await _settle_plan_change(gateway, settings, sub, plan)
    return settled


async def _settle_plan_change(
    gateway: StripeApi, settings: Settings, sub: Subscription, plan: SubscriptionPlan | None
) -> int:
    """Swap the metered items a plan change kept for the current plan's, once nothing of
    their period is left to bill; clears ``overage_settle`` when none is left."""
    settled = 0
    waiting = False
    interval = sub.interval or BillingInterval.MONTH
    for item in list(sub.items):
        feature = item.metered_feature
        if feature is None or not sub.is_live:
            continue
        addon = plan.metered_addon(feature) if plan else None
        current = addon.price_for(interval) if addon else None
        if (
            addon is not None
            and current is not None
            and item.overage_key == addon.key
            and (current.stripe_price_id is None or current.stripe_price_id == item.stripe_price_id)
        ):
            continue  # the current plan's own metered price
        if not await _nothing_reported(sub, feature):
            waiting = True
            continue
        price: dict[str, Any] | None = None
        if plan is not None and addon is not None and feature not in sub.overage_off:
            price = (await ensure_addon_price(gateway, settings, plan, interval, addon.key)).item()
        await _replace_item(gateway, sub, item, price, "overage.swap", "settle-overage")
        sub = await _fresh(sub)
        settled += 1
    if not waiting:
        await _collection().update_one({"_id": sub.id}, {"$set": {"overage_settle": False}})
    return settled


async def _turn_on(sub: Subscription, feature: str) -> None:
    """Take ``feature`` out of ``overage_off``: a compare-and-set of the list (no ``$pull``:
    the wire test server lacks it)."""
    for _ in range(10):
        row = await _collection().find_one({"_id": sub.id}, {"overage_off": 1})
        seen = list((row or {}).get("overage_off") or [])
        if feature not in seen:
            return
        kept = [f for f in seen if f != feature]
        done = await _collection().update_one(
            {"_id": sub.id, "overage_off": seen}, {"$set": {"overage_off": kept}}
        )
        if done.matched_count:
            return
    raise ServiceUnavailable("the subscription kept changing; retry")


def _collection() -> Any:
    # ``overage_off`` is written here only, with single-field operators: the reconciler's
    # writes never name it, so neither side overwrites the other.
    return Subscription.get_motor_collection()


async def _fresh(sub: Subscription) -> Subscription:
    found = await Subscription.get(sub.id)
    return found or sub
