"""GraphQL type of Stripe's meter error reports (admin only) and its converter."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from revenue_engine.documents import MeterErrorReport as MeterErrorReportDoc


@strawberry.type(
    description="Meter events Stripe dropped after accepting them "
    "(`billing.meter.error_report_triggered`): the usage they carried is not billed."
)
class MeterErrorReport:
    stripe_event_id: strawberry.ID = strawberry.field(description="The Stripe event (`evt_…`).")
    stripe_meter_id: str | None = strawberry.field(description="The meter (`mtr_…`).")
    event_name: str | None = strawberry.field(description="The meter's event name.")
    error_count: int = strawberry.field(description="Events refused in the window.")
    error_codes: list[str] = strawberry.field(
        description="Stripe's error codes, e.g. `meter_event_customer_not_found`."
    )
    summary: str = strawberry.field(description="Stripe's summary for developers.")
    sample: JSON = strawberry.field(
        description="One refused event: `code`, `error_message`, `identifier`."
    )
    validation_start: datetime | None = strawberry.field(description="Start of the window.")
    validation_end: datetime | None = strawberry.field(description="End of the window.")
    received_at: datetime


def meter_error_report_type(row: MeterErrorReportDoc) -> MeterErrorReport:
    return MeterErrorReport(
        stripe_event_id=strawberry.ID(row.stripe_event_id),
        stripe_meter_id=row.stripe_meter_id,
        event_name=row.event_name,
        error_count=row.error_count,
        error_codes=list(row.error_codes),
        summary=row.summary,
        sample=JSON(dict(row.sample)),
        validation_start=row.validation_start,
        validation_end=row.validation_end,
        received_at=row.received_at,
    )
