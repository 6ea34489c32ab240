"""Billing meters and their event summaries.

Routes: ``POST /v1/billing/meters`` (``display_name``, ``event_name``,
``default_aggregation[formula]`` = ``sum|count|last``, ``customer_mapping[event_payload_key]`` +
``[type]=by_id`` — default ``stripe_customer_id`` —, ``value_settings[event_payload_key]`` —
default ``value`` —, ``event_time_window`` = ``day|hour``), ``GET /v1/billing/meters``
(``status=active|inactive``), ``GET|POST /v1/billing/meters/{id}`` (only ``display_name``
changes: "After you configure the meter, you can't make any changes aside from the display
name"), ``POST /v1/billing/meters/{id}/deactivate|reactivate`` and
``GET /v1/billing/meters/{id}/event_summaries``.

An event name belongs to one meter ("You can only use an event name with a single meter"),
active or not: a deactivated meter keeps its event name, and is reactivated rather than
recreated. A deactivated meter accepts no meter events and cannot be attached to a price.

Event summaries (``customer``, ``start_time`` inclusive, ``end_time`` exclusive, both on minute
boundaries; ``value_grouping_window=hour|day`` splits the range into hours or UTC days, whose
bounds must then be aligned to them) aggregate the customer's counted meter events (see
:mod:`metering`), newest window first. A summary's id is derived from its meter, customer and
window, so pages of the same query can be walked with ``starting_after``.
"""

from __future__ import annotations

import hashlib

from stripe_emulator.errors import invalid_request
from stripe_emulator.events import emit, emit_update
from stripe_emulator.forms import Params
from stripe_emulator.ids import new_id
from stripe_emulator.lists import PAGINATION, paginate
from stripe_emulator.metering import usage_windows
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

KIND = "billing.meter"
FORMULAS = ("count", "last", "sum")
WINDOWS = {"hour": 3600, "day": 86400}
#: The emulator's bound on the windows of one summary query (a year of days, a month of hours
#: fit), so a careless range cannot keep the account busy.
MAX_WINDOWS = 10_000


def meter_for_event(ctx: Ctx, event_name: str) -> JSON | None:
    """The meter (active or not) that owns an event name."""
    for meter in ctx.store.all(KIND):
        if meter["event_name"] == event_name:
            return meter
    return None


def _payload_key(p: Params, key: str, default: str, *, with_type: bool) -> str:
    settings = p.sub(key)
    if settings is None:
        return default
    settings.only(("event_payload_key", "type") if with_type else ("event_payload_key",))
    if with_type:
        settings.string("type", required=True, choices=("by_id",))
    value = settings.string("event_payload_key", required=True, max_length=100)
    assert value is not None
    return value


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            "display_name",
            "event_name",
            "default_aggregation",
            "customer_mapping",
            "value_settings",
            "event_time_window",
            "expand",
        )
    )
    display_name = p.string("display_name", required=True, max_length=250)
    event_name = p.string("event_name", required=True, max_length=100)
    aggregation = p.sub("default_aggregation", required=True)
    assert aggregation is not None
    assert event_name is not None
    aggregation.only(("formula",))
    formula = aggregation.string("formula", required=True, choices=FORMULAS)
    customer_key = _payload_key(p, "customer_mapping", "stripe_customer_id", with_type=True)
    value_key = _payload_key(p, "value_settings", "value", with_type=False)
    window = p.string("event_time_window", choices=tuple(WINDOWS))
    taken = meter_for_event(ctx, event_name)
    if taken is not None:
        raise invalid_request(
            f"A meter with event_name `{event_name}` already exists ({taken['id']}, "
            f"{taken['status']}): an event name can only be used with a single meter.",
            param="event_name",
            code="resource_already_exists",
        )
    now = ctx.state.now()
    meter: JSON = {
        "id": new_id("mtr_test_", 32),
        "object": KIND,
        "created": now,
        "customer_mapping": {"event_payload_key": customer_key, "type": "by_id"},
        "default_aggregation": {"formula": formula},
        "display_name": display_name,
        "event_name": event_name,
        "event_time_window": window,
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": now,
        "value_settings": {"event_payload_key": value_key},
    }
    ctx.store.put(meter)
    emit(ctx, "billing.meter.created", meter)
    return meter


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require(KIND, id)


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "status"))
    status = p.string("status", choices=("active", "inactive"))
    items = ctx.store.all(KIND, lambda m: status is None or m["status"] == status)
    return paginate(items, p, "/v1/billing/meters")


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("display_name", "expand"))
    meter = ctx.store.require(KIND, id)
    before = snapshot(meter)
    if p.has("display_name"):
        meter["display_name"] = p.string("display_name", required=True, max_length=250)
    if meter != before:
        meter["updated"] = ctx.state.now()
    emit_update(ctx, "billing.meter.updated", meter, before)
    return meter


