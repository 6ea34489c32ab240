"""Handler for ``billing.meter.error_report_triggered``: Stripe dropped meter events it had
accepted. Recorded once per event id (``services.meter_errors``) for admins to read.

Stripe itself sends this report only as a thin v2 event
(``v1.billing.meter.error_report_triggered``); the emulator sends it as a snapshot event whose
``data.object`` is the meter (or, for an event name no meter owns, a ``billing.meter_error_report``
naming the ``event_name``) and whose ``data`` carries the report beside it, as Stripe's v2 event
data has it::

    {"object": {"id": "mtr_...", "object": "billing.meter", "event_name": "...", ...},
     "developer_message_summary": "There is 1 invalid event",
     "reason": {"error_count": 1,
                "error_types": [{"code": "meter_event_customer_not_found", "error_count": 1,
                                 "sample_errors": [{"error_message": "...",
                                                    "request": {"identifier": "re_..."}}]}]},
     "validation_start": "2030-01-31T12:00:00.000Z",    # or a unix time
     "validation_end": "2030-01-31T12:00:10.000Z"}

The report's fields are also read from ``data.object`` itself, with the meter as ``meter`` or
``related_object.id``.

Everything but ``reason.error_count`` is optional; a field of the wrong type is
``MalformedObject`` (recorded ``failed``). What is kept is bounded: the first
``MAX_CODES`` error codes, text cut to ``MAX_TEXT`` characters, one sample error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from revenue_engine.services.meter_errors import ErrorReport, record_error_report
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.errors import MalformedObject
from revenue_engine.webhooks.event import CREATED_RANGE, StripeEvent

MAX_CODES = 20
MAX_TEXT = 500


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedObject(f"{name} is not a string")
    return value[:MAX_TEXT]


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedObject(f"{name} is not a count")
    return value


def _moment(value: Any, name: str) -> datetime | None:
    """A unix time or an RFC 3339 string (Stripe's v2 events use the latter)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value in CREATED_RANGE:
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise MalformedObject(f"{name} is not a time")


def _meter_id(obj: dict[str, Any]) -> str | None:
    related = obj.get("related_object")
    if isinstance(related, dict) and isinstance(related.get("id"), str):
        return _text(related["id"], "related_object.id")
    if obj.get("object") == "billing.meter":
        return _text(obj.get("id"), "id")
    return _text(obj.get("meter"), "meter")


def _error_types(reason: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The codes of the error types and one sample error."""
    types = reason.get("error_types", [])
    if not isinstance(types, list):
        raise MalformedObject("reason.error_types is not a list")
    codes: list[str] = []
    sample: dict[str, Any] = {}
    for index, kind in enumerate(types):
        if not isinstance(kind, dict):
            raise MalformedObject(f"reason.error_types.{index} is not an object")
        code = _text(kind.get("code"), f"reason.error_types.{index}.code")
        if code is not None and len(codes) < MAX_CODES:
            codes.append(code)
        samples = kind.get("sample_errors")
        if sample or not isinstance(samples, list) or not samples:
            continue
        first = samples[0]
        if isinstance(first, dict):
            request = first.get("request")
            sample = {
                "code": code,
                "error_message": _text(first.get("error_message"), "sample_errors.error_message"),
                "identifier": _text(request.get("identifier"), "request.identifier")
                if isinstance(request, dict)
                else None,
            }
    return codes, sample


def error_report(event: StripeEvent) -> ErrorReport:
    """The report of ``event`` (see the module docstring); ``MalformedObject`` if unsound."""
    obj = {**event.object, **event.details}
    reason = obj.get("reason")
    if not isinstance(reason, dict):
        raise MalformedObject("the error report has no reason")
    codes, sample = _error_types(reason)
    return ErrorReport(
        stripe_event_id=event.id,
        stripe_meter_id=_meter_id(obj),
        event_name=_text(obj.get("event_name"), "event_name"),
        error_count=_count(reason.get("error_count"), "reason.error_count"),
        error_codes=codes,
        summary=_text(obj.get("developer_message_summary"), "developer_message_summary") or "",
        sample=sample,
        validation_start=_moment(obj.get("validation_start"), "validation_start"),
        validation_end=_moment(obj.get("validation_end"), "validation_end"),
    )


async def meter_error_report(event: StripeEvent, context: HandlerContext) -> None:
    await record_error_report(error_report(event))


METERING_HANDLERS = {
    "billing.meter.error_report_triggered": meter_error_report,
}
