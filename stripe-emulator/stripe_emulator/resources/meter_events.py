"""Meter events (usage reports), their cancellation, and meter error reports.

Routes: ``POST /v1/billing/meter_events`` (``event_name``, ``payload[...]``, ``identifier``,
``timestamp``) and ``POST /v1/billing/meter_event_adjustments`` (``event_name``, ``type=cancel``,
``cancel[identifier]``).

Stripe validates a meter event in two stages, and so does the emulator.

*Synchronously* (a 400, nothing recorded): ``event_name`` and ``payload`` are required; the
``identifier`` (generated when absent) must not have been used in the last 24 hours — Stripe's
answer, as integrations record it, is ``400 invalid_request_error`` "An event already exists with
identifier <id>." with ``Stripe-Should-Retry: false`` and no ``code`` (the emulator adds
``param: "identifier"``); the ``timestamp`` (default: now) must be "within the past 35 calendar
days or up to 5 minutes in the future" — Stripe's "The event timestamp cannot be more than 35
days in past. Expected a timestamp greater than or equal to <t>." (and the emulator's "... more
than 5 minutes in the future. Expected a timestamp less than or equal to <t>."), ``param:
"timestamp"``, ``code`` ``timestamp_too_far_in_past`` / ``timestamp_in_future`` (the codes
Stripe's error reports use for the same faults). "Now" is the time of the customer's test clock
when the payload names a customer on one, else the emulator's clock.

*Asynchronously* (accepted with a 200, not counted, reported): no meter owns the event name
(``no_meter``), its meter is deactivated (``archived_meter``), the payload lacks the customer key
(``meter_event_no_customer_defined``) or names no customer (``meter_event_customer_not_found``),
or — for ``sum``/``last`` meters — lacks the value key (``meter_event_value_not_found``) or holds
no whole number (``meter_event_invalid_value``; negative whole numbers count, as on Stripe, which
fixes over-reporting that way). Stripe reports these as the thin v2 event
``v1.billing.meter.error_report_triggered`` (``v1.billing.meter.no_meter_found`` without a
meter); the emulator sends one snapshot event per rejected meter event through its own event
machinery, signed and delivered like every other::

    {"type": "billing.meter.error_report_triggered",
     "request": {"id": null, "idempotency_key": null},       # Stripe's own doing, later
     "data": {
       "object": <the billing.meter>  |  {"id": "mtrerr_…", "object": "billing.meter_error_report",
                                          "event_name": "…", "livemode": false, "meter": null},
       "developer_message_summary": "There is 1 invalid event",
       "reason": {"error_count": 1, "error_types": [{"code": "meter_event_customer_not_found",
                  "error_count": 1, "sample_errors": [{"error_message": "…",
                  "request": {"identifier": "<the meter event's identifier>"}}]}]},
       "validation_start": "2030-01-31T12:00:00.000Z",   # the 10-second window, as Stripe's
       "validation_end": "2030-01-31T12:00:10.000Z"}}     # v2 payload writes it

A webhook endpoint can subscribe to ``billing.meter.error_report_triggered`` by name.

An adjustment cancels one event received in the last 24 hours (Stripe: "You can only cancel
events within 24 hours of Stripe receiving them"); the emulator applies it at once (``status:
"complete"``) and refuses, with a 400, an identifier it never received, one older than 24 hours
or one sent under another event name — Stripe processes adjustments later and does not say.
"""

from __future__ import annotations

import re
import uuid

from stripe_emulator.errors import StripeError, invalid_request, unsupported
from stripe_emulator.events import emit
from stripe_emulator.forms import Params
from stripe_emulator.ids import new_id
from stripe_emulator.metering import MeterEventRecord
from stripe_emulator.periods import utc_datetime
from stripe_emulator.resources.meters import meter_for_event
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON

PAST_WINDOW = 35 * 86400
FUTURE_WINDOW = 5 * 60
REPORT_WINDOW = 10  # seconds: Stripe's error reports cover 10-second validation windows
ERROR_REPORT = "billing.meter.error_report_triggered"
# A whole number a signed 64-bit counter holds (and Python parses without its digit limit).
_WHOLE = re.compile(r"^-?\d{1,18}$")


def _payload(p: Params) -> dict[str, str]:
    payload = p.sub("payload", required=True)
    assert payload is not None
    for key in payload.data:
        payload.string(key, max_length=5000)  # every value a string, as Stripe's map
    return {str(k): str(v) for k, v in payload.data.items()}


def _check_timestamp(timestamp: int, now: int) -> None:
    earliest, latest = now - PAST_WINDOW, now + FUTURE_WINDOW
    if timestamp < earliest:
        raise invalid_request(
            "The event timestamp cannot be more than 35 days in past. Expected a timestamp "
            f"greater than or equal to {earliest}.",
            param="timestamp",
            code="timestamp_too_far_in_past",
        )
    if timestamp > latest:
        raise invalid_request(
            "The event timestamp cannot be more than 5 minutes in the future. Expected a "
            f"timestamp less than or equal to {latest}.",
            param="timestamp",
            code="timestamp_in_future",
        )


