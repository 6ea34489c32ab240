"""Meter reports against the emulator through the real SDK, where Stripe's timestamp window
matters: a meter event must be dated within the past 35 days and at most 5 minutes ahead of
Stripe's now — on a test clock, the clock's time. A report dated by our wall clock, or one
left inflight for over 35 days, was refused for good; a yearly period's overage then never
reached Stripe."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import Int64
from stripe_emulator import EmulatorServer

from revenue_engine.clock import utcnow
from revenue_engine.db import Database
from revenue_engine.documents import (
    BillingInterval,
    Subscription,
    SubscriptionItem,
    UsageCounter,
)
from revenue_engine.documents.usage import MeterReport, counter_id
from revenue_engine.gateway import StripeGateway
from revenue_engine.services.meter_reports import (
    drain_once,
    flush_subscription_reports,
    identifier,
    report_counter,
)
from revenue_engine.services.meters import ensure_meter
from revenue_engine.services.usage_rules import shift_months
from tests.conftest import make_settings
from tests.usage_world import INCLUDED, save_plan

SETTINGS = make_settings()
DAY = 86_400


async def _customer(
    emulator_gateway: StripeGateway, stripe_emulator: EmulatorServer, clock_time: int | None
) -> str:
    customer = await emulator_gateway.client.v1.customers.create_async(params={"name": "Metered"})
    if clock_time is not None:
        clock = await emulator_gateway.client.v1.test_helpers.test_clocks.create_async(
            params={"frozen_time": clock_time}
        )
        stripe_emulator.emulator.attach_test_clock(customer.id, clock.id)
    return customer.id


async def _subscription(
    customer_id: str,
    start: datetime,
    interval: BillingInterval,
    *,
    clock_time: int | None = None,
) -> Subscription:
    plan = await save_plan()
    end = shift_months(start, 12 if interval is BillingInterval.YEAR else 1, start.day)
    items = [
        SubscriptionItem(stripe_item_id="si_base", stripe_price_id="price_base"),
        SubscriptionItem(
            stripe_item_id="si_api",
            stripe_price_id="price_api",
            overage_key="api_calls",
            metered_feature="api_calls",
        ),
    ]
    sub = Subscription(
        stripe_subscription_id="sub_metered",
        organization_id="org_metered",
        stripe_customer_id=customer_id,
        status="active",
        plan_uid=plan.uid,
        interval=interval,
        items=items,
        overages=["api_calls"],
        entitlements=dict(plan.entitlements),
        current_period_start=start,
        current_period_end=end,
        test_clock="clock" if clock_time is not None else None,
        last_event_created=clock_time,
        observed_at=utcnow(),
    )
    await sub.insert()
    return sub


async def _counter(sub: Subscription, used: int, inflight: MeterReport | None = None) -> str:
    assert sub.current_period_start is not None
    assert sub.current_period_end is not None
    cid = counter_id(sub.stripe_subscription_id, sub.current_period_start, "api_calls")
    await UsageCounter.get_motor_collection().insert_one(
        {
            "_id": cid,
            "organization_id": sub.organization_id,
            "stripe_subscription_id": sub.stripe_subscription_id,
            "stripe_customer_id": sub.stripe_customer_id,
            "feature": "api_calls",
            "period_start": sub.current_period_start,
            "period_end": sub.current_period_end,
            "used": Int64(used),
            "marks": {},
            "reported": 0,
            "inflight": inflight.model_dump() if inflight else None,
            "report_due": True,
            "report_failures": 0,
            "report_retry_at": None,
            "last_report_error": None,
            "updated_at": utcnow(),
        }
    )
    return cid


def _billed(stripe_emulator: EmulatorServer, meter_id: str, customer_id: str) -> int:
    return sum(
        r.value for r in stripe_emulator.emulator.state.meter_events.counted(meter_id, customer_id)
    )


@pytest.mark.parametrize(
    ("clock_days", "interval", "period_days_ago"),
    [
        (-200, BillingInterval.MONTH, 10),  # a clock in the past: wall time is in its future
        (100, BillingInterval.YEAR, 60),  # a clock ahead: wall time is before the period
    ],
    ids=["clock-in-the-past", "clock-ahead-yearly"],
)
async def test_a_report_is_dated_on_the_subscription_s_test_clock(
    database: Database,
    emulator_gateway: StripeGateway,
    stripe_emulator: EmulatorServer,
    clock_days: int,
    interval: BillingInterval,
    period_days_ago: int,
) -> None:
    clock_time = int(time.time()) + clock_days * DAY
    customer_id = await _customer(emulator_gateway, stripe_emulator, clock_time)
    start = datetime.fromtimestamp(clock_time - period_days_ago * DAY, tz=UTC)
    sub = await _subscription(customer_id, start, interval, clock_time=clock_time)
    meter = await ensure_meter(emulator_gateway, SETTINGS, "api_calls")
    included = INCLUDED * (12 if interval is BillingInterval.YEAR else 1)
    cid = await _counter(sub, included + 250)
    row = await UsageCounter.get(cid)
    assert row is not None
    outcome = await report_counter(emulator_gateway, SETTINGS, row)
    assert not outcome.failed, await UsageCounter.get(cid)
    assert _billed(stripe_emulator, meter.stripe_meter_id, customer_id) == 250
    done = await UsageCounter.get(cid)
    assert done is not None
    assert done.reported == 250
    assert done.inflight is None


async def test_an_inflight_report_older_than_stripe_s_window_is_redated_within_the_period(
    database: Database, emulator_gateway: StripeGateway, stripe_emulator: EmulatorServer
) -> None:
    """A yearly period's report cut 40 days ago and never delivered (Stripe down, the engine
    stopped): Stripe refuses its date, so it is dated now — still in its period, billed at the
    period's end — with the same identifier."""
    customer_id = await _customer(emulator_gateway, stripe_emulator, None)
    start = utcnow().replace(microsecond=0) - timedelta(days=100)
    sub = await _subscription(customer_id, start, BillingInterval.YEAR)
    meter = await ensure_meter(emulator_gateway, SETTINGS, "api_calls")
    assert sub.current_period_start is not None
    cid = counter_id(sub.stripe_subscription_id, sub.current_period_start, "api_calls")
    stale = MeterReport(
        start=0,
        end=300,
        identifier=identifier(cid, 0, 300),
        timestamp=utcnow() - timedelta(days=40),
        since=utcnow() - timedelta(days=40),
    )
    await _counter(sub, 12 * INCLUDED + 300, stale)
    row = await UsageCounter.get(cid)
    assert row is not None
    outcome = await report_counter(emulator_gateway, SETTINGS, row)
    assert not outcome.failed, await UsageCounter.get(cid)
    assert _billed(stripe_emulator, meter.stripe_meter_id, customer_id) == 300
    [record] = stripe_emulator.emulator.state.meter_events.counted(
        meter.stripe_meter_id, customer_id
    )
    assert record.identifier == stale.identifier
    assert record.timestamp > int(time.time()) - 60
    done = await UsageCounter.get(cid)
    assert done is not None
    assert (done.reported, done.inflight, done.last_report_error) == (300, None, None)


