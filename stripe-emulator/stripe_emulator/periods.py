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


def prorated(amount: int, start: int, end: int, when: int) -> int:
    """``amount`` (a whole period's) for the part of the period ``[start, end)`` left at
    ``when``, to the second, as Stripe prorates: ``amount * (end - when) / (end - start)``,
    computed exactly and rounded once to the nearest minor unit (a half away from zero).
    ``when`` outside the period counts as its start (all of it left) or its end (none)."""
    length = end - start
    if length <= 0:
        return 0
    left = min(max(end - when, 0), length)
    whole, rest = divmod(abs(amount) * left, length)
    if 2 * rest >= length:
        whole += 1
    return whole if amount >= 0 else -whole


def utc_datetime(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
