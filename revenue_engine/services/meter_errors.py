"""Stripe's reports of meter events it refused after accepting them
(``billing.meter.error_report_triggered``): recorded once per Stripe event, listed for admins.

Stripe validates meter events asynchronously: a report the drainer saw acknowledged can
still be dropped later (the customer was deleted, the meter deactivated). Stripe then says so
in an error report, which is all the engine ever hears of it; an admin reads it here and
repairs the cause (the units stay ``reported`` on their counter: nothing resends them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from revenue_engine.db import DuplicateKeyError
from revenue_engine.documents import BillingMeter, MeterErrorReport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """An error report as read from the event (see ``webhooks.handlers.metering``)."""

    stripe_event_id: str
    stripe_meter_id: str | None
    event_name: str | None
    error_count: int
    error_codes: list[str]
    summary: str
    sample: dict[str, Any] = field(default_factory=dict)
    validation_start: datetime | None = None
    validation_end: datetime | None = None


async def record_error_report(report: ErrorReport) -> bool:
    """Store ``report`` once per Stripe event id; False when it was recorded already (a
    replay or a redelivery)."""
    name = report.event_name
    if name is None and report.stripe_meter_id is not None:
        meter = await BillingMeter.find_one({"stripe_meter_id": report.stripe_meter_id})
        name = meter.event_name if meter is not None else None
    row = MeterErrorReport(
        stripe_event_id=report.stripe_event_id,
        stripe_meter_id=report.stripe_meter_id,
        event_name=name,
        error_count=report.error_count,
        error_codes=report.error_codes,
        summary=report.summary,
        sample=report.sample,
        validation_start=report.validation_start,
        validation_end=report.validation_end,
    )
    try:
        await row.insert()
    except DuplicateKeyError:
        return False
    # Billed usage Stripe dropped: someone must look (an ERROR, like a refused report).
    log.error(
        "meter error report event_id=%s meter=%s event_name=%s errors=%d codes=%s",
        report.stripe_event_id,
        report.stripe_meter_id or "-",
        name or "-",
        report.error_count,
        ",".join(report.error_codes) or "-",
    )
    return True


async def list_error_reports(first: int) -> list[MeterErrorReport]:
    """The latest ``first`` error reports, newest first."""
    return await MeterErrorReport.find_all().sort("-received_at").limit(first).to_list()
