"""Usage of metered features: the events reported, one counter per (subscription, period,
feature), and the Stripe Billing Meter of each feature.

* ``UsageEvent`` — one reported event, unique per (organization, caller's id): the unique
  index is what makes the same id count once across instances. It records the counting write
  (``batch``) so a write interrupted between the event and its counter is completed, never
  repeated (see ``services.usage``).
* ``UsageCounter`` — the aggregate a read uses (never a scan of events): ``used`` is raised
  with ``$inc``. ``marks`` names the batches already added (so a completion cannot add one
  twice). It is also the outbox of what Stripe must bill: ``reported`` units have reached
  Stripe as meter events; ``inflight`` is the report being sent (same identifier on every
  retry); ``report_due`` says the drainer should look at it.
* ``BillingMeter`` — the Stripe meter of a feature (its ``event_name``), found again by
  event name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document
from pydantic import BaseModel, Field
from pymongo import IndexModel

from revenue_engine.clock import utcnow

#: The unique index on (organization, caller's event id).
USAGE_EVENT_INDEX = "usage_event_unique"


class UsageEvent(Document):
    organization_id: str
    #: The caller's id for the event: its idempotency key.
    event_id: str
    feature: str
    quantity: int
    timestamp: datetime
    stripe_subscription_id: str
    #: The counter (``UsageCounter.id``) it is counted in.
    counter_id: str
    #: The write that counts it; ``counted`` once its counter carries the batch's mark.
    batch: str
    counted: bool = False
    received_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "usage_events"
        indexes = [
            IndexModel(
                [("organization_id", pymongo.ASCENDING), ("event_id", pymongo.ASCENDING)],
                unique=True,
                name=USAGE_EVENT_INDEX,
            ),
            IndexModel([("counted", pymongo.ASCENDING), ("received_at", pymongo.ASCENDING)]),
        ]


class MeterReport(BaseModel):
    """A report of billable units ``[start, end)`` of a counter to Stripe, as sent (and resent
    on every retry: the same identifier and idempotency key)."""

    start: int
    end: int
    identifier: str
    timestamp: datetime
    since: datetime = Field(default_factory=utcnow)


def counter_id(stripe_subscription_id: str, period_start: datetime, feature: str) -> str:
    """The counter's ``_id``: one per (subscription, period, feature), known without a read."""
    return f"{stripe_subscription_id}:{int(period_start.timestamp())}:{feature}"


class UsageCounter(Document):
    id: str  # type: ignore[assignment]  # deterministic: see ``counter_id``
    organization_id: str
    stripe_subscription_id: str
    stripe_customer_id: str
    feature: str
    period_start: datetime
    period_end: datetime
    used: int = 0
    #: Batch id -> when it was added; a batch is added at most once. Trimmed after an hour.
    marks: dict[str, datetime] = Field(default_factory=dict)
    #: Billable units Stripe has acknowledged (meter events sent and answered).
    reported: int = 0
    inflight: MeterReport | None = None
    report_due: bool = False
    #: When a report last failed, and how many times in a row (the drainer's backoff).
    report_failures: int = 0
    report_retry_at: datetime | None = None
    last_report_error: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "usage_counters"
        indexes = [
            IndexModel(
                [("organization_id", pymongo.ASCENDING), ("period_start", pymongo.DESCENDING)]
            ),
            IndexModel([("report_due", pymongo.ASCENDING), ("updated_at", pymongo.ASCENDING)]),
            IndexModel([("stripe_subscription_id", pymongo.ASCENDING)]),
        ]


class BillingMeter(Document):
    """The Stripe Billing Meter that counts a feature's billable units."""

    feature: str
    event_name: str
    stripe_meter_id: str
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "billing_meters"
        indexes = [
            IndexModel([("event_name", pymongo.ASCENDING)], unique=True, name="event_name_unique")
        ]


class MeterErrorReport(Document):
    """A ``billing.meter.error_report_triggered`` event from Stripe: meter events it refused
    after accepting them (unknown customer, no active meter, bad value). Visible to admins."""

    stripe_event_id: str
    stripe_meter_id: str | None = None
    event_name: str | None = None
    error_count: int = 0
    error_codes: list[str] = Field(default_factory=list)
    summary: str = ""
    sample: dict[str, Any] = Field(default_factory=dict)
    validation_start: datetime | None = None
    validation_end: datetime | None = None
    received_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "meter_error_reports"
        indexes = [
            IndexModel(
                [("stripe_event_id", pymongo.ASCENDING)], unique=True, name="stripe_event_unique"
            ),
            IndexModel([("received_at", pymongo.DESCENDING)]),
        ]
