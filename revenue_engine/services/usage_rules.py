"""The rules a usage event is judged by, without I/O: its timestamp, the billing period it
falls in, and what its feature allows there.

* **Timestamps** — an RFC 3339 string with an offset (``2026-03-01T12:00:00Z``), a unix time
  in whole seconds, or (GraphQL) an aware ``datetime``; anything else is invalid, naive times
  included (whose UTC would be a guess).
* **Periods** — the subscription's current period ``[current_period_start,
  current_period_end)``, the previous one, and the next two (a roll-over Stripe has not told
  us about yet). Stripe counts periods from the billing cycle anchor, a day of the month kept
  at every step and clamped to the month's length (Jan 31 → Feb 28 → Mar 31). Of two
  consecutive months one has 31 days, so the anchor day is the later of the current period's
  two days, and the neighbouring periods are computed exactly as Stripe does (a yearly plan
  anchored on Feb 29 excepted). A period takes events until ``USAGE_LATE_GRACE_SECONDS``
  after its end (Stripe's invoice grace: the renewal invoice is finalised an hour after it);
  an event more than ``FUTURE_SKEW`` ahead of the subscription's now is refused.
* **Allowance** — a metered feature's included quantity per period (the subscription's
  entitlement, which counts the packs bought, times twelve on a yearly plan; ``None`` is
  unlimited), whether overage is on, and so whether the included quantity is a hard cap.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from revenue_engine.clock import as_utc
from revenue_engine.documents import BillingInterval, Subscription, SubscriptionPlan
from revenue_engine.services import entitlements

#: How far ahead of the subscription's now an event may be dated (clock skew).
FUTURE_SKEW = timedelta(seconds=300)
#: Periods after the current one an event may fall in before the roll-over is seen.
NEXT_PERIODS = 2
#: The latest unix time accepted (9999-12-31T23:59:59Z).
MAX_UNIX_TIME = 253_402_300_799

TOO_OLD = "TIMESTAMP_TOO_OLD"
IN_FUTURE = "TIMESTAMP_IN_FUTURE"

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_timestamp(value: object) -> datetime | None:
    """``value`` as an aware UTC datetime, or ``None`` when it is not a timestamp we accept."""
    if type(value) is int:
        return datetime.fromtimestamp(value, UTC) if 0 <= value <= MAX_UNIX_TIME else None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return None
        return _to_utc(value)
    if type(value) is str and len(value) <= 40 and _RFC3339.fullmatch(value):
        try:
            return _to_utc(datetime.fromisoformat(value.upper()))
        except ValueError:
            return None  # a day or hour out of range
    return None


def _to_utc(moment: datetime) -> datetime | None:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None  # 0001-01-01T00:00:00+01:00 is before the first representable instant


def shift_months(moment: datetime, months: int, anchor_day: int) -> datetime:
    """``moment`` moved by ``months`` with its day set to ``anchor_day``, clamped to the
    month's length (Stripe's billing-cycle arithmetic)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    year = min(max(year, 1), 9999)
    day = min(anchor_day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime


class Window:
    """The periods of one subscription an event may be counted in, as of ``now`` (the
    subscription's own time). ``place(ts)`` answers the period or a refusal reason."""

    __slots__ = ("_at_now", "_closes", "current", "grace", "latest", "now", "periods")

    def __init__(
        self,
        start: datetime,
        end: datetime,
        interval: BillingInterval | None,
        now: datetime,
        grace_seconds: int,
    ) -> None:
        step = 12 if interval is BillingInterval.YEAR else 1
        anchor = max(start.day, end.day)
        self.current = Period(start, end)
        periods = [Period(shift_months(start, -step, anchor), start), self.current]
        for _ in range(NEXT_PERIODS):
            last = periods[-1].end
            periods.append(Period(last, shift_months(last, step, anchor)))
        self.periods = periods
        self.now = now
        self.grace = timedelta(seconds=grace_seconds)
        self.latest = now + FUTURE_SKEW
        # When each period stops taking events: computed once, not per event placed.
        self._closes = [period.end + self.grace for period in periods]
        self._at_now: Period | str | None = None

    @classmethod
    def of(cls, subscription: Subscription, now: datetime, grace_seconds: int) -> Window | None:
        """The window of ``subscription``; ``None`` while it has no current period."""
        if subscription.current_period_start is None or subscription.current_period_end is None:
            return None
        return cls(
            as_utc(subscription.current_period_start),
            as_utc(subscription.current_period_end),
            subscription.interval,
            now,
            grace_seconds,
        )

    @property
    def previous(self) -> Period:
        return self.periods[0]

    def place(self, ts: datetime) -> Period | str:
        """The period ``ts`` is counted in, or ``TOO_OLD`` / ``IN_FUTURE``."""
        if ts > self.latest:
            return IN_FUTURE
        periods = self.periods
        if ts < periods[0].start:
            return TOO_OLD
        for period, closes in zip(periods, self._closes, strict=True):
            if ts < period.end:
                # A period whose invoice may be final already is closed, also the stored
                # "current" one when its roll-over is late.
                return TOO_OLD if self.now > closes else period
        return IN_FUTURE

    def place_now(self) -> Period | str:
        """``place(now)``, worked out once: the period of every event sent without a
        timestamp."""
        if self._at_now is None:
            self._at_now = self.place(self.now)
        return self._at_now


@dataclass(frozen=True, slots=True)
class Allowance:
    """What a metered feature allows a subscription in one period."""

    #: Included units per period; ``None``: unlimited (counted, never capped, never billed).
    included: int | None
    overage_on: bool

    @property
    def capped(self) -> bool:
        """Usage beyond ``included`` is refused (overage off, finite included quantity)."""
        return not self.overage_on and self.included is not None


def granted(subscription: Subscription, plan: SubscriptionPlan) -> dict[str, int | bool | None]:
    """The subscription's entitlements (plan and packs), as the reconciler stored them; for a
    subscription stored without them, derived from the plan and its items — never read as
    "unlimited" because the field is empty."""
    if subscription.entitlements:
        return subscription.entitlements
    return entitlements.limits(plan, subscription.items)


def allowance(subscription: Subscription, plan: SubscriptionPlan, feature: str) -> Allowance | None:
    """``feature``'s allowance, or ``None`` when it is not a metered feature of ``plan``."""
    if not entitlements.is_metered(plan, feature):
        return None
    limits = granted(subscription, plan)
    if feature not in limits:
        limits = entitlements.limits(plan, subscription.items)
    return Allowance(
        included=entitlements.included(plan, limits, feature, subscription.interval),
        overage_on=entitlements.overage_on(plan, subscription, feature),
    )
