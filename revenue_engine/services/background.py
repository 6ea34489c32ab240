"""The engine's periodic work: one task per process, started by the app's lifespan and
cancelled at shutdown, that runs a list of jobs every ``USAGE_REPORT_INTERVAL_SECONDS``.

A job is a named ``async () -> object``. Each run of each job is on its own: a job that raises
is logged and the loop goes on (the next interval retries it); only cancellation stops it. The
jobs are idempotent and safe on every instance at once (each takes its own lease or
compare-and-sets), so nothing coordinates the loops of several instances.

``usage_jobs`` lists the jobs of usage-based billing, in order: completing interrupted
batches (``services.usage.complete_pending_batches``), the meter report drain
(``services.meter_reports.drain_once``), settling overage switches and plan changes
(``services.overage.settle_overage_switches``: removing or swapping a metered item once its
period's overage is billed) and trimming old batch marks (``services.usage.trim_marks``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from revenue_engine.db import StoreError
from revenue_engine.gateway import StripeApi
from revenue_engine.services.meter_reports import drain_once
from revenue_engine.services.overage import settle_overage_switches
from revenue_engine.services.usage import complete_pending_batches, trim_marks
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run: Callable[[], Awaitable[object]]


def usage_jobs(gateway: StripeApi, settings: Settings) -> list[Job]:
    """The periodic jobs of usage-based billing, in the order they run."""

    async def drain() -> object:
        return await drain_once(gateway, settings)

    async def settle() -> object:
        return await settle_overage_switches(gateway, settings)

    # Completed batches first, so a pass reports on the counts as they stand.
    return [
        Job("usage-completion", complete_pending_batches),
        Job("meter-reports", drain),
        Job("overage-settlement", settle),
        Job("usage-marks", trim_marks),
    ]


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def run_job(job: Job) -> bool:
    """Run ``job`` once; False when it raised (logged: a store outage as a warning, anything
    else with its traceback)."""
    try:
        await job.run()
    except Exception as exc:
        if _cancelling():
            raise asyncio.CancelledError from None  # a cancelled Stripe call surfaces as an error
        if isinstance(exc, (StoreError, TimeoutError)):
            log.warning("background job %s: unavailable error=%s", job.name, type(exc).__name__)
        else:
            log.exception("background job %s failed", job.name)
        return False
    return True


async def run_periodically(
    jobs: Sequence[Job], interval_seconds: float, *, ready: asyncio.Event | None = None
) -> None:
    """Forever: once ``ready`` is set (the database initialised), run every job in turn, then
    sleep ``interval_seconds``. Returns only by cancellation."""
    if ready is not None:
        await ready.wait()
    while True:
        for job in jobs:
            await run_job(job)
        await asyncio.sleep(interval_seconds)
