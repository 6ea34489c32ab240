"""Resolvers of usage-based billing: record one event, read the period's usage, switch
overage. Who may do what:

* ``recordUsage`` — the ``usage`` role (a product backend) or the admin role, for any
  organization; an organization's own members for their organization while
  ``USAGE_SELF_REPORT`` is on (by default outside production);
* ``usage`` — the caller's organization; the admin role any organization;
* ``setOverage`` — the caller's organization (its live subscription).
"""

from __future__ import annotations

from revenue_engine.context import Context, Info
from revenue_engine.errors import Forbidden, QuotaExceeded, UsageRejected
from revenue_engine.invariants import present
from revenue_engine.resolvers.billing import subscription_status_type
from revenue_engine.schema.usage import (
    OveragePayload,
    Usage,
    UsageEventInput,
    UsageEventStatus,
    UsageRecorded,
    feature_usage_type,
    usage_type,
)
from revenue_engine.services import overage, usage_reads
from revenue_engine.services.usage import ACCEPTED, REJECTED, Reason
from revenue_engine.services.usage import record_usage as record_batch

#: The role of a service that reports usage for any organization.
USAGE_ROLE = "usage"


def _may_report_for_any(context: Context) -> bool:
    principal = context.require_principal()
    return principal.has_role(USAGE_ROLE) or principal.has_role(context.settings.auth_admin_role)


async def record_usage(info: Info, data: UsageEventInput) -> UsageRecorded:
    context = info.context
    principal = context.require_principal()
    org = data.organization_id or principal.organization_id
    if not _may_report_for_any(context):
        if org != principal.organization_id:
            raise Forbidden("reporting another organization's usage needs the usage role")
        if not context.settings.usage_self_report_enabled:
            raise Forbidden("reporting usage needs the usage role (USAGE_SELF_REPORT is off)")
    event: dict[str, object] = {
        "id": data.id,
        "organization_id": org,
        "feature": data.feature,
        "quantity": int(data.quantity),
    }
    if data.timestamp is not None:
        event["timestamp"] = data.timestamp
    batch = await record_batch([event], grace_seconds=context.settings.usage_late_grace_seconds)
    result = batch.results[0]
    if result.status == REJECTED and result.reason is not Reason.QUOTA_EXCEEDED:
        reason = present(result.reason, "the reason of a rejected usage event")
        raise UsageRejected(reason.value, result.message or reason.value)
    # Counted, a duplicate, or over the cap: the organization has a live subscription whose
    # plan meters the feature.
    live = batch.live[org]
    plan = present(live.plan, f"the plan of live subscription {live.subscription.id}")
    summary = await usage_reads.summarize(live.subscription, plan, [data.feature])
    row = (
        summary.features[0]
        if summary and summary.features
        else usage_reads.feature_usage(live.subscription, plan, data.feature, None)
    )
    if result.status == REJECTED:
        raise QuotaExceeded(data.feature, row.included or 0, row.used)
    accepted = result.status == ACCEPTED
    status = UsageEventStatus.ACCEPTED if accepted else UsageEventStatus.DUPLICATE
    return UsageRecorded(id=data.id, status=status, usage=feature_usage_type(row))


async def usage(info: Info, organization_id: str | None) -> Usage | None:
    context = info.context
    principal = context.require_principal()
    org = organization_id or principal.organization_id
    if org != principal.organization_id and not principal.has_role(
        context.settings.auth_admin_role
    ):
        raise Forbidden("another organization's usage needs the admin role")
    summary = await usage_reads.current_usage(org)
    return usage_type(summary) if summary else None


async def set_overage(info: Info, feature: str, enabled: bool) -> OveragePayload:
    context = info.context
    switch = await overage.set_overage(
        context.gateway,
        context.settings,
        context.require_principal(),
        feature,
        enabled,
        request_id=context.request_id,
    )
    summary = await usage_reads.summarize(switch.subscription, switch.plan, [feature])
    row = summary.features[0] if summary and summary.features else None
    if row is None:  # no current period yet: nothing used
        row = usage_reads.feature_usage(switch.subscription, switch.plan, feature, None)
    return OveragePayload(
        feature=feature,
        overage_enabled=row.overage_enabled,
        removal_pending=switch.removal_pending,
        usage=feature_usage_type(row),
        subscription=await subscription_status_type(info, switch.subscription),
    )
