"""The periodic loop: it waits for the database, runs every job each interval whatever one of
them raises, and stops by cancellation only — and the app's lifespan runs it (a due counter
is settled in the background) and stops it at shutdown."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from revenue_engine.clock import utcnow
from revenue_engine.documents import (
    BillingInterval,
    Subscription,
    SubscriptionPlan,
    UsageCounter,
)
from revenue_engine.documents.usage import counter_id
from revenue_engine.gateway import StripeApi
from revenue_engine.services.background import Job, run_job, run_periodically, usage_jobs
from revenue_engine.settings import Settings
from tests.conftest import make_settings


async def test_every_job_runs_each_interval_whatever_another_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[str] = []

    async def broken() -> object:
        runs.append("broken")
        raise RuntimeError("bug")

    three = asyncio.Event()

    async def counting() -> object:
        runs.append("counting")
        if runs.count("counting") == 3:
            three.set()
        return None

    ready = asyncio.Event()
    jobs = [Job("broken", broken), Job("counting", counting)]
    with caplog.at_level(logging.ERROR, logger="revenue_engine.services.background"):
        task = asyncio.create_task(run_periodically(jobs, 0.01, ready=ready))
        await asyncio.sleep(0.05)
        assert runs == []  # the database is not initialised yet
        ready.set()
        await asyncio.wait_for(three.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert runs[:4] == ["broken", "counting", "broken", "counting"]
    assert any("background job broken failed" in r.getMessage() for r in caplog.records)


async def test_a_job_cancelled_mid_call_stops_instead_of_logging_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()

    async def stripe_call() -> object:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            # The SDK turns a cancelled request into a connection error.
            raise ConnectionError("reset") from None
        return None

    task = asyncio.create_task(run_job(Job("stripe", stripe_call)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_store_down_is_a_warning_and_the_job_reports_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from revenue_engine.db import StoreError

    async def down() -> object:
        raise StoreError("no server")

    with caplog.at_level(logging.WARNING, logger="revenue_engine.services.background"):
        assert await run_job(Job("down", down)) is False
    [record] = caplog.records
    assert record.levelno == logging.WARNING


def test_usage_jobs_complete_batches_before_they_report() -> None:
    jobs = usage_jobs(cast(StripeApi, object()), make_settings())
    assert [job.name for job in jobs] == [
        "usage-completion",
        "meter-reports",
        "overage-settlement",
        "usage-marks",
    ]


async def test_the_app_drains_due_counters_in_the_background(
    client_for: Callable[[Settings], Any],
) -> None:
    """Overage off: the pass settles the counter without a Stripe call (the emulator has no
    meter events yet); what matters here is that the lifespan runs the loop."""
    settings = make_settings(
        mongodb_database=f"t_{uuid.uuid4().hex[:12]}", usage_report_interval_seconds=0.05
    )
    await client_for(settings)
    start = datetime.now(UTC).replace(microsecond=0)
    await SubscriptionPlan(uid="bg", name="Background", entitlements={"api_calls": 10}).insert()
    await Subscription(
        stripe_subscription_id="sub_bg",
        organization_id="org_bg",
        stripe_customer_id="cus_bg",
        status="active",
        plan_uid="bg",
        interval=BillingInterval.MONTH,
        current_period_start=start,
        current_period_end=start + timedelta(days=30),
        observed_at=utcnow(),
    ).insert()
    cid = counter_id("sub_bg", start, "api_calls")
    await UsageCounter(
        id=cid,
        organization_id="org_bg",
        stripe_subscription_id="sub_bg",
        stripe_customer_id="cus_bg",
        feature="api_calls",
        period_start=start,
        period_end=start + timedelta(days=30),
        used=50,
        report_due=True,
    ).insert()
    for _ in range(200):
        row = await UsageCounter.get(cid)
        assert row is not None
        if not row.report_due:
            break
        await asyncio.sleep(0.02)
    assert row.report_due is False
    assert row.reported == 0
