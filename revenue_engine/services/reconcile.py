"""The one reconciler: a Stripe subscription (the gateway's ``StripeSubscription`` read model)
in, our ``Subscription`` document out.

Checkout verification, every mutation, every webhook handler, backfill and reconcile call
``apply_subscription``. It is idempotent (the same object twice changes nothing the second time)
and never moves state backwards:

* each call says when the object was *observed* (fetched from Stripe, or the event's
  ``created``); an observation older than the stored one is ignored;
* a terminal status (``canceled``, ``incomplete_expired``) is never left — Stripe never does;
* same-instant observations are ordered by a deterministic status rank, so two events of the
  same second give the same final state in either order;
* writes are conditional on the stored ``version`` (optimistic concurrency) and retried, so
  concurrent appliers cannot interleave half-updates.

Every applied change writes an ``AuditEntry`` (from → to, source, event or request id).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from revenue_engine.clock import as_utc, utcnow
from revenue_engine.documents import (
    TERMINAL_STATUSES,
    AddonKind,
    AuditEntry,
    AuditSource,
    BillingInterval,
    Customer,
    Overage,
    Subscription,
    SubscriptionItem,
    SubscriptionPlan,
)
from revenue_engine.errors import MalformedStripeObject, UnknownOrganization
from revenue_engine.gateway.models import StripePrice, StripeSubscription, StripeSubscriptionItem
from revenue_engine.invariants import present
from revenue_engine.services import entitlements, plan_cache
from revenue_engine.services.discounts import applied_discounts

log = logging.getLogger(__name__)

#: Same-instant tie-break: the higher rank wins (later in a subscription's usual life).
_STATUS_RANK = {
    "incomplete": 0,
    "trialing": 1,
    "active": 2,
    "paused": 3,
    "past_due": 4,
    "unpaid": 5,
    "incomplete_expired": 6,
    "canceled": 7,
}

#: Fields compared to decide whether an observation changes anything.
_TRACKED = (
    "status",
    "plan_uid",
    "interval",
    "items",
    "overages",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "trial_start",
    "trial_end",
    "latest_invoice_id",
    "test_clock",
    "entitlements",
    "seats",
    "stripe_customer_id",
    "discounts",
)

_MAX_ATTEMPTS = 8


def ts(value: Any) -> datetime | None:
    """A Stripe unix timestamp as an aware UTC datetime."""
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


async def _plans_for(prices: list[StripePrice]) -> list[SubscriptionPlan]:
    """The plans that sell ``prices``: from the plan cache when it knows every one of them (no
    store read per event); else from the store, where a price another instance linked moments
    ago is already (the cache sees it within its check interval)."""
    cached = await plan_cache.catalog(active_only=False)
    if all(_match(cached, price) for price in prices):
        return cached
    keys = [p.lookup_key for p in prices if p.lookup_key]
    ids = [p.id for p in prices]
    return await SubscriptionPlan.find(
        {
            "$or": [
                {"prices.lookup_key": {"$in": keys}},
                {"prices.stripe_price_id": {"$in": ids}},
                {"overages.prices.lookup_key": {"$in": keys}},
                {"overages.prices.stripe_price_id": {"$in": ids}},
            ]
        }
    ).to_list()


def _match(
    plans: list[SubscriptionPlan], price: StripePrice
) -> tuple[SubscriptionPlan, BillingInterval, str | None] | None:
    """(plan, interval, overage key or None) for a Stripe price, by lookup key or id."""
    key, pid = price.lookup_key, price.id
    for plan in plans:
        for p in plan.prices:
            if (key and p.lookup_key == key) or (pid and p.stripe_price_id == pid):
                return plan, p.interval, None
        for overage in plan.overages:
            for p in overage.prices:
                if (key and p.lookup_key == key) or (pid and p.stripe_price_id == pid):
                    return plan, p.interval, overage.key
    return None


async def _organization(obj: StripeSubscription, customer_id: str) -> str:
    org = obj.metadata.get("organization_id")
    if org:
        return org
    customer = await Customer.find_one({"stripe_customer_id": customer_id})
    if customer is None:
        raise UnknownOrganization(
            f"subscription {obj.id} belongs to customer {customer_id} of no organization"
        )
    return customer.organization_id


def _quantity(item: StripeSubscriptionItem) -> int:
    """An item's quantity. Stripe leaves it out on a metered item (usage decides what is
    billed): 0 there, which no limit reads (only packs, which are licensed, raise limits)."""
    if item.quantity is not None:
        return max(item.quantity, 0)
    return 0 if item.price.metered else 1


async def snapshot(obj: StripeSubscription) -> dict[str, Any]:
    """The document fields a Stripe subscription object implies (no writes).

    The steps: check the customer, match each of Stripe's items to a plan's price or overage,
    fall back to the metadata's plan without a base item, then the fields.
    """
    customer_id = obj.customer
    if not customer_id:
        raise MalformedStripeObject(f"subscription {obj.id} has no customer")
    plans = await _plans_for([i.price for i in obj.items])
    items, plan, interval, overages = _matched_items(obj.items, plans)
    if plan is None:
        plan = await plan_cache.plan(obj.metadata.get("plan_uid"))
    organization_id = await _organization(obj, customer_id)
    fields = _fields(obj, customer_id, organization_id, plan, interval, items, overages)
    discounts = applied_discounts(obj.discounts)
    if discounts is not None:  # not expanded: the stored discounts stay as they are
        fields["discounts"] = discounts
    return fields


def _matched_items(
    raw_items: list[StripeSubscriptionItem], plans: list[SubscriptionPlan]
) -> tuple[list[SubscriptionItem], SubscriptionPlan | None, BillingInterval | None, list[str]]:
    """Stripe's items matched to ``plans``: the items, the plan and interval of the base item
    (``None`` if no item is a plan's price) and the overage keys of the overage items."""
    items: list[SubscriptionItem] = []
    plan: SubscriptionPlan | None = None
    interval: BillingInterval | None = None
    overages: list[str] = []
    for raw in raw_items:
        matched = _match(plans, raw.price)
        overage_key = matched[2] if matched else None
        if matched and overage_key is None:
            plan, interval = matched[0], matched[1]
        elif overage_key:
            overages.append(overage_key)
        addon = matched[0].addon(overage_key) if matched and overage_key else None
        items.append(_item(raw, overage_key, addon))
    return items, plan, interval, overages


def _item(
    raw: StripeSubscriptionItem, overage_key: str | None, addon: Overage | None
) -> SubscriptionItem:
    """The stored item for one of Stripe's subscription items (``addon``: its overage's add-on)."""
    return SubscriptionItem(
        stripe_item_id=raw.id,
        stripe_price_id=raw.price.id,
        lookup_key=raw.price.lookup_key,
        quantity=_quantity(raw),
        overage_key=overage_key,
        metered_feature=(addon.feature if addon and addon.kind is AddonKind.METERED else None),
        current_period_start=ts(raw.current_period_start),
        current_period_end=ts(raw.current_period_end),
    )


def _fields(
    obj: StripeSubscription,
    customer_id: str,
    organization_id: str,
    plan: SubscriptionPlan | None,
    interval: BillingInterval | None,
    items: list[SubscriptionItem],
    overages: list[str],
) -> dict[str, Any]:
    """The document fields from the subscription object and its matched items (all but the
    discounts)."""
    # Since API 2025-03-31 periods live on the items; the base item's period is the plan's.
    base = next((i for i in items if i.overage_key is None), items[0] if items else None)
    return {
        "organization_id": organization_id,
        "stripe_customer_id": customer_id,
        "status": obj.status,
        "plan_uid": plan.uid if plan else None,
        "interval": interval,
        "items": items,
        "overages": sorted(overages),
        "current_period_start": base.current_period_start if base else None,
        "current_period_end": base.current_period_end if base else None,
        "cancel_at_period_end": obj.cancel_at_period_end,
        "cancel_at": ts(obj.cancel_at),
        "canceled_at": ts(obj.canceled_at),
        "ended_at": ts(obj.ended_at),
        "trial_start": ts(obj.trial_start),
        "trial_end": ts(obj.trial_end),
        "latest_invoice_id": obj.latest_invoice or None,
        "test_clock": obj.test_clock or None,
        "entitlements": entitlements.limits(plan, items) if plan else {},
        "seats": base.quantity if plan and plan.per_seat and base else None,
    }


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump()
    return value


def changes(current: Subscription, fields: dict[str, Any]) -> dict[str, Any]:
    """The tracked fields of ``fields`` that differ from ``current`` (a field the observation
    could not tell, absent from ``fields``, is not compared)."""
    return {
        name: fields[name]
        for name in _TRACKED
        if name in fields and _comparable(getattr(current, name)) != _comparable(fields[name])
    }


def _stale(current: Subscription, fields: dict[str, Any], observed_at: datetime) -> str | None:
    """Why this observation must not be applied over ``current``, or ``None``."""
    if current.status in TERMINAL_STATUSES and fields["status"] != current.status:
        return "terminal"
    stored = as_utc(current.observed_at)
    if observed_at < stored:
        return "older"
    if observed_at == stored and _STATUS_RANK.get(fields["status"], 0) < _STATUS_RANK.get(
        current.status, 0
    ):
        return "same-instant-lower-rank"
    return None


def _audit_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_audit_value(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _audit_row(
    sub_organization_id: str,
    stripe_id: str,
    from_status: str | None,
    to_status: str,
    changes: dict[str, Any],
    source: AuditSource,
    reference: str | None,
) -> dict[str, Any]:
    """The audit row of one applied change, as stored in ``Subscription.pending_audit``; its
    ``_id`` is chosen now, so writing it twice leaves one row."""
    entry = AuditEntry(
        id=ObjectId(),
        organization_id=sub_organization_id,
        kind="subscription.created" if from_status is None else "subscription.updated",
        stripe_subscription_id=stripe_id,
        from_status=from_status,
        to_status=to_status,
        source=source,
        reference=reference,
        changes={k: _audit_value(v) for k, v in changes.items()},
    )
    row: dict[str, Any] = entry.model_dump(by_alias=True, mode="python")
    row["source"] = source.value
    return row


async def flush_audit(sub: Subscription) -> None:
    """Write the subscription's pending audit row (once, whoever calls), then clear it."""
    row = sub.pending_audit
    if not row:
        return
    with contextlib.suppress(DuplicateKeyError):  # a concurrent or earlier flush wrote it
        await AuditEntry.get_motor_collection().insert_one(dict(row))
    await Subscription.get_motor_collection().update_one(
        {"_id": sub.id, "pending_audit._id": row["_id"]}, {"$unset": {"pending_audit": ""}}
    )
    sub.pending_audit = None


async def apply_subscription(
    obj: StripeSubscription,
    *,
    source: AuditSource,
    reference: str | None = None,
    observed_at: datetime | None = None,
) -> Subscription:
    """Make our document match ``obj`` unless that would move state backwards (see module)."""
    observed = observed_at or utcnow()
    fields = await snapshot(obj)
    stripe_id = obj.id
    for _ in range(_MAX_ATTEMPTS):
        current = await Subscription.find_one({"stripe_subscription_id": stripe_id})
        if current is None:
            created = await _insert_new(stripe_id, fields, observed, source, reference)
            if created is None:
                continue  # a concurrent applier inserted it: compare against theirs
            return created
        await flush_audit(current)  # a change applied before a crash keeps its audit row
        reason = _stale(current, fields, observed)
        diff = {} if reason else changes(current, fields)
        if reason or not diff:
            if reason:
                log.info(
                    "subscription observation skipped subscription=%s reason=%s", stripe_id, reason
                )
            return current
        fresh = await _write_change(current, fields, diff, observed, source, reference)
        if fresh is not None:
            return fresh
        # Someone else wrote in between: re-read and decide again.
    raise RuntimeError(f"subscription {stripe_id}: too much write contention")


async def _insert_new(
    stripe_id: str,
    fields: dict[str, Any],
    observed: datetime,
    source: AuditSource,
    reference: str | None,
) -> Subscription | None:
    """Store a subscription seen for the first time, with its audit row; None when a
    concurrent applier inserted it first."""
    created = Subscription(
        stripe_subscription_id=stripe_id,
        observed_at=observed,
        pending_audit=_audit_row(
            fields["organization_id"],
            stripe_id,
            None,
            fields["status"],
            {"status": fields["status"]},
            source,
            reference,
        ),
        **fields,
    )
    try:
        await created.insert()
    except DuplicateKeyError:
        return None
    await flush_audit(created)
    log.info(
        "subscription applied organization_id=%s subscription=%s status=%s source=%s",
        created.organization_id,
        stripe_id,
        created.status,
        source.value,
    )
    return created


async def _write_change(
    current: Subscription,
    fields: dict[str, Any],
    diff: dict[str, Any],
    observed: datetime,
    source: AuditSource,
    reference: str | None,
) -> Subscription | None:
    """Write ``diff`` onto ``current`` with its audit row, a compare-and-set on its
    ``version``; the subscription as written, or None when someone else wrote in between."""
    stripe_id = current.stripe_subscription_id
    update = Subscription(
        stripe_subscription_id=stripe_id, observed_at=observed, **fields
    ).model_dump(include=(set(_TRACKED) & set(fields)) | {"observed_at", "organization_id"})
    update["updated_at"] = utcnow()
    # The change and its audit row in one single-document write (see ``pending_audit``).
    update["pending_audit"] = _audit_row(
        current.organization_id,
        stripe_id,
        current.status,
        fields["status"],
        diff,
        source,
        reference,
    )
    result = await Subscription.find_one({"_id": current.id, "version": current.version}).update(
        {"$set": update, "$inc": {"version": 1}}
    )
    if not getattr(result, "matched_count", 0):
        return None
    fresh = present(await Subscription.get(current.id), f"subscription {current.id}")
    await flush_audit(fresh)
    log.info(
        "subscription applied organization_id=%s subscription=%s from=%s to=%s source=%s",
        fresh.organization_id,
        stripe_id,
        current.status,
        fresh.status,
        source.value,
    )
    return fresh