def _set_status(ctx: Ctx, p: Params, id: str, *, active: bool) -> JSON:
    p.only(("expand",))
    meter = ctx.store.require(KIND, id)
    wanted = "active" if active else "inactive"
    if meter["status"] == wanted:
        raise invalid_request(f"This meter is already {wanted}.", param="id")
    now = ctx.state.now()
    meter.update(status=wanted, updated=now)
    meter["status_transitions"]["deactivated_at"] = None if active else now
    emit(ctx, "billing.meter.reactivated" if active else "billing.meter.deactivated", meter)
    return meter


def _deactivate(ctx: Ctx, p: Params, id: str) -> JSON:
    return _set_status(ctx, p, id, active=False)


def _reactivate(ctx: Ctx, p: Params, id: str) -> JSON:
    return _set_status(ctx, p, id, active=True)


def _aligned(p: Params, key: str, step: int, what: str) -> int:
    value = p.integer(key, required=True, minimum=0)
    assert value is not None
    if value % step:
        raise invalid_request(f"{key} must be aligned with {what} boundaries.", param=key)
    return value


def summary_id(meter_id: str, customer_id: str, start: int, end: int) -> str:
    digest = hashlib.sha256(f"{meter_id}:{customer_id}:{start}:{end}".encode()).hexdigest()
    return f"mtrusg_{digest[:24]}"


def _event_summaries(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only((*PAGINATION, "customer", "start_time", "end_time", "value_grouping_window"))
    meter = ctx.store.require(KIND, id)
    customer_id = p.string("customer", required=True)
    assert customer_id is not None
    window = p.string("value_grouping_window", choices=tuple(WINDOWS))
    step = WINDOWS[window] if window else 60
    what = {"day": "UTC day", "hour": "hour"}.get(window or "", "minute")
    start = _aligned(p, "start_time", step, what)
    end = _aligned(p, "end_time", step, what)
    if start >= end:
        raise invalid_request("start_time must be before end_time.", param="start_time")
    ctx.store.require("customer", customer_id, param="customer")
    if window and (end - start) // step > MAX_WINDOWS:
        raise invalid_request(
            f"The emulator summarises at most {MAX_WINDOWS} {window} windows per request; "
            "narrow start_time and end_time.",
            param="end_time",
        )
    bounds = [(s, s + step) for s in range(start, end, step)] if window else [(start, end)]
    values = usage_windows(ctx, meter["id"], customer_id, bounds)
    summaries = [
        {
            "id": summary_id(meter["id"], customer_id, s, e),
            "object": "billing.meter_event_summary",
            "aggregated_value": value,
            "end_time": e,
            "livemode": False,
            "meter": meter["id"],
            "start_time": s,
        }
        for (s, e), value in reversed(list(zip(bounds, values, strict=True)))
    ]
    return paginate(summaries, p, f"/v1/billing/meters/{meter['id']}/event_summaries")


ROUTES = [
    Route("POST", "/v1/billing/meters", _create),
    Route("GET", "/v1/billing/meters", _list),
    Route("GET", "/v1/billing/meters/{id}", _retrieve),
    Route("POST", "/v1/billing/meters/{id}", _update),
    Route("POST", "/v1/billing/meters/{id}/deactivate", _deactivate),
    Route("POST", "/v1/billing/meters/{id}/reactivate", _reactivate),
    Route("GET", "/v1/billing/meters/{id}/event_summaries", _event_summaries),
]
