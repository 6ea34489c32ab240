"""Usage metering: the meter events the emulator accepted, and what they add up to.

The :class:`MeterLedger` holds every meter event accepted by ``POST /v1/billing/meter_events``
(see :mod:`resources.meter_events`), each with the meter and customer it counts for — or none,
when Stripe's asynchronous validation would reject it (no active meter, unknown customer, a value
that is no whole number): such an event is kept only so its ``identifier`` stays taken.

Aggregation (what meter event summaries and invoices read) takes, for one meter and customer,
the counted and not canceled events with ``start <= timestamp < end`` and applies the meter's
``default_aggregation.formula``: ``sum`` of the values, ``count`` of the events, or ``last`` — the
value of the event with the latest timestamp (the latest received on a tie); 0 without events.

:func:`billed_quantity` turns a period's usage into the quantity an invoice line bills: a negative
total bills 0 ("If the overall cycle usage is negative, Stripe reports the invoice line item usage
quantity as 0"), then ``transform_quantity`` divides it and rounds ``up`` or ``down``.

The ledger lives beside the store, outside its savepoints: a meter event is recorded as the very
last step of the request that accepts it, so no failure can follow that would need undoing, and
thousands of events are not deep-copied by every later write request.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stripe_emulator.state import Ctx

JSON = dict[str, Any]

#: Stripe enforces identifier uniqueness "within a rolling 24 hour period" and lets an event be
#: canceled only "within 24 hours of Stripe receiving" it.
IDENTIFIER_WINDOW = 24 * 3600


@dataclass
class MeterEventRecord:
    """One accepted meter event and what the emulator made of it."""

    identifier: str
    event_name: str
    payload: dict[str, str]
    timestamp: int
    created: int
    #: Wall-clock seconds when received: the 24-hour windows are real time, not test-clock time.
    received: float
    meter: str | None = None  # the meter it counts for; None: not counted
    customer: str | None = None
    value: int = 0
    canceled: bool = False
    sequence: int = field(default=0, compare=False)

    def as_json(self) -> JSON:
        """The ``billing.meter_event`` object Stripe answers with."""
        return {
            "object": "billing.meter_event",
            "created": self.created,
            "event_name": self.event_name,
            "identifier": self.identifier,
            "livemode": False,
            "payload": dict(self.payload),
            "timestamp": self.timestamp,
        }


class MeterLedger:
    """Accepted meter events by identifier, and the counted ones by (meter, customer)."""

    def __init__(self) -> None:
        self._by_identifier: dict[str, MeterEventRecord] = {}
        self._counted: dict[tuple[str, str], list[MeterEventRecord]] = {}
        self._sequence = 0

    def reset(self) -> None:
        self._by_identifier.clear()
        self._counted.clear()
        self._sequence = 0

    def recent(self, identifier: str, now: float) -> MeterEventRecord | None:
        """The event received with this identifier in the last 24 hours, if any."""
        record = self._by_identifier.get(identifier)
        if record is None or now - record.received >= IDENTIFIER_WINDOW:
            return None
        return record

    def add(self, record: MeterEventRecord) -> None:
        self._sequence += 1
        record.sequence = self._sequence
        self._by_identifier[record.identifier] = record
        if record.meter is not None and record.customer is not None:
            self._counted.setdefault((record.meter, record.customer), []).append(record)

    def counted(self, meter: str, customer: str) -> list[MeterEventRecord]:
        return list(self._counted.get((meter, customer), []))

    def __len__(self) -> int:
        return len(self._by_identifier)


def aggregate(records: list[MeterEventRecord], formula: str, start: int, end: int) -> int:
    """The meter's formula over the live events with ``start <= timestamp < end``."""
    return aggregate_windows(records, formula, [(start, end)])[0]


def aggregate_windows(
    records: list[MeterEventRecord], formula: str, windows: list[tuple[int, int]]
) -> list[int]:
    """:func:`aggregate` for each window, sorting the events once."""
    live = sorted((r for r in records if not r.canceled), key=lambda r: (r.timestamp, r.sequence))
    times = [r.timestamp for r in live]
    results = []
    for start, end in windows:
        inside = live[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]
        if formula == "count":
            results.append(len(inside))
        elif formula == "last":
            results.append(inside[-1].value if inside else 0)
        else:
            results.append(sum(r.value for r in inside))
    return results


def usage(ctx: Ctx, meter_id: str, customer_id: str, start: int, end: int) -> int:
    """A customer's aggregated usage on a meter over ``[start, end)``."""
    return usage_windows(ctx, meter_id, customer_id, [(start, end)])[0]


def usage_windows(
    ctx: Ctx, meter_id: str, customer_id: str, windows: list[tuple[int, int]]
) -> list[int]:
    meter = ctx.store.get("billing.meter", meter_id)
    if meter is None:
        return [0 for _ in windows]
    formula = str(meter["default_aggregation"]["formula"])
    records = ctx.state.meter_events.counted(meter_id, customer_id)
    return aggregate_windows(records, formula, windows)


def is_metered(price: JSON) -> bool:
    return bool((price.get("recurring") or {}).get("usage_type") == "metered")


def transform(price: JSON, quantity: int) -> int:
    """``transform_quantity`` applied: divided by ``divide_by``, rounded ``up`` or ``down``."""
    rule = price.get("transform_quantity")
    if not rule:
        return quantity
    whole, rest = divmod(quantity, int(rule["divide_by"]))
    return whole + 1 if rest and rule["round"] == "up" else whole


def billed_quantity(price: JSON, total: int) -> int:
    """What an invoice line bills for a period's usage: never below 0, then transformed."""
    return transform(price, max(0, total))
