"""Ingestion on both stores: counted once whatever is retried, raced or interrupted; the cap
holds under concurrency; bad events are refused without spoiling good ones."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from revenue_engine.clock import as_utc, utcnow
from revenue_engine.db import Database, StoreError
from revenue_engine.documents import BillingInterval, Subscription, UsageCounter, UsageEvent
from revenue_engine.documents.usage import counter_id
from revenue_engine.services import usage
from revenue_engine.services.usage import complete_pending_batches, record_usage, trim_marks
from tests.usage_world import INCLUDED, event, save_plan, subscribe


async def _counter(sid: str, feature: str = "api_calls") -> UsageCounter | None:
    sub_start = await _sub_start(sid)
    return await UsageCounter.get(counter_id(sid, sub_start, feature))


async def _sub_start(sid: str) -> datetime:
    sub = await Subscription.find_one({"stripe_subscription_id": sid})
    assert sub is not None
    assert sub.current_period_start is not None
    return as_utc(sub.current_period_start)


async def _used(sid: str = "sub_org_a", feature: str = "api_calls") -> int:
    counter = await _counter(sid, feature)
    return counter.used if counter else 0


def _statuses(result: usage.BatchResult) -> list[tuple[str | None, str, str | None]]:
    return [(r.id, r.status, r.reason.value if r.reason else None) for r in result.results]


async def test_a_batch_is_counted_and_settled(database: Database) -> None:
    plan = await save_plan()
    sub = await subscribe("org_a", plan)
    result = await record_usage(
        [event("e1", 5), event("e2", 7), event("s1", 40, feature="storage_gb")]
    )
    assert _statuses(result) == [
        ("e1", "accepted", None),
        ("e2", "accepted", None),
        ("s1", "accepted", None),
    ]
    assert result.as_json()["accepted"] == 3
    counter = await _counter(sub.stripe_subscription_id)
    assert counter is not None
    assert counter.used == 12
    assert counter.report_due  # overage on: the reporter looks at it
    assert counter.organization_id == "org_a"
    assert counter.stripe_customer_id == "cus_org_a"
    assert await _used(feature="storage_gb") == 40
    events = await UsageEvent.find_all().to_list()
    assert len(events) == 3
    assert all(e.counted for e in events)
    assert {e.counter_id for e in events} == {
        counter.id,
        counter_id("sub_org_a", await _sub_start("sub_org_a"), "storage_gb"),
    }


async def test_the_same_batch_twice_counts_once(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan)
    batch = [event(f"e{i}", i + 1) for i in range(20)]
    first = await record_usage(batch)
    again = await record_usage(batch)
    assert first.as_json()["accepted"] == 20
    assert again.as_json()["duplicates"] == 20
    assert {r.message for r in again.results} == {"already recorded"}
    assert await _used() == sum(range(1, 21))
    assert await UsageEvent.find_all().count() == 20


async def test_an_id_twice_in_one_batch_counts_its_first_event(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan)
    result = await record_usage(
        [event("x", 3), event("y", 1), event("x", 500), event("x", 3, feature="storage_gb")]
    )
    assert _statuses(result) == [
        ("x", "accepted", None),
        ("y", "accepted", None),
        ("x", "duplicate", None),
        ("x", "duplicate", None),  # any payload: the id is the key
    ]
    assert result.results[2].message == "the same id appears earlier in this batch"
    assert await _used() == 4
    assert await _used(feature="storage_gb") == 0


async def test_concurrent_batches_with_overlapping_ids_count_each_id_once(
    database: Database,
) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan)
    left = [event(f"e{i}", 1) for i in range(0, 60)]
    right = [event(f"e{i}", 1) for i in range(30, 90)]
    one, two = await asyncio.gather(record_usage(left), record_usage(right))
    assert await _used() == 90
    assert await UsageEvent.find_all().count() == 90
    for i in range(30, 60):  # the overlap: counted by exactly one of them
        statuses = {one.results[i].status, two.results[i - 30].status}
        assert statuses == {"accepted", "duplicate"}, i
    assert one.count("accepted") + two.count("accepted") == 90


async def test_many_concurrent_retries_of_one_batch_count_it_once(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan)
    batch = [event(f"r{i}", 2) for i in range(25)]
    answers = await asyncio.gather(*(record_usage(batch) for _ in range(6)))
    assert await _used() == 50
    assert sum(a.count("accepted") for a in answers) == 25
    assert sum(a.count("duplicate") for a in answers) == 125


async def test_a_crash_before_the_counter_moves_is_completed_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan)
    real = usage._count
    calls = 0

    async def crash_once(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreError("the process died here")
        return await real(*args)

    monkeypatch.setattr(usage, "_count", crash_once)
    with pytest.raises(StoreError):
        await record_usage([event("a", 4), event("b", 6)])
    assert await _used() == 0
    assert await UsageEvent.find({"counted": False}).count() == 2
    # Not yet a minute old: left alone (its own request may still be finishing).
    assert await complete_pending_batches() == 0
    assert await complete_pending_batches(older_than=timedelta(0)) == 1
    assert await _used() == 10
    assert await UsageEvent.find({"counted": False}).count() == 0
    assert await complete_pending_batches(older_than=timedelta(0)) == 0
    assert await _used() == 10
    # The client's retry of the interrupted batch: duplicates, nothing added.
    retry = await record_usage([event("a", 4), event("b", 6)])
    assert retry.count("duplicate") == 2
    assert await _used() == 10


async def test_a_crash_after_the_counter_moved_is_not_counted_again(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan)
    events = UsageEvent.get_motor_collection()
    real = events.update_many

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the process died before settling")

    monkeypatch.setattr(events, "update_many", refuse)
    with pytest.raises(StoreError):
        await record_usage([event("a", 4), event("b", 6)])
    monkeypatch.setattr(events, "update_many", real)
    assert await _used() == 10
    assert await UsageEvent.find({"counted": False}).count() == 2
    # The completer re-runs the counting step: the batch's mark stops a second addition.
    assert await complete_pending_batches(older_than=timedelta(0)) == 1
    assert await _used() == 10
    assert await UsageEvent.find({"counted": False}).count() == 0


async def test_with_overage_off_events_past_the_included_quantity_are_refused(
    database: Database,
) -> None:
    plan = await save_plan()
    sub = await subscribe("org_a", plan, overage=False)
    result = await record_usage(
        [event("a", 600), event("b", 300), event("c", 200), event("d", 100), event("e", 1)]
    )
    assert _statuses(result) == [
        ("a", "accepted", None),
        ("b", "accepted", None),
        ("c", "rejected", "QUOTA_EXCEEDED"),
        ("d", "accepted", None),  # in order, while it fits: 1,000 exactly
        ("e", "rejected", "QUOTA_EXCEEDED"),
    ]
    counter = await _counter(sub.stripe_subscription_id)
    assert counter is not None
    assert counter.used == INCLUDED
    assert not counter.report_due  # nothing billable with overage off
    assert await UsageEvent.find({"event_id": {"$in": ["c", "e"]}}).count() == 0
    later = await record_usage([event("f", 1)])
    assert _statuses(later) == [("f", "rejected", "QUOTA_EXCEEDED")]
    assert await _used() == INCLUDED


async def test_a_retried_batch_at_the_cap_is_answered_duplicate(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan, overage=False)
    batch = [event("a", 600), event("b", 400)]
    assert (await record_usage(batch)).count("accepted") == 2
    again = await record_usage([*batch, event("c", 1)])
    assert _statuses(again) == [
        ("a", "duplicate", None),
        ("b", "duplicate", None),
        ("c", "rejected", "QUOTA_EXCEEDED"),
    ]


async def test_concurrent_batches_cannot_pass_the_cap_together(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan, overage=False)
    batches = [[event(f"b{n}_{i}", 100) for i in range(6)] for n in range(4)]
    answers = await asyncio.gather(*(record_usage(b) for b in batches))
    accepted = sum(a.count("accepted") for a in answers)
    assert accepted == 10  # 1,000 of the 2,400 offered
    assert await _used() == INCLUDED
    assert await UsageEvent.find_all().count() == 10
    refused = sum(a.count("rejected") for a in answers)
    assert refused == 14
    assert {r.reason for a in answers for r in a.results if r.reason} == {
        usage.Reason.QUOTA_EXCEEDED
    }


async def test_unlimited_and_uncapped_features(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan, overage=False)
    result = await record_usage(
        [event("s", 10**9, feature="storage_gb"), event("x1", 50, feature="exports")]
    )
    assert result.count("accepted") == 2
    over = await record_usage([event("x2", 1, feature="exports")])  # no overage sold: capped
    assert _statuses(over) == [("x2", "rejected", "QUOTA_EXCEEDED")]
    assert await _used(feature="storage_gb") == 10**9


async def test_overage_on_lets_usage_pass_the_included_quantity(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan, overage=True)
    result = await record_usage([event("a", 999), event("b", 2), event("c", 10**9)])
    assert result.count("accepted") == 3
    assert await _used() == 10**9 + 1001


async def test_a_yearly_period_includes_twelve_months(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan, overage=False, interval=BillingInterval.YEAR)
    result = await record_usage([event("a", 12 * INCLUDED), event("b", 1)])
    assert _statuses(result) == [("a", "accepted", None), ("b", "rejected", "QUOTA_EXCEEDED")]


BAD_EVENTS: list[tuple[dict[str, Any], str]] = [
    (event("q0", 0), "INVALID_QUANTITY"),
    (event("q1", -5), "INVALID_QUANTITY"),
    (event("q2", 1.5), "INVALID_QUANTITY"),  # type: ignore[arg-type]
    (event("q3", 2.0), "INVALID_QUANTITY"),  # type: ignore[arg-type]
    (event("q4", True), "INVALID_QUANTITY"),
    (event("q5", 10**9 + 1), "INVALID_QUANTITY"),
    (event("q6", 10**30), "INVALID_QUANTITY"),
    (event("q7", "5"), "INVALID_QUANTITY"),  # type: ignore[arg-type]
    ({"id": "q8", "organization_id": "org_a", "feature": "api_calls"}, "INVALID_QUANTITY"),
    (event("", 1), "INVALID_ID"),
    (event("x" * 201, 1), "INVALID_ID"),
    (event("has space", 1), "INVALID_ID"),
    (event("é", 1), "INVALID_ID"),
    ({"id": 7, "organization_id": "org_a", "feature": "api_calls", "quantity": 1}, "INVALID_ID"),
    (event("f1", 1, feature="seats"), "UNKNOWN_FEATURE"),  # a limit, not metered
    (event("f2", 1, feature="sso"), "UNKNOWN_FEATURE"),
    (event("f3", 1, feature="nope"), "UNKNOWN_FEATURE"),
    (event("f4", 1, feature=["api_calls"]), "UNKNOWN_FEATURE"),  # type: ignore[arg-type]
    (event("o1", 1, org="org_nobody"), "UNKNOWN_ORGANIZATION"),
    (event("o2", 1, org="bad org"), "UNKNOWN_ORGANIZATION"),
    (event("o3", 1, org=None), "UNKNOWN_ORGANIZATION"),  # type: ignore[arg-type]
    (event("o4", 1, org="org_lapsed"), "NO_LIVE_SUBSCRIPTION"),
    (event("t1", 1, timestamp="2020-01-01T00:00:00Z"), "TIMESTAMP_TOO_OLD"),
    (event("t2", 1, timestamp=0), "TIMESTAMP_TOO_OLD"),
    (event("t3", 1, timestamp=10**30), "INVALID_TIMESTAMP"),
    (event("t4", 1, timestamp="2026-03-01T12:00:00"), "INVALID_TIMESTAMP"),  # naive
    (event("t5", 1, timestamp="yesterday"), "INVALID_TIMESTAMP"),
    (event("t6", 1, timestamp="2026-02-30T00:00:00Z"), "INVALID_TIMESTAMP"),
    (event("t7", 1, timestamp=1.5), "INVALID_TIMESTAMP"),
    (event("t8", 1, timestamp=True), "INVALID_TIMESTAMP"),
    (event("t9", 1, timestamp="0001-01-01T00:00:00+01:00"), "INVALID_TIMESTAMP"),
    (event("tA", 1, timestamp="9999-12-31T23:59:59Z"), "TIMESTAMP_IN_FUTURE"),
    (event("tB", 1, timestamp=[1]), "INVALID_TIMESTAMP"),
]


async def test_bad_events_are_refused_and_good_ones_counted(database: Database) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan)
    await subscribe("org_lapsed", plan, status="canceled")
    batch = [event("good1", 3), *(e for e, _ in BAD_EVENTS), event("good2", 4)]
    result = await record_usage(batch)
    reasons = [r.reason.value if r.reason else r.status for r in result.results]
    assert reasons == ["accepted", *(reason for _, reason in BAD_EVENTS), "accepted"]
    assert all(r.message for r in result.results[1:-1])
    assert await _used() == 7
    assert await UsageEvent.find_all().count() == 2
    # A refused id stays free: the corrected event is accepted.
    fixed = await record_usage([event("q0", 2)])
    assert fixed.count("accepted") == 1


async def test_an_organization_without_subscription_or_period(database: Database) -> None:
    plan = await save_plan()
    sub = await subscribe("org_new", plan)
    await sub.set({"current_period_start": None, "current_period_end": None})
    result = await record_usage([event("a", 1, org="org_new"), event("b", 1, org="org_nobody")])
    assert _statuses(result) == [
        ("a", "rejected", "NO_LIVE_SUBSCRIPTION"),
        ("b", "rejected", "UNKNOWN_ORGANIZATION"),
    ]


async def test_late_events_go_to_the_previous_period_within_the_grace(database: Database) -> None:
    plan = await save_plan()
    start = utcnow() - timedelta(minutes=30)
    sub = await subscribe("org_a", plan, start=start)
    window_start = await _sub_start(sub.stripe_subscription_id)
    late = (window_start - timedelta(days=3)).isoformat()
    result = await record_usage([event("late", 5, timestamp=late), event("now", 2)])
    assert result.count("accepted") == 2
    assert await _used() == 2
    previous = await UsageCounter.find_one({"feature": "api_calls", "period_end": window_start})
    assert previous is not None
    assert previous.used == 5
    assert previous.period_end == window_start
    assert previous.period_start < window_start - timedelta(days=27)

    await sub.set({"current_period_start": utcnow() - timedelta(hours=2)})
    too_late = await record_usage([event("later", 5, timestamp=late)])
    assert _statuses(too_late) == [("later", "rejected", "TIMESTAMP_TOO_OLD")]


async def test_events_after_an_unseen_roll_over_go_to_the_next_period(database: Database) -> None:
    plan = await save_plan()
    now = utcnow()
    # The period ended two hours ago and Stripe's roll-over has not arrived yet.
    sub = await subscribe("org_a", plan, start=now - timedelta(days=31, hours=2))
    end = sub.current_period_end
    assert end is not None
    result = await record_usage(
        [
            event("fresh", 3),  # default timestamp: now, in the next period
            event("stale", 3, timestamp=(end - timedelta(hours=1)).isoformat()),
            event("ahead", 3, timestamp=int((now + timedelta(minutes=10)).timestamp())),
        ]
    )
    assert _statuses(result) == [
        ("fresh", "accepted", None),
        ("stale", "rejected", "TIMESTAMP_TOO_OLD"),  # its period closed past the grace
        ("ahead", "rejected", "TIMESTAMP_IN_FUTURE"),
    ]
    nxt = await UsageCounter.get(counter_id(sub.stripe_subscription_id, end, "api_calls"))
    assert nxt is not None
    assert nxt.used == 3


async def test_settled_marks_do_not_pile_up_and_old_ones_are_trimmed(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await save_plan()
    sub = await subscribe("org_a", plan)
    for n in range(5):
        await record_usage([event(f"m{n}", 1)])
    counter = await _counter(sub.stripe_subscription_id)
    assert counter is not None
    assert len(counter.marks) == 1  # each update unsets the marks of settled batches
    # Another process (or a restart) does not know which batches this one settled.
    monkeypatch.setattr(usage, "_settled", usage._SettledMarks())
    events = UsageEvent.get_motor_collection()
    real = events.update_many

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("died before settling")

    monkeypatch.setattr(events, "update_many", refuse)
    with pytest.raises(StoreError):
        await record_usage([event("crash", 1)])
    monkeypatch.setattr(events, "update_many", real)
    counter = await _counter(sub.stripe_subscription_id)
    assert counter is not None
    assert len(counter.marks) == 2
    assert await trim_marks() == 0  # younger than an hour
    # The settled batch's mark goes; the interrupted one's stays until it is settled.
    assert await trim_marks(older_than=timedelta(0)) == 1
    counter = await _counter(sub.stripe_subscription_id)
    assert counter is not None
    assert len(counter.marks) == 1
    assert await complete_pending_batches(older_than=timedelta(0)) == 1
    assert await trim_marks(older_than=timedelta(0)) == 1
    counter = await _counter(sub.stripe_subscription_id)
    assert counter is not None
    assert counter.marks == {}
    assert counter.used == 6


async def test_a_completion_of_a_capped_counter_keeps_the_cap(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await save_plan()
    await subscribe("org_a", plan, overage=False)
    real = usage._count
    calls = 0

    async def crash_once(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreError("the process died here")
        return await real(*args)

    monkeypatch.setattr(usage, "_count", crash_once)
    with pytest.raises(StoreError):
        await record_usage([event("a", 700)])
    # Meanwhile another batch took most of the room.
    assert (await record_usage([event("b", 800)])).count("accepted") == 1
    assert await complete_pending_batches(older_than=timedelta(0)) == 1
    assert await _used() == 800
    assert await UsageEvent.find({"event_id": "a"}).count() == 0  # refused after all


async def test_a_completion_racing_a_slow_original_write_counts_it_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original write stalls for two minutes between storing its events and counting them;
    the completer takes the batch up, and before it writes, the original counts and settles
    it and the next batch updates the counter: the batch's mark must still stop the
    completer's second addition."""
    plan = await save_plan()
    await subscribe("org_a", plan)
    real_now, real_count, real_pending = usage.utcnow, usage._count, usage._pending_counter
    stalled = True  # the original's events are stored "two minutes ago"
    monkeypatch.setattr(
        usage, "utcnow", lambda: real_now() - timedelta(minutes=2) if stalled else real_now()
    )
    original_paused, resume_original = asyncio.Event(), asyncio.Event()
    completer_read, resume_completer = asyncio.Event(), asyncio.Event()
    calls = 0

    async def slow_count(*args: Any) -> Any:
        nonlocal calls, stalled
        calls += 1
        if calls == 1:
            stalled = False
            original_paused.set()
            await resume_original.wait()
        return await real_count(*args)

    async def pausing_pending(*args: Any) -> Any:
        found = await real_pending(*args)
        completer_read.set()
        await resume_completer.wait()
        return found

    monkeypatch.setattr(usage, "_count", slow_count)
    monkeypatch.setattr(usage, "_pending_counter", pausing_pending)
    original = asyncio.create_task(record_usage([event("a", 4)]))
    await original_paused.wait()
    completer = asyncio.create_task(complete_pending_batches())
    await completer_read.wait()
    resume_original.set()
    assert (await original).count("accepted") == 1
    assert (await record_usage([event("b", 1)])).count("accepted") == 1
    resume_completer.set()
    await completer
    assert await _used() == 5
    assert await UsageEvent.find({"counted": False}).count() == 0


async def test_a_batch_over_many_counters_settles_its_events_in_one_write(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settling per counter (one ``update_many`` scanning the uncounted events each) made a
    batch of 1,000 organizations cost 1,000 scans: the in-memory store held the event loop
    for over a minute."""
    plan = await save_plan()
    for n in range(40):
        await subscribe(f"org_{n}", plan)
    events = UsageEvent.get_motor_collection()
    real = events.update_many
    settles: list[dict[str, Any]] = []

    async def counted(query: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        settles.append(query)
        return await real(query, *args, **kwargs)

    monkeypatch.setattr(events, "update_many", counted)
    batch = [event(f"e{n}", 1, org=f"org_{n}") for n in range(40)]
    batch += [event(f"s{n}", 2, org=f"org_{n}", feature="storage_gb") for n in range(40)]
    assert (await record_usage(batch)).count("accepted") == 80
    assert len(settles) == 1
    assert await UsageEvent.find({"counted": False}).count() == 0
    assert await UsageEvent.find({"counted": True}).count() == 80
    assert await _used("sub_org_7") == 1
    assert await _used("sub_org_7", "storage_gb") == 2
