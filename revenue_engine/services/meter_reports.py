"""Reporting billable usage to Stripe as meter events, each billable unit exactly once.

The counter is the outbox. A ``UsageCounter`` knows how many units it ``used``, how many of
its billable units Stripe has acknowledged (``reported``) and, while a report is on its way,
which range it covers (``inflight``). Ingestion marks a counter ``report_due``; the drainer
(``drain_once``, run by the background loop and by ``revenue-engine usage report``) takes
the due counters and, for each (``report_counter``):

1. computes the target: ``max(0, used - included)`` when overage is on for the feature, else
   what was reported already (never less: what Stripe has is billed);
2. resends the ``inflight`` report if there is one; else, when the target is above
   ``reported``, writes ``inflight = [reported, target)`` first, with a compare-and-set on
   ``{inflight: null, reported: <seen>}`` so two drainers never cut two reports from the same
   units, a deterministic ``identifier`` (a hash of counter, start and end) and a timestamp:
   Stripe's now (a test clock's time for a subscription on one) within the counter's period;
3. sends ``create_meter_event`` with that identifier and an idempotency key derived from it
   and the timestamp: a resend after a crash, a timeout or an answer lost on the way back is
   the same request, which Stripe counts once (its identifier dedupe; its idempotency replay);
4. on Stripe's answer (or its duplicate-identifier refusal: it has the event) acknowledges
   with a compare-and-set: ``reported = end, inflight = null``;
5. clears ``report_due`` once nothing is left, with a filter on the ``used`` it saw, so units
   counted meanwhile keep it due.

Failures never drop the inflight report. Stripe unavailable, timing out, 5xx or 429: retried
after ``backoff_seconds(failures)`` (2 s, 4 s, … capped at 300 s, jittered). Refused (a 400):
``last_report_error`` says why, logged at ERROR, retried at the longest backoff until someone
fixes the cause. A pass runs under the lease ``meter-reports``: one instance at a time; an
instance that finds it held skips the pass rather than queueing behind it.

Stripe takes a meter event dated within the past 35 days (and 5 minutes ahead). A report it
refuses for its date is dated again, now, within its period (same identifier, a new key: a
yearly period's report left inflight for over 35 days still bills at the period's end); when
the period ended too long ago for any date in it, the report is given up on — kept on the
counter with ``last_report_error``, logged at ERROR once, no longer due.

Limits: Stripe dedupes identifiers for at least 24 hours, so an inflight report left
unacknowledged longer than that (Stripe refusing it for a day) could count twice if Stripe had
in fact received it; units reported after the period's invoice is finalized are not billed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import Int64

from revenue_engine.clock import as_utc, utcnow
from revenue_engine.db import StoreError
from revenue_engine.documents import Subscription, UsageCounter
from revenue_engine.documents.usage import MeterReport
from revenue_engine.errors import (
    Busy,
    DomainError,
    DuplicateMeterEvent,
    MeterEventTimestampRefused,
    RateLimited,
    ServiceUnavailable,
)
from revenue_engine.gateway import MeterEventCalls, idempotency_key
from revenue_engine.logs import scrub
from revenue_engine.services import entitlements, leases, plan_cache
from revenue_engine.services.clock import subscription_now
from revenue_engine.services.meters import event_name
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

#: The lease that makes one instance at a time drain.
LEASE_KEY = "meter-reports"
#: Counters reported at once within a pass (Stripe allows one concurrent call per customer and
#: meter; counters are per customer and feature, so this stays within it).
CONCURRENCY = 8
#: Reports one ``report_counter`` call sends at most (usage counted while a report was on its
#: way makes a second one); anything left stays due for the next pass.
MAX_REPORTS_PER_CALL = 3
#: The longest wait before a failed report is retried, and the base of the doubling.
MAX_BACKOFF_SECONDS = 300.0
#: Jitter: a delay is drawn from ``[JITTER * d, d]`` so instances do not retry in lockstep
#: (while it doubles, each draw still exceeds the previous one: ``2 * JITTER > 1``).
JITTER = 0.8

#: How far back Stripe takes a meter event's timestamp ("within the past 35 calendar days").
STRIPE_PAST_WINDOW = timedelta(days=35)
#: A report is redated only to a date this far inside that window (clocks differ).
REDATE_MARGIN = timedelta(hours=1)

#: Failures Stripe may recover from on its own: retried with the growing backoff.
TRANSIENT = (ServiceUnavailable, RateLimited, TimeoutError)


def backoff_seconds(failures: int, *, permanent: bool = False) -> float:
    """The wait after ``failures`` failures in a row: ``min(2**failures, 300)`` seconds (the
    maximum for a refused report), jittered down by at most 20%."""
    doubled = min(2.0 ** max(failures, 1), MAX_BACKOFF_SECONDS)
    ceiling = MAX_BACKOFF_SECONDS if permanent else doubled
    return ceiling * (JITTER + (1 - JITTER) * random.random())  # noqa: S311 - jitter


def identifier(counter_id: str, start: int, end: int) -> str:
    """The meter event identifier of the range ``[start, end)`` of a counter: the same on
    every resend, distinct for every range (ranges of a counter never overlap)."""
    digest = hashlib.sha256(f"{counter_id}:{start}:{end}".encode()).hexdigest()[:40]
    return f"re_{digest}"


@dataclass(slots=True)
class CounterReport:
    """What ``report_counter`` did to one counter."""

    #: Meter events Stripe acknowledged (resends of an inflight report included).
    events: int = 0
    #: Billable units those events carried.
    units: int = 0
    #: A send failed (the report stays inflight, retried after a backoff).
    failed: bool = False


@dataclass(slots=True)
class DrainFigures:
    """What a pass did: counters looked at, meter events and units acknowledged, failures;
    ``skipped`` when another instance held the lease (nothing was looked at)."""

    counters: int = 0
    events: int = 0
    units: int = 0
    failures: int = 0
    skipped: bool = False

    def add(self, report: CounterReport) -> None:
        self.counters += 1
        self.events += report.events
        self.units += report.units
        self.failures += int(report.failed)

    def line(self) -> str:
        if self.skipped:
            return "skipped: another instance is reporting usage"
        return (
            f"{self.counters} counters, {self.events} meter events, "
            f"{self.units} units reported, {self.failures} failures"
        )


def _collection() -> Any:
    return UsageCounter.get_motor_collection()


async def _reload(counter_id: str) -> UsageCounter | None:
    return await UsageCounter.get(counter_id)


async def _subscription(counter: UsageCounter) -> Subscription | None:
    return await Subscription.find_one({"stripe_subscription_id": counter.stripe_subscription_id})


async def _target(counter: UsageCounter, sub: Subscription | None) -> int | None:
    """Units of the counter Stripe should have: its billable part (used beyond the included
    quantity) while an item billing the feature is on the subscription, else what it has
    already. Overage switched off does not stop the reports: usage past the included quantity
    is refused from then on, so what is billable was accepted while it was on, and Stripe bills
    it at the period end (the item stays until then). None when the subscription or its plan
    is missing."""
    if sub is None or sub.plan_uid is None:
        return None
    plan = await plan_cache.plan(sub.plan_uid)
    if plan is None:
        return None
    billing = any(i.metered_feature == counter.feature for i in sub.items)
    if not billing and not entitlements.overage_on(plan, sub, counter.feature):
        return counter.reported
    granted = sub.entitlements
    if counter.feature not in granted:
        # A subscription reconciled before metered features existed: derive its limits.
        granted = entitlements.limits(plan, sub.items)
    included = entitlements.included(plan, granted, counter.feature, sub.interval)
    if included is None:
        return counter.reported  # unlimited: counted, never billed
    return max(counter.used - included, counter.reported, 0)


def _stripe_now(sub: Subscription | None) -> datetime:
    """Now as Stripe judges a meter event of ``sub``'s customer: a test clock's time for a
    subscription on one, else ours."""
    return subscription_now(sub) if sub is not None else utcnow()


def _timestamp(counter: UsageCounter, now: datetime) -> datetime:
    """``now`` (Stripe's) inside the counter's period (Stripe bills an event into the period
    of its timestamp: a report sent after the period ended still belongs to it)."""
    start, end = as_utc(counter.period_start), as_utc(counter.period_end)
    return max(start, min(now, end - timedelta(seconds=1)))


async def _claim_range(counter: UsageCounter, target: int, now: datetime) -> MeterReport | None:
    """Write ``inflight = [reported, target)`` if nobody else wrote one since ``counter`` was
    read; the report, or None when another drainer got there first."""
    report = MeterReport(
        start=counter.reported,
        end=target,
        identifier=identifier(counter.id, counter.reported, target),
        timestamp=_timestamp(counter, now),
    )
    result = await _collection().update_one(
        {"_id": counter.id, "inflight": None, "reported": counter.reported},
        {"$set": {"inflight": report.model_dump(), "updated_at": utcnow()}},
    )
    return report if result.matched_count else None


async def _send(
    gateway: MeterEventCalls, settings: Settings, counter: UsageCounter, report: MeterReport
) -> None:
    """Send ``report``, the counter's inflight one; a duplicate identifier is Stripe having it."""
    params = {
        "event_name": event_name(settings, counter.feature),
        "payload": {
            "stripe_customer_id": counter.stripe_customer_id,
            "value": str(report.end - report.start),
        },
        "identifier": report.identifier,
        "timestamp": int(as_utc(report.timestamp).timestamp()),
    }
    # The date is part of the key: a report Stripe refused for its date is sent again dated
    # otherwise (``_redate``), the same identifier under a new key.
    stamp = int(as_utc(report.timestamp).timestamp())
    key = idempotency_key(counter.organization_id, "meter_event", report.identifier, stamp)
    try:
        await gateway.create_meter_event(params, key=key)
    except DuplicateMeterEvent:
        log.info(
            "meter event already at stripe counter=%s identifier=%s",
            counter.id,
            report.identifier,
        )


async def _acknowledge(counter: UsageCounter, report: MeterReport) -> bool:
    """Mark ``report`` (the counter's inflight one) sent; False when another sender did."""
    result = await _collection().update_one(
        {"_id": counter.id, "inflight.identifier": report.identifier, "reported": report.start},
        {
            "$set": {
                "reported": report.end,
                "inflight": None,
                "report_failures": 0,
                "report_retry_at": None,
                "last_report_error": None,
                "updated_at": utcnow(),
            }
        },
    )
    return bool(result.matched_count)


def _describe(exc: BaseException) -> str:
    reason = exc.message if isinstance(exc, DomainError) else str(exc)
    return scrub(f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__)[:500]


async def _record_failure(counter: UsageCounter, *, permanent: bool, reason: str) -> None:
    """Keep the inflight report and schedule its retry (see the module docstring)."""
    report = counter.inflight
    failures = counter.report_failures + 1
    delay = backoff_seconds(failures, permanent=permanent)
    update: dict[str, Any] = {
        "report_failures": failures,
        "report_retry_at": utcnow() + timedelta(seconds=delay),
        "updated_at": utcnow(),
    }
    if permanent:
        update["last_report_error"] = reason
        log.error(
            "meter report refused counter=%s organization_id=%s identifier=%s reason=%s "
            "retry_in=%.0fs",
            counter.id,
            counter.organization_id,
            report.identifier if report else "-",
            reason,
            delay,
        )
    else:
        log.warning(
            "meter report failed counter=%s organization_id=%s reason=%s failures=%d "
            "retry_in=%.1fs",
            counter.id,
            counter.organization_id,
            reason,
            failures,
            delay,
        )
    query: dict[str, Any] = {"_id": counter.id}
    if report is not None:
        # Another sender may have acknowledged it meanwhile: then there is nothing to retry.
        query["inflight.identifier"] = report.identifier
    await _collection().update_one(query, {"$set": update})


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _clear_due(counter: UsageCounter) -> None:
    # Only if no unit was counted since the read (ingestion sets report_due with its $inc).
    await _collection().update_one(
        # ``used`` is stored 64-bit (see ``services.usage``); some servers compare types too.
        {"_id": counter.id, "used": Int64(counter.used), "inflight": None, "report_due": True},
        {"$set": {"report_due": False}},
    )


async def _redate(counter: UsageCounter, report: MeterReport, now: datetime) -> UsageCounter | None:
    """The inflight ``report`` dated ``now`` (Stripe's) within its period instead of the date
    Stripe refused, written first (a compare-and-set on its identifier); ``None`` when no other
    date would do: the one the period allows is the refused one, or is more than 35 days back
    (so no date inside the period is one Stripe takes)."""
    stamp = _timestamp(counter, now)
    if stamp == as_utc(report.timestamp) or stamp < now - STRIPE_PAST_WINDOW + REDATE_MARGIN:
        return None
    result = await _collection().update_one(
        {"_id": counter.id, "inflight.identifier": report.identifier},
        {"$set": {"inflight.timestamp": stamp, "updated_at": utcnow()}},
    )
    if not result.matched_count:
        return await _reload(counter.id)  # acknowledged by another sender meanwhile
    log.warning(
        "meter report redated counter=%s identifier=%s refused=%s timestamp=%s",
        counter.id,
        report.identifier,
        as_utc(report.timestamp).isoformat(),
        stamp.isoformat(),
    )
    redated: UsageCounter = counter.model_copy(
        update={"inflight": report.model_copy(update={"timestamp": stamp})}
    )
    return redated


async def _give_up(counter: UsageCounter, report: MeterReport, reason: str) -> None:
    """Stop reporting a counter whose period Stripe no longer takes usage for: its inflight
    ``report`` stays (what was not billed remains visible) with ``last_report_error`` saying why,
    logged at ERROR once, and the counter is no longer due (no retry could ever succeed)."""
    message = (
        f"not billed: Stripe takes no meter event dated more than 35 days back, and the period "
        f"ended {as_utc(counter.period_end).isoformat()}; {report.end - report.start} units "
        f"of range [{report.start}, {report.end}) ({reason})"
    )[:500]
    log.error(
        "meter report abandoned counter=%s organization_id=%s identifier=%s units=%d reason=%s",
        counter.id,
        counter.organization_id,
        report.identifier,
        report.end - report.start,
        message,
    )
    await _collection().update_one(
        {"_id": counter.id, "inflight.identifier": report.identifier},
        {
            "$set": {
                "report_due": False,
                "report_retry_at": None,
                "last_report_error": message,
                "updated_at": utcnow(),
            }
        },
    )


async def report_counter(
    gateway: MeterEventCalls, settings: Settings, counter: UsageCounter
) -> CounterReport:
    """Bring Stripe up to date with one counter (as read: its ``reported`` and ``inflight``
    are the compare-and-set's expectations). Stripe failures are recorded on the counter and
    answered ``failed``; store errors propagate. Safe to run concurrently with itself."""
    outcome = CounterReport()
    current: UsageCounter | None = counter
    sub = await _subscription(counter)
    for _ in range(MAX_REPORTS_PER_CALL):
        if current is None:
            return outcome
        report = current.inflight
        if report is None:
            target = await _target(current, sub)
            if target is None:
                reason = f"subscription {current.stripe_subscription_id} or its plan is unknown"
                await _record_failure(current, permanent=True, reason=reason)
                outcome.failed = True
                return outcome
            if target <= current.reported:
                await _clear_due(current)
                return outcome
            claimed = await _claim_range(current, target, _stripe_now(sub))
            if claimed is None:
                return outcome  # another drainer cut this range; it sends it
            report = claimed
            current = current.model_copy(update={"inflight": report})
        try:
            await _send(gateway, settings, current, report)
        except MeterEventTimestampRefused as exc:
            # Dated by an older version on our wall clock rather than a test clock's, or left
            # inflight past Stripe's 35 days: the same units dated now, if their period allows.
            redated = await _redate(current, report, _stripe_now(sub))
            if redated is not None:
                current = redated
                continue
            if as_utc(current.period_end) < _stripe_now(sub) - STRIPE_PAST_WINDOW + REDATE_MARGIN:
                await _give_up(current, report, _describe(exc))
            else:
                await _record_failure(current, permanent=True, reason=_describe(exc))
            outcome.failed = True
            return outcome
        except Exception as exc:
            if _cancelling():
                # The SDK reports a cancelled call as a connection error: stop, record nothing.
                raise asyncio.CancelledError from None
            transient = isinstance(exc, TRANSIENT)
            await _record_failure(current, permanent=not transient, reason=_describe(exc))
            outcome.failed = True
            return outcome
        if await _acknowledge(current, report):
            outcome.events += 1
            outcome.units += report.end - report.start
        current = await _reload(current.id)
    return outcome


def _due_query(now: datetime) -> dict[str, Any]:
    return {
        "report_due": True,
        "$or": [{"report_retry_at": None}, {"report_retry_at": {"$lte": now}}],
    }


async def _report_all(
    gateway: MeterEventCalls, settings: Settings, counters: list[UsageCounter]
) -> DrainFigures:
    figures = DrainFigures()
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(counter: UsageCounter) -> None:
        async with limit:
            try:
                report = await report_counter(gateway, settings, counter)
            except StoreError as exc:
                # The next pass retries it; what was written (an inflight report) stands.
                log.warning(
                    "meter report store error counter=%s error=%s", counter.id, type(exc).__name__
                )
                report = CounterReport(failed=True)
            figures.add(report)

    await asyncio.gather(*(one(c) for c in counters))
    return figures


async def drain_once(gateway: MeterEventCalls, settings: Settings) -> DrainFigures:
    """One pass over the due counters (oldest change first, at most ``USAGE_REPORT_BATCH``),
    under the ``meter-reports`` lease; ``skipped`` when another instance holds it."""
    try:
        async with leases.hold(LEASE_KEY, wait_seconds=0):
            counters = (
                await UsageCounter.find(_due_query(utcnow()))
                .sort("+updated_at")
                .limit(settings.usage_report_batch)
                .to_list()
            )
            figures = await _report_all(gateway, settings, counters)
    except Busy:
        return DrainFigures(skipped=True)
    if figures.counters:
        log.info("meter reports %s", figures.line())
    return figures


async def flush_subscription_reports(
    gateway: MeterEventCalls,
    settings: Settings,
    stripe_subscription_id: str,
    *,
    period_start: datetime | None = None,
) -> DrainFigures:
    """Report a subscription's pending usage now, backoff or not (before an interval change or
    a cancellation ends its metered prices) — only its period starting ``period_start`` when
    given, so a report of an older period Stripe no longer takes cannot hold that change up.
    Not under the lease: the compare-and-sets keep a concurrent pass from reporting a unit
    twice. ``failures`` says whether anything is left."""
    query: dict[str, Any] = {
        "stripe_subscription_id": stripe_subscription_id,
        "$or": [{"report_due": True}, {"inflight": {"$ne": None}, "last_report_error": None}],
    }
    if period_start is not None:
        query["period_start"] = as_utc(period_start)
    counters = await UsageCounter.find(query).to_list()
    return await _report_all(gateway, settings, counters)
