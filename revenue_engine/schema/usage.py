"""GraphQL types of usage-based billing: the usage of the current period, one reported event,
the overage switch, and their converters."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from revenue_engine.schema.billing import SubscriptionStatus
from revenue_engine.schema.errors import (
    BillingStateError,
    IdempotencyConflictError,
    NotFoundError,
    ProviderRejectedError,
    QuotaExceededError,
    RetryableError,
    UsageRejectedError,
    ValidationError,
)
from revenue_engine.schema.scalars import Count
from revenue_engine.services.usage_reads import FeatureUsage as FeatureUsageRow
from revenue_engine.services.usage_reads import UsageSummary


def _count(value: int | None) -> Count | None:
    return None if value is None else Count(value)


@strawberry.type(description="One metered feature's usage in the current billing period.")
class FeatureUsage:
    feature: str
    used: Count
    included: Count | None = strawberry.field(
        description="Included in the period (the plan's monthly quantity, plus packs, times "
        "12 on a yearly plan); null: unlimited."
    )
    remaining: Count | None = strawberry.field(description="included - used; null: unlimited.")
    overage_available: bool = strawberry.field(
        description="The plan sells overage for this feature (a metered add-on)."
    )
    overage_enabled: bool = strawberry.field(
        description="Usage beyond the included quantity is accepted and billed; off, it is "
        "refused with QUOTA_EXCEEDED."
    )
    package_size: Count | None = strawberry.field(description="Units per billed package.")
    overage_units: Count = strawberry.field(
        description="Units the period's invoice bills as overage, so far."
    )
    overage_packages: Count = strawberry.field(description="overageUnits in packages, rounded up.")
    overage_amount: Count = strawberry.field(
        description="overagePackages x the price per package, in minor units of `currency`."
    )
    currency: str
    reported_units: Count = strawberry.field(description="Overage units Stripe has received.")
    removal_pending: bool = strawberry.field(
        description="Overage is switched off, but this period's overage is still billed at "
        "its end (the metered price stays on the subscription until then)."
    )


def feature_usage_type(row: FeatureUsageRow) -> FeatureUsage:
    return FeatureUsage(
        feature=row.feature,
        used=Count(row.used),
        included=_count(row.included),
        remaining=_count(row.remaining),
        overage_available=row.overage_available,
        overage_enabled=row.overage_enabled,
        package_size=_count(row.package_size),
        overage_units=Count(row.overage_units),
        overage_packages=Count(row.overage_packages),
        overage_amount=Count(row.overage_amount),
        currency=row.currency,
        reported_units=Count(row.reported_units),
        removal_pending=row.removal_pending,
    )


@strawberry.type(description="The organization's usage in its subscription's current period.")
class Usage:
    organization_id: str
    subscription_id: strawberry.ID
    plan_uid: str | None
    period_start: datetime
    period_end: datetime
    features: list[FeatureUsage]


def usage_type(summary: UsageSummary) -> Usage:
    return Usage(
        organization_id=summary.organization_id,
        subscription_id=strawberry.ID(summary.stripe_subscription_id),
        plan_uid=summary.plan_uid,
        period_start=summary.period_start,
        period_end=summary.period_end,
        features=[feature_usage_type(f) for f in summary.features],
    )


@strawberry.input(description="One usage event; `id` is its idempotency key.")
class UsageEventInput:
    id: str = strawberry.field(
        description="Your id for the event (1-200 of A-Z a-z 0-9 _ . : -): the same id "
        "again is answered DUPLICATE and counted once."
    )
    feature: str = strawberry.field(description="A metered feature of the plan (api_calls).")
    quantity: Count = strawberry.field(description="Units used, 1 to 1,000,000,000.")
    organization_id: str | None = strawberry.field(
        default=None, description="Default: the caller's organization."
    )
    timestamp: datetime | None = strawberry.field(
        default=None, description="When it was used, with an offset; default: now."
    )


@strawberry.enum(description="What became of an event that was not refused.")
class UsageEventStatus(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@strawberry.type(description="The event was counted (ACCEPTED), or its id was already (DUPLICATE).")
class UsageRecorded:
    id: str
    status: UsageEventStatus
    usage: FeatureUsage


@strawberry.type
class OveragePayload:
    feature: str
    overage_enabled: bool
    removal_pending: bool = strawberry.field(
        description="Switched off, but overage already reported this period is billed at "
        "renewal: the metered price stays on the subscription until then."
    )
    usage: FeatureUsage
    subscription: SubscriptionStatus


RecordUsageResult = Annotated[
    UsageRecorded | QuotaExceededError | UsageRejectedError | RetryableError,
    strawberry.union("RecordUsageResult"),
]
SetOverageResult = Annotated[
    OveragePayload
    | ValidationError
    | NotFoundError
    | BillingStateError
    | RetryableError
    | IdempotencyConflictError
    | ProviderRejectedError,
    strawberry.union("SetOverageResult"),
]
