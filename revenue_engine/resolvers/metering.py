"""Resolvers of usage reporting to Stripe: the meter error reports (admin only)."""

from __future__ import annotations

from revenue_engine.context import Info
from revenue_engine.schema.metering import MeterErrorReport, meter_error_report_type
from revenue_engine.schema.pagination import page_size
from revenue_engine.services.meter_errors import list_error_reports


async def meter_error_reports(info: Info, first: int | None = 20) -> list[MeterErrorReport]:
    info.context.require_admin()
    rows = await list_error_reports(page_size(first))
    return [meter_error_report_type(row) for row in rows]