async def test_a_report_stripe_can_no_longer_take_stops_and_does_not_block_a_cancellation(
    database: Database, emulator_gateway: StripeGateway, stripe_emulator: EmulatorServer
) -> None:
    """A monthly period that ended 60 days ago with a report still inflight: no date inside it
    is within Stripe's 35 days, so nothing can bill it. It is recorded (and logged), no longer
    retried, and the flush before a cancellation — which reports the current period — does
    not fail on it forever."""
    customer_id = await _customer(emulator_gateway, stripe_emulator, None)
    now = utcnow().replace(microsecond=0)
    old_start = now - timedelta(days=90)
    sub = await _subscription(customer_id, now - timedelta(days=5), BillingInterval.MONTH)
    await ensure_meter(emulator_gateway, SETTINGS, "api_calls")
    old_cid = counter_id(sub.stripe_subscription_id, old_start, "api_calls")
    await UsageCounter.get_motor_collection().insert_one(
        {
            "_id": old_cid,
            "organization_id": sub.organization_id,
            "stripe_subscription_id": sub.stripe_subscription_id,
            "stripe_customer_id": customer_id,
            "feature": "api_calls",
            "period_start": old_start,
            "period_end": old_start + timedelta(days=30),
            "used": Int64(INCLUDED + 40),
            "marks": {},
            "reported": 0,
            "inflight": MeterReport(
                start=0,
                end=40,
                identifier=identifier(old_cid, 0, 40),
                timestamp=old_start + timedelta(days=29),
            ).model_dump(),
            "report_due": True,
            "report_failures": 0,
            "report_retry_at": None,
            "last_report_error": None,
            "updated_at": utcnow(),
        }
    )
    current = await _counter(sub, INCLUDED + 7)
    # Before a cancellation: the current period is reported, the old one holds nothing up.
    figures = await flush_subscription_reports(
        emulator_gateway,
        SETTINGS,
        sub.stripe_subscription_id,
        period_start=sub.current_period_start,
    )
    assert (figures.counters, figures.failures, figures.units) == (1, 0, 7)
    reported = await UsageCounter.get(current)
    assert reported is not None
    assert reported.reported == 7
    # The background pass finds the old one refused for its date with no date left to try.
    assert (await drain_once(emulator_gateway, SETTINGS)).failures == 1
    old = await UsageCounter.get(old_cid)
    assert old is not None
    assert not old.report_due  # not retried every five minutes for ever
    assert old.inflight is not None  # what could not be billed stays visible
    assert old.last_report_error is not None
    assert "35 days" in old.last_report_error
    assert (await drain_once(emulator_gateway, SETTINGS)).counters == 0
    everything = await flush_subscription_reports(
        emulator_gateway, SETTINGS, sub.stripe_subscription_id
    )
    assert everything.failures == 0
