"""The meter report drainer on both stores, against a recording stand-in for Stripe's meter
events endpoint that dedupes by identifier as Stripe does and fails on demand: every billable
unit reaches "Stripe" exactly once — under retries, lost answers, a crash between the inflight
report and its acknowledgement, two drainers at once — and nothing is reported with overage
off or below the included quantity; failed reports back off, capped."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import Int64

from revenue_engine.clock import as_utc, utcnow
from revenue_engine.db import Database
from revenue_engine.documents import (
    AddonKind,
    BillingInterval,
    Overage,
    PlanPrice,
    Subscription,
    SubscriptionItem,
    SubscriptionPlan,
    UsageCounter,
)
from revenue_engine.documents.usage import counter_id
from revenue_engine.errors import (
    DuplicateMeterEvent,
    PaymentProviderRejected,
    RateLimited,
    ServiceUnavailable,
)
from revenue_engine.gateway import MeterEventCalls, idempotency_key
from revenue_engine.gateway.models.catalog import MeterEventReceipt
from revenue_engine.services import meter_reports, meters
from revenue_engine.services.meter_reports import (
    MAX_BACKOFF_SECONDS,
    backoff_seconds,
    drain_once,
    flush_subscription_reports,
    report_counter,
)
from revenue_engine.settings import Settings
from tests.conftest import make_settings

SUB = "sub_1"
ORG = "org_1"
CUSTOMER = "cus_1"
FEATURE = "api_calls"
INCLUDED = 1000
# A period that is over (a report sent now is dated in its last second).
PERIOD_START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
PERIOD_END = PERIOD_START + timedelta(days=30)
CID = counter_id(SUB, PERIOD_START, FEATURE)


class Crash(BaseException):
    """The process dying mid-report: nothing after it runs (not even an except Exception)."""


class FakeMeterEvents:
    """Stripe's meter events endpoint as far as the drainer sees it: records every call, keeps
    one event per identifier (a second one is refused as Stripe refuses a duplicate, or with
    ``replay`` answered as the idempotency key replays it), and fails on demand.

    Modes queued in ``fail`` (one per call): ``unavailable`` / ``rate_limited`` (refused before
    Stripe has it), ``lost`` (Stripe has it, the answer is lost), ``rejected`` (a 400),
    ``crash`` (the process dies before the request leaves), ``crash_after`` (dies once Stripe
    has it)."""

    def __init__(self, *, replay: bool = False, delay: float = 0.0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.events: dict[str, int] = {}
        self.fail: list[str] = []
        self.replay = replay
        self.delay = delay

    @property
    def gateway(self) -> MeterEventCalls:
        return self  # the whole role: what the drainer is typed by

    @property
    def billed(self) -> int:
        return sum(self.events.values())

    async def create_meter_event(self, params: dict[str, Any], *, key: str) -> MeterEventReceipt:
        self.calls.append({**params, "key": key})
        if self.delay:
            await asyncio.sleep(self.delay)
        mode = self.fail.pop(0) if self.fail else None
        if mode == "unavailable":
            raise ServiceUnavailable("the payment provider failed; retry later")
        if mode == "rate_limited":
            raise RateLimited("Stripe is rate limiting requests; retry later")
        if mode == "rejected":
            raise PaymentProviderRejected("No such customer: 'cus_1'", "payload")
        if mode == "crash":
            raise Crash
        identifier = params["identifier"]
        if identifier in self.events and not self.replay:
            raise DuplicateMeterEvent(identifier)
        self.events.setdefault(identifier, int(params["payload"]["value"]))
        if mode == "lost":
            raise ServiceUnavailable("the payment provider is unreachable; retry later")
        if mode == "crash_after":
            raise Crash
        return MeterEventReceipt(identifier=identifier)


@pytest.fixture
def settings(store_settings: Settings) -> Settings:
    return store_settings


@pytest.fixture
async def store(database: Database) -> Database:
    plan = SubscriptionPlan(
        uid="pro",
        name="Pro",
        entitlements={FEATURE: INCLUDED},
        metered=[FEATURE],
        prices=[
            PlanPrice(
                interval=BillingInterval.MONTH, amount=4900, currency="usd", lookup_key="pro_month"
            )
        ],
        overages=[
            Overage(
                key="api_calls",
                name="Extra API calls",
                unit="100 calls",
                kind=AddonKind.METERED,
                feature=FEATURE,
                package_size=100,
                prices=[
                    PlanPrice(
                        interval=BillingInterval.MONTH,
                        amount=1500,
                        currency="usd",
                        lookup_key="pro_api_calls_month",
                    )
                ],
            )
        ],
    )
    await plan.insert()
    await Subscription(
        stripe_subscription_id=SUB,
        organization_id=ORG,
        stripe_customer_id=CUSTOMER,
        status="active",
        plan_uid="pro",
        interval=BillingInterval.MONTH,
        overages=["api_calls"],
        items=[
            SubscriptionItem(stripe_item_id="si_base", stripe_price_id="price_pro"),
            SubscriptionItem(
                stripe_item_id="si_calls",
                stripe_price_id="price_calls",
                quantity=0,
                overage_key="api_calls",
                metered_feature=FEATURE,
            ),
        ],
        entitlements={FEATURE: INCLUDED},
        current_period_start=PERIOD_START,
        current_period_end=PERIOD_END,
        observed_at=utcnow(),
    ).insert()
    return database


async def use(units: int, cid: str = CID, sub: str = SUB) -> None:
    """What ingestion does to a counter: ``$inc used`` and mark it due (overage on)."""
    collection = UsageCounter.get_motor_collection()
    await collection.update_one(
        {"_id": cid},
        {
            "$setOnInsert": {
                "organization_id": ORG,
                "stripe_subscription_id": sub,
                "stripe_customer_id": CUSTOMER,
                "feature": FEATURE,
                "period_start": PERIOD_START,
                "period_end": PERIOD_END,
                "used": Int64(0),  # as ingestion stores it
                "marks": {},
                "reported": 0,
                "inflight": None,
                "report_failures": 0,
                "report_retry_at": None,
                "last_report_error": None,
            },
        },
        upsert=True,
    )
    await collection.update_one(
        {"_id": cid},
        {"$inc": {"used": units}, "$set": {"report_due": True, "updated_at": utcnow()}},
    )


async def counter(cid: str = CID) -> UsageCounter:
    found = await UsageCounter.get(cid)
    assert found is not None
    return found


async def retry_now() -> None:
    """Let time pass until every backoff is over."""
    await UsageCounter.get_motor_collection().update_many(
        {}, {"$set": {"report_retry_at": utcnow() - timedelta(seconds=1)}}
    )


async def drain_until_quiet(stripe: FakeMeterEvents, settings: Settings, passes: int = 10) -> int:
    for n in range(passes):
        figures = await drain_once(stripe.gateway, settings)
        row = await counter()
        if not row.report_due and row.inflight is None:
            return n + 1
        await retry_now()
        assert not figures.skipped
    raise AssertionError("still due after every pass")


async def test_billable_units_are_reported_once_and_then_nothing(
    store: Database, settings: Settings
) -> None:
    stripe = FakeMeterEvents()
    await use(1500)
    figures = await drain_once(stripe.gateway, settings)
    assert (figures.counters, figures.events, figures.units, figures.failures) == (1, 1, 500, 0)
    [call] = stripe.calls
    assert call["event_name"] == f"{settings.meter_event_prefix}.{FEATURE}"
    assert call["payload"] == {"stripe_customer_id": CUSTOMER, "value": "500"}
    assert call["identifier"] == meter_reports.identifier(CID, 0, 500)
    assert call["key"] == idempotency_key(ORG, "meter_event", call["identifier"], call["timestamp"])
    # The event belongs to the counter's period (here long over): its last second.
    assert call["timestamp"] == int(PERIOD_END.timestamp()) - 1
    row = await counter()
    assert (row.reported, row.inflight, row.report_due) == (500, None, False)

    assert (await drain_once(stripe.gateway, settings)).counters == 0  # nothing due
    await use(250)
    await drain_once(stripe.gateway, settings)
    assert stripe.billed == 750
    assert [c["identifier"] for c in stripe.calls][1] == meter_reports.identifier(CID, 500, 750)
    assert (await counter()).reported == 750


async def test_usage_within_the_included_quantity_reports_nothing(
    store: Database, settings: Settings
) -> None:
    stripe = FakeMeterEvents()
    await use(INCLUDED)
    await drain_once(stripe.gateway, settings)
    assert stripe.calls == []
    row = await counter()
    assert (row.reported, row.report_due) == (0, False)


@pytest.mark.parametrize("replay", [False, True], ids=["duplicate-refused", "key-replayed"])
async def test_each_unit_is_reported_once_under_retries_and_lost_answers(
    store: Database, settings: Settings, replay: bool
) -> None:
    stripe = FakeMeterEvents(replay=replay)
    stripe.fail = ["unavailable", "lost", "rate_limited", "lost"]
    await use(1500)
    await drain_until_quiet(stripe, settings)
    # The refused and lost tries, then one that Stripe answers (or refuses as a duplicate).
    assert len(stripe.calls) == (5 if replay else 4)
    assert {c["identifier"] for c in stripe.calls} == {meter_reports.identifier(CID, 0, 500)}
    assert len({c["key"] for c in stripe.calls}) == 1
    assert len({c["timestamp"] for c in stripe.calls}) == 1  # the same request every time
    assert stripe.billed == 500
    row = await counter()
    assert (row.reported, row.report_failures, row.report_retry_at) == (500, 0, None)


async def test_usage_counted_while_a_report_fails_waits_for_it(
    store: Database, settings: Settings
) -> None:
    """The inflight range is resent as it was; later units go in a range of their own."""
    stripe = FakeMeterEvents()
    stripe.fail = ["lost"]
    await use(1500)
    await drain_once(stripe.gateway, settings)
    await use(300)
    await retry_now()
    await drain_once(stripe.gateway, settings)
    assert [c["payload"]["value"] for c in stripe.calls] == ["500", "500", "300"]
    assert stripe.billed == 800
    assert (await counter()).reported == 800


@pytest.mark.parametrize("where", ["crash", "crash_after"])
async def test_a_crash_between_the_inflight_report_and_its_ack_counts_once(
    store: Database, settings: Settings, where: str
) -> None:
    stripe = FakeMeterEvents()
    stripe.fail = [where]
    await use(1500)
    with pytest.raises(Crash):
        await drain_once(stripe.gateway, settings)
    row = await counter()
    assert row.inflight is not None
    assert row.reported == 0
    # A new process: the lease the dead one held is released or expires; its report is resent.
    await drain_once(stripe.gateway, settings)
    assert [c["identifier"] for c in stripe.calls] == [row.inflight.identifier] * 2
    assert stripe.billed == 500
    row = await counter()
    assert (row.reported, row.inflight, row.report_due) == (500, None, False)


async def test_two_drainers_at_once_one_runs_the_other_skips(
    store: Database, settings: Settings
) -> None:
    stripe = FakeMeterEvents(delay=0.05)
    await use(1500)
    first, second = await asyncio.gather(
        drain_once(stripe.gateway, settings), drain_once(stripe.gateway, settings)
    )
    assert sorted([first.skipped, second.skipped]) == [False, True]
    assert len(stripe.calls) == 1
    assert stripe.billed == 500


async def test_two_reports_of_one_counter_send_a_range_once(
    store: Database, settings: Settings
) -> None:
    """No lease here (``flush_subscription_reports`` runs beside a pass): the compare-and-set
    on the inflight report lets one of them cut and send the range."""
    stripe = FakeMeterEvents(delay=0.05)
    await use(1500)
    seen = await counter()
    a, b = await asyncio.gather(
        report_counter(stripe.gateway, settings, seen),
        report_counter(stripe.gateway, settings, seen),
    )
    assert len(stripe.calls) == 1
    assert sorted([a.units, b.units]) == [0, 500]
    assert stripe.billed == 500
    assert (await counter()).reported == 500


async def test_overage_switched_off_still_reports_what_was_accepted_while_on(
    store: Database, settings: Settings
) -> None:
    """Off, ingestion refuses usage past the included quantity: what is billable beyond it
    was accepted while overage was on, and the metered item stays to bill it."""
    await use(1500)
    sub = await Subscription.find_one({"stripe_subscription_id": SUB})
    assert sub is not None
    await sub.set({"overage_off": [FEATURE]})
    stripe = FakeMeterEvents()
    await drain_once(stripe.gateway, settings)
    assert stripe.billed == 500
    row = await counter()
    assert (row.reported, row.report_due) == (500, False)


async def test_without_an_item_billing_the_feature_nothing_is_reported(
    store: Database, settings: Settings
) -> None:
    sub = await Subscription.find_one({"stripe_subscription_id": SUB})
    assert sub is not None
    await sub.set({"overage_off": [FEATURE], "items": [sub.items[0].model_dump()]})
    stripe = FakeMeterEvents()
    await use(5000)
    await drain_once(stripe.gateway, settings)
    assert stripe.calls == []
    row = await counter()
    assert (row.reported, row.report_due) == (0, False)


async def test_without_the_metered_addon_nothing_is_reported(
    store: Database, settings: Settings
) -> None:
    sub = await Subscription.find_one({"stripe_subscription_id": SUB})
    assert sub is not None
    await sub.set({"overages": [], "items": [sub.items[0].model_dump()]})
    stripe = FakeMeterEvents()
    await use(5000)
    await drain_once(stripe.gateway, settings)
    assert stripe.calls == []


async def test_a_plan_change_raising_the_included_quantity_reports_nothing_more(
    store: Database, settings: Settings
) -> None:
    stripe = FakeMeterEvents()
    await use(1500)
    await drain_once(stripe.gateway, settings)
    assert stripe.billed == 500
    # Upgraded mid-period to 2,000 included: the 500 reported stay reported (billed).
    sub = await Subscription.find_one({"stripe_subscription_id": SUB})
    assert sub is not None
    await sub.set({"entitlements": {FEATURE: 2000}})
    await use(600)  # 2,100 used: 100 beyond the new quantity, fewer than already reported
    await drain_once(stripe.gateway, settings)
    assert len(stripe.calls) == 1
    row = await counter()
    assert (row.reported, row.report_due) == (500, False)
    await use(500)  # 2,600 used: 600 billable, 500 of them reported
    await drain_once(stripe.gateway, settings)
    assert [c["payload"]["value"] for c in stripe.calls] == ["500", "100"]
    assert stripe.billed == 600


async def test_transient_failures_back_off_growing_and_capped(
    store: Database, settings: Settings
) -> None:
    stripe = FakeMeterEvents()
    stripe.fail = ["unavailable"] * 12
    await use(1500)
    delays: list[float] = []
    for _ in range(12):
        before = utcnow()
        figures = await drain_once(stripe.gateway, settings)
        assert figures.failures == 1
        row = await counter()
        assert row.report_retry_at is not None
        delays.append((as_utc(row.report_retry_at) - before).total_seconds())
        # Not due again before the backoff is over: the next pass leaves it alone.
        assert (await drain_once(stripe.gateway, settings)).counters == 0
        await retry_now()
    row = await counter()
    assert row.report_failures == 12
    assert row.inflight is not None
    assert row.inflight.identifier == stripe.calls[0]["identifier"]
    assert row.last_report_error is None  # transient: not an error to show
    # 2, 4, … 256 s (each jittered draw above the previous one), then 300 s at most.
    assert 1.5 <= delays[0] <= 2.1
    assert all(delays[n] < delays[n + 1] for n in range(7))
    assert all(d <= MAX_BACKOFF_SECONDS + 1 for d in delays)
    assert all(d >= MAX_BACKOFF_SECONDS * meter_reports.JITTER - 1 for d in delays[8:])
    assert stripe.billed == 0
    await drain_until_quiet(stripe, settings)  # Stripe is back
    assert stripe.billed == 500


def test_backoff_doubles_from_two_seconds_up_to_five_minutes() -> None:
    for failures in range(1, 15):
        expected = min(2.0**failures, MAX_BACKOFF_SECONDS)
        for _ in range(20):
            delay = backoff_seconds(failures)
            assert expected * meter_reports.JITTER <= delay <= expected
    assert backoff_seconds(1, permanent=True) >= MAX_BACKOFF_SECONDS * meter_reports.JITTER


async def test_a_refused_report_is_kept_logged_and_retried_at_the_longest_backoff(
    store: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    stripe = FakeMeterEvents()
    stripe.fail = ["rejected"]
    await use(1500)
    before = utcnow()
    with caplog.at_level(logging.ERROR, logger="revenue_engine.services.meter_reports"):
        figures = await drain_once(stripe.gateway, settings)
    assert figures.failures == 1
    row = await counter()
    assert row.inflight is not None
    assert row.reported == 0
    assert row.last_report_error is not None
    assert "No such customer" in row.last_report_error
    assert row.report_retry_at is not None
    wait = (as_utc(row.report_retry_at) - before).total_seconds()
    assert MAX_BACKOFF_SECONDS * meter_reports.JITTER - 1 <= wait <= MAX_BACKOFF_SECONDS + 1
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "meter report refused" in record.getMessage()
    assert CID in record.getMessage()
    # The cause is fixed: the same report goes through, and the error is cleared.
    await retry_now()
    await drain_once(stripe.gateway, settings)
    row = await counter()
    assert (row.reported, row.last_report_error, row.report_failures) == (500, None, 0)
    assert stripe.billed == 500


async def test_a_counter_without_its_subscription_is_an_error_not_a_report(
    store: Database, settings: Settings
) -> None:
    stripe = FakeMeterEvents()
    other = counter_id("sub_gone", PERIOD_START, FEATURE)
    await use(1500, cid=other, sub="sub_gone")
    figures = await drain_once(stripe.gateway, settings)
    assert figures.failures == 1
    assert stripe.calls == []
    row = await counter(other)
    assert row.last_report_error is not None
    assert "sub_gone" in row.last_report_error
    assert row.report_due  # kept: reported once the subscription is known


async def test_flush_reports_a_subscription_now_despite_its_backoff(
    store: Database, settings: Settings
) -> None:
    stripe = FakeMeterEvents()
    stripe.fail = ["unavailable"]
    await use(1500)
    other = counter_id("sub_2", PERIOD_START, FEATURE)
    await use(1, cid=other, sub="sub_2")
    await drain_once(stripe.gateway, settings)
    row = await counter()
    assert row.report_retry_at is not None
    assert as_utc(row.report_retry_at) > utcnow()
    calls = len(stripe.calls)
    figures = await flush_subscription_reports(stripe.gateway, settings, SUB)
    assert (figures.counters, figures.units, figures.failures) == (1, 500, 0)
    assert len(stripe.calls) == calls + 1  # only this subscription's counter
    assert stripe.billed == 500
    assert (await counter()).reported == 500
    assert (await counter(other)).report_due  # the other subscription's is left to the pass


async def test_a_busy_lease_skips_the_pass_at_once(store: Database, settings: Settings) -> None:
    from revenue_engine.services import leases

    stripe = FakeMeterEvents()
    await use(1500)
    async with leases.hold(meter_reports.LEASE_KEY):
        started = asyncio.get_running_loop().time()
        figures = await drain_once(stripe.gateway, settings)
        assert asyncio.get_running_loop().time() - started < 1.0  # does not queue behind it
    assert figures.skipped
    assert figures.line().startswith("skipped")
    assert stripe.calls == []
    await drain_once(stripe.gateway, settings)
    assert stripe.billed == 500


def test_identifiers_are_deterministic_and_distinct_per_range() -> None:
    a = meter_reports.identifier(CID, 0, 500)
    assert a == meter_reports.identifier(CID, 0, 500)
    assert a.startswith("re_")
    assert len(a) == 43
    assert (
        len({a, meter_reports.identifier(CID, 0, 501), meter_reports.identifier(CID, 500, 750)})
        == 3
    )


def test_settings_give_the_event_name() -> None:
    assert meters.event_name(make_settings(), "api_calls") == "revenue_engine.api_calls"
    other = make_settings(meter_event_prefix="billing_eu")
    assert meters.event_name(other, "api_calls") == "billing_eu.api_calls"
