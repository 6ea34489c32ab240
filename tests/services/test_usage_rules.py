"""The pure rules of usage events: timestamps, Stripe's billing-cycle arithmetic, the window
of periods an event may fall in, and a feature's allowance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from revenue_engine.documents import BillingInterval, Subscription
from revenue_engine.services.usage_rules import (
    IN_FUTURE,
    TOO_OLD,
    Period,
    Window,
    parse_timestamp,
    shift_months,
)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01T12:00:00Z", at(2026, 3, 1, 12)),
        ("2026-03-01t12:00:00z", at(2026, 3, 1, 12)),
        ("2026-03-01 14:00:00+02:00", at(2026, 3, 1, 12)),
        ("2026-03-01T12:00:00.123456789Z", at(2026, 3, 1, 12, 0, 0, 123456)),
        (1_772_366_400, at(2026, 3, 1, 12)),
        (datetime(2026, 3, 1, 7, tzinfo=timezone(timedelta(hours=-5))), at(2026, 3, 1, 12)),
    ],
)
def test_timestamps_accepted(value: object, expected: datetime) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-01T12:00:00",  # naive: its UTC would be a guess
        "2026-03-01",
        "20260301T120000Z",  # ISO basic format: not RFC 3339
        "2026-02-30T00:00:00Z",
        "2026-03-01T24:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "2026-03-01T12:00:00Z" + " " * 40,
        "yesterday",
        "",
        -1,
        10**30,
        253_402_300_800,
        1.5,
        True,
        None,
        [2026],
        datetime(2026, 3, 1),  # naive on purpose
    ],
)
def test_timestamps_refused(value: object) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize(
    ("start", "months", "anchor", "expected"),
    [
        (at(2026, 1, 31), 1, 31, at(2026, 2, 28)),
        (at(2026, 2, 28), 1, 31, at(2026, 3, 31)),  # the anchor day comes back
        (at(2026, 3, 31), -1, 31, at(2026, 2, 28)),
        (at(2026, 4, 30), -1, 31, at(2026, 3, 31)),
        (at(2028, 1, 31), 1, 31, at(2028, 2, 29)),
        (at(2026, 12, 15, 9, 30), 1, 15, at(2027, 1, 15, 9, 30)),
        (at(2026, 1, 15), -12, 15, at(2025, 1, 15)),
    ],
)
def test_months_shift_like_stripe_billing_cycles(
    start: datetime, months: int, anchor: int, expected: datetime
) -> None:
    assert shift_months(start, months, anchor) == expected


def test_the_window_of_a_month_anchored_on_the_31st() -> None:
    # Apr 30 -> May 31: anchored on the 31st; the previous period began Mar 31.
    window = Window(at(2026, 4, 30), at(2026, 5, 31), BillingInterval.MONTH, at(2026, 5, 10), 3600)
    assert [p.start for p in window.periods] == [
        at(2026, 3, 31),
        at(2026, 4, 30),
        at(2026, 5, 31),
        at(2026, 6, 30),
    ]
    assert window.place(at(2026, 5, 1)) == Period(at(2026, 4, 30), at(2026, 5, 31))
    assert window.place(at(2026, 4, 29)) == TOO_OLD  # the previous period closed long ago
    assert window.place(at(2026, 5, 10, 0, 5)) == Period(at(2026, 4, 30), at(2026, 5, 31))
    assert window.place(at(2026, 5, 10, 0, 6)) == IN_FUTURE  # more than 5 minutes ahead
    assert window.place(at(2026, 3, 1)) == TOO_OLD


def test_the_grace_after_a_period_ends() -> None:
    start, end = at(2026, 5, 1), at(2026, 6, 1)
    just_after = Window(start, end, BillingInterval.MONTH, start + timedelta(minutes=59), 3600)
    assert just_after.place(start - timedelta(days=1)) == Period(at(2026, 4, 1), start)
    late = Window(start, end, BillingInterval.MONTH, start + timedelta(minutes=61), 3600)
    assert late.place(start - timedelta(days=1)) == TOO_OLD
    no_grace = Window(start, end, BillingInterval.MONTH, start + timedelta(seconds=1), 0)
    assert no_grace.place(start - timedelta(seconds=1)) == TOO_OLD


def test_a_roll_over_not_yet_seen() -> None:
    start, end = at(2026, 5, 1), at(2026, 6, 1)
    now = end + timedelta(minutes=30)
    window = Window(start, end, BillingInterval.MONTH, now, 3600)
    assert window.place(now) == Period(end, at(2026, 7, 1))
    assert window.place(end - timedelta(minutes=1)) == Period(start, end)  # within the grace
    stale = Window(start, end, BillingInterval.MONTH, at(2026, 8, 5), 3600)
    assert stale.place(at(2026, 8, 5)) == IN_FUTURE  # past two unseen periods: refused
    assert stale.place(at(2026, 7, 20)) == TOO_OLD


def test_a_yearly_window() -> None:
    window = Window(at(2026, 1, 15), at(2027, 1, 15), BillingInterval.YEAR, at(2026, 6, 1), 3600)
    assert window.previous == Period(at(2025, 1, 15), at(2026, 1, 15))
    assert window.periods[2] == Period(at(2027, 1, 15), at(2028, 1, 15))


def test_a_subscription_without_a_period_has_no_window() -> None:
    sub = Subscription.model_construct(current_period_start=None, current_period_end=None)
    assert Window.of(sub, at(2026, 1, 1), 3600) is None
