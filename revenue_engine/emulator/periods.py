"""Calendar arithmetic for billing periods and prorations.

Periods are computed from a fixed anchor (``anchor + n intervals``) rather than by adding an
interval to the previous end, so a subscription anchored on the 31st bills on Feb 28/29 and
returns to the 31st in March, as Stripe does.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

INTERVALS = ("day", "week", "month", "year")


def add_intervals(anchor: int, interval: str, count: int) -> int:
    """The unix time ``count`` intervals after ``anchor`` (UTC, day-of-month clamped)."""
    start = datetime.fromtimestamp(anchor, tz=UTC)
    if interval == "day":
        return int((start + timedelta(days=count)).timestamp())
    if interval == "week":
        return int((start + timedelta(weeks=count)).timestamp())
    months = count * 12 if interval == "year" else count
    if interval not in ("month", "year"):
        raise ValueError(f"unknown interval {interval!r}")
    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def period_bounds(anchor: int, interval: str, interval_count: int, index: int) -> tuple[int, int]:
    """Start and end of the ``index``-th period after ``anchor``."""
    return (
        add_intervals(anchor, interval, interval_count * index),
        add_intervals(anchor, interval, interval_count * (index + 1)),
    )


def remaining_fraction(start: int, end: int, now: int) -> float:
    """Share of the period [start, end) still unused at ``now`` (0..1)."""
    if end <= start:
        return 0.0
    return min(1.0, max(0.0, (end - now) / (end - start)))


def utc_datetime(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
