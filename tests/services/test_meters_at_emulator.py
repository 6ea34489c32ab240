"""A feature's meter found again at Stripe (the emulator, through the real SDK): an event name
belongs to one meter for good, so a deactivated meter is reactivated, never duplicated."""

from __future__ import annotations

from revenue_engine.db import Database
from revenue_engine.documents import BillingMeter
from revenue_engine.gateway import StripeGateway
from revenue_engine.services.meters import ensure_meter, event_name, meter_params
from tests.conftest import make_settings

SETTINGS = make_settings()


async def test_a_meter_is_created_once_then_found_by_its_row(
    database: Database, emulator_gateway: StripeGateway
) -> None:
    first = await ensure_meter(emulator_gateway, SETTINGS, "api_calls")
    again = await ensure_meter(emulator_gateway, SETTINGS, "api_calls")
    assert again.stripe_meter_id == first.stripe_meter_id
    meters = await emulator_gateway.list_meters()
    assert [m.id for m in meters] == [first.stripe_meter_id]
    assert meters[0].event_name == event_name(SETTINGS, "api_calls")


async def test_a_deactivated_meter_without_a_row_is_reactivated_not_duplicated(
    database: Database, emulator_gateway: StripeGateway
) -> None:
    name = event_name(SETTINGS, "api_calls")
    made = await emulator_gateway.create_meter(meter_params(name, "api_calls"), key="meter-setup-1")
    await emulator_gateway.client.v1.billing.meters.deactivate_async(made.id)
    meter = await ensure_meter(emulator_gateway, SETTINGS, "api_calls")
    assert meter.stripe_meter_id == made.id
    [only] = await emulator_gateway.list_meters()
    assert only.status == "active"
    assert await BillingMeter.find_all().count() == 1