def _duplicate(identifier: str) -> StripeError:
    error = invalid_request(
        f"An event already exists with identifier {identifier}.", param="identifier"
    )
    error.headers = {"Stripe-Should-Retry": "false"}
    return error


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(("event_name", "payload", "identifier", "timestamp", "expand"))
    event_name = p.string("event_name", required=True, max_length=100)
    assert event_name is not None
    payload = _payload(p)
    identifier = p.string("identifier", max_length=100) or str(uuid.uuid4())
    timestamp = p.integer("timestamp", minimum=0)
    meter = meter_for_event(ctx, event_name)
    customer_key = meter["customer_mapping"]["event_payload_key"] if meter else "stripe_customer_id"
    customer_id = payload.get(customer_key)
    customer = ctx.store.get("customer", customer_id) if customer_id else None
    if customer is not None and ctx.store.priv(customer["id"]).get("deleted"):
        customer = None
    now = ctx.state.now_for_customer(customer["id"]) if customer is not None else ctx.state.now()
    received = ctx.state.wall_clock()
    if ctx.state.meter_events.recent(identifier, received) is not None:
        raise _duplicate(identifier)
    if timestamp is None:
        timestamp = now
    _check_timestamp(timestamp, now)

    record = MeterEventRecord(
        identifier=identifier,
        event_name=event_name,
        payload=payload,
        timestamp=timestamp,
        created=now,
        received=received,
    )
    problem = _validate(event_name, meter, payload, customer_key, customer_id, customer)
    if problem is None:
        assert meter is not None
        assert customer is not None
        record.meter, record.customer = meter["id"], customer["id"]
        if meter["default_aggregation"]["formula"] != "count":
            record.value = int(payload[meter["value_settings"]["event_payload_key"]])
    ctx.state.meter_events.add(record)
    if problem is not None:
        _report(ctx, meter, event_name, identifier, problem, now)
    return record.as_json()


def _validate(
    event_name: str,
    meter: JSON | None,
    payload: dict[str, str],
    customer_key: str,
    customer_id: str | None,
    customer: JSON | None,
) -> tuple[str, str] | None:
    """Stripe's asynchronous checks: ``(code, message)`` of the first that fails."""
    if meter is None:
        return "no_meter", f"No meter was found matching event_name {event_name}."
    if meter["status"] != "active":
        return "archived_meter", (
            f"Meter {meter['id']} for event_name {meter['event_name']} is deactivated and "
            "accepts no meter events."
        )
    if not customer_id:
        return (
            "meter_event_no_customer_defined",
            f"Customer mapping key {customer_key} not found in payload.",
        )
    if customer is None:
        return "meter_event_customer_not_found", f"No such customer: '{customer_id}'."
    if meter["default_aggregation"]["formula"] == "count":
        return None
    value_key = meter["value_settings"]["event_payload_key"]
    if value_key not in payload:
        return (
            "meter_event_value_not_found",
            f"Value settings key {value_key} not found in payload.",
        )
    if not _WHOLE.match(payload[value_key]):
        return (
            "meter_event_invalid_value",
            f"Value {payload[value_key]!r} of payload key {value_key} is not a whole number.",
        )
    return None


def _iso(timestamp: int) -> str:
    return utc_datetime(timestamp).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _report(
    ctx: Ctx,
    meter: JSON | None,
    event_name: str,
    identifier: str,
    problem: tuple[str, str],
    now: int,
) -> None:
    code, message = problem
    subject: JSON = meter or {
        "id": new_id("mtrerr_"),
        "object": "billing.meter_error_report",
        "event_name": event_name,
        "livemode": False,
        "meter": None,
    }
    start = now - now % REPORT_WINDOW
    details: JSON = {
        "developer_message_summary": "There is 1 invalid event",
        "reason": {
            "error_count": 1,
            "error_types": [
                {
                    "code": code,
                    "error_count": 1,
                    "sample_errors": [
                        {"error_message": message, "request": {"identifier": identifier}}
                    ],
                }
            ],
        },
        "validation_end": _iso(start + REPORT_WINDOW),
        "validation_start": _iso(start),
    }
    # Stripe finds these problems after answering: the event is its own doing, not the request's.
    emit(ctx.background(), ERROR_REPORT, subject, details=details, created=now)


def _adjust(ctx: Ctx, p: Params) -> JSON:
    p.only(("event_name", "type", "cancel", "expand"))
    event_name = p.string("event_name", required=True, max_length=100)
    kind = p.string("type", required=True, choices=("cancel",))
    cancel = p.sub("cancel")
    if cancel is None:
        raise unsupported("cancel", " (only the cancellation of one event, by identifier)")
    cancel.only(("identifier",))
    identifier = cancel.string("identifier", required=True, max_length=100)
    assert identifier is not None
    record = ctx.state.meter_events.recent(identifier, ctx.state.wall_clock())
    if record is None or record.event_name != event_name:
        raise invalid_request(
            f"No meter event with identifier {identifier} and event_name {event_name} was "
            "received in the last 24 hours; only those can be canceled.",
            param="cancel[identifier]",
            code="resource_missing",
        )
    record.canceled = True
    return {
        "object": "billing.meter_event_adjustment",
        "cancel": {"identifier": identifier},
        "event_name": event_name,
        "livemode": False,
        "status": "complete",
        "type": kind,
    }


ROUTES = [
    Route("POST", "/v1/billing/meter_events", _create),
    Route("POST", "/v1/billing/meter_event_adjustments", _adjust),
]
