"""``StripeEvent``: the parts of a verified Stripe event envelope that handlers use.

Parsed from the raw body (the ledger keeps that text for replay), so replays see exactly what
Stripe sent. Only the envelope is checked here; each handler validates its own object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from revenue_engine.webhooks.errors import MalformedEvent


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """One event: ``object`` is ``data.object`` (a snapshot at ``created``, second resolution)."""

    id: str
    type: str
    livemode: bool
    api_version: str | None
    created: int
    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None

    @property
    def object_id(self) -> str | None:
        value = self.object.get("id")
        return value if isinstance(value, str) else None


def parse_event(text: str) -> StripeEvent:
    """The envelope of ``text``; ``MalformedEvent`` when it is not JSON or not an event."""
    try:
        raw: Any = json.loads(text)
    except ValueError as exc:
        raise MalformedEvent("the body is not valid JSON") from exc
    except RecursionError:
        # json's decoder recurses per nesting level: a body nested deeper than the interpreter's
        # recursion limit is no Stripe event (theirs are a few levels deep).
        raise MalformedEvent("the body is nested too deeply") from None
    if not isinstance(raw, dict) or raw.get("object") != "event":
        raise MalformedEvent("the body is not a Stripe event")
    data = raw.get("data")
    event_id, kind, created = raw.get("id"), raw.get("type"), raw.get("created")
    api_version = raw.get("api_version")
    if not (isinstance(event_id, str) and 0 < len(event_id) <= 255):
        raise MalformedEvent("the event has no id")
    if not (isinstance(kind, str) and 0 < len(kind) <= 255):
        raise MalformedEvent("the event has no type")
    if not isinstance(created, int) or isinstance(created, bool):
        raise MalformedEvent("the event has no created timestamp")
    if not isinstance(raw.get("livemode"), bool):
        raise MalformedEvent("the event has no livemode flag")
    if api_version is not None and not isinstance(api_version, str):
        raise MalformedEvent("the event's api_version is not a string")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("the event has no data.object")
    previous = data.get("previous_attributes")
    return StripeEvent(
        id=event_id,
        type=kind,
        livemode=raw["livemode"],
        api_version=api_version,
        created=created,
        object=data["object"],
        previous_attributes=previous if isinstance(previous, dict) else None,
    )
