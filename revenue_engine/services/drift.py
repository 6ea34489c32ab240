"""Reconciliation against Stripe: list subscriptions (``status=all``), compare each with ours,
report the drift, and (unless dry-run) apply Stripe's truth through the one reconciler.

Applying is idempotent, so an interrupted run is resumed by running it again (or from the
printed cursor with ``starting_after``) without double-applying anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from revenue_engine.clock import utcnow
from revenue_engine.documents import AuditSource, Customer, Subscription
from revenue_engine.errors import MalformedStripeObject, UnknownOrganization
from revenue_engine.gateway import SubscriptionCalls, UnreadableSubscription
from revenue_engine.services.reconcile import apply_subscription, changes, snapshot


@dataclass
class Drift:
    subscription_id: str
    organization_id: str | None
    #: missing | status | period | cancel_at_period_end | plan_uid | … | unknown-organization
    kind: str
    ours: str | None
    stripe: str | None


@dataclass
class DriftReport:
    checked: int = 0
    applied: int = 0
    drifts: list[Drift] = field(default_factory=list)
    cursor: str | None = None
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        rate = self.checked / max(time.monotonic() - self.started, 1e-6)
        return (
            f"{self.checked} subscriptions checked ({rate:.1f}/s), {len(self.drifts)} drifted, "
            f"{self.applied} applied; cursor={self.cursor or '-'}"
        )


def _compare(sub_id: str, fields: dict[str, Any], ours: Subscription | None) -> list[Drift]:
    """Every tracked field that differs (status, periods, cancel flags, plan, items…)."""
    org = fields["organization_id"]
    if ours is None:
        return [Drift(sub_id, org, "missing", None, fields["status"])]
    found: list[Drift] = []
    for name, theirs in changes(ours, fields).items():
        kind = {"current_period_start": "period", "current_period_end": "period"}.get(name, name)
        mine = getattr(ours, name)
        found.append(Drift(sub_id, org, kind, _show(mine), _show(theirs)))
    return found


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, list):
        return ",".join(_show(v) for v in value) or "-"
    if isinstance(value, BaseModel):
        return str(value.model_dump(exclude_none=True))
    return "-" if value is None else str(value)


async def reconcile_subscriptions(
    gateway: SubscriptionCalls,
    *,
    organization_id: str | None = None,
    dry_run: bool = False,
    starting_after: str | None = None,
    report: Callable[[DriftReport], None] | None = None,
) -> DriftReport:
    result = DriftReport(cursor=starting_after)
    customer: str | None = None
    if organization_id is not None:
        found = await Customer.find_one({"organization_id": organization_id})
        if found is None:
            return result
        customer = found.stripe_customer_id
    while True:
        observed_at = utcnow()
        page, more = await gateway.list_subscriptions(
            customer=customer, starting_after=result.cursor
        )
        for obj in page:
            sub_id = obj.id
            result.checked += 1
            if isinstance(obj, UnreadableSubscription):  # reported; the run goes on
                result.drifts.append(Drift(sub_id, None, "unknown-organization", None, obj.reason))
                continue
            try:
                fields = await snapshot(obj)
            except (UnknownOrganization, MalformedStripeObject) as exc:
                result.drifts.append(Drift(sub_id, None, "unknown-organization", None, exc.message))
                continue
            ours = await Subscription.find_one({"stripe_subscription_id": sub_id})
            drifts = _compare(sub_id, fields, ours)
            result.drifts.extend(drifts)
            if drifts and not dry_run:
                await apply_subscription(
                    obj,
                    source=AuditSource.RECONCILE,
                    reference="reconcile",
                    observed_at=observed_at,
                )
                result.applied += 1
        if page:
            result.cursor = page[-1].id
        if report:
            report(result)
        if not more or not page:
            return result
