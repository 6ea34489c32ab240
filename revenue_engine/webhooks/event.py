"""``StripeEvent``: the parts of a verified Stripe event envelope that handlers use.

Parsed from the raw body (the ledger keeps that text for replay), so replays see exactly what
Stripe sent. A signature proves who sent a body, not that it is sound, so the whole envelope is
checked here and anything off is ``MalformedEvent`` (answered 400, nothing recorded):

* the body is JSON (``json_input.loads``: UTF-8, at most ``MAX_JSON_DEPTH`` levels deep and
  ``MAX_EVENT_CONTAINERS`` objects and arrays) and ``{"object": "event", …}``;
* no string anywhere in it, keys included, holds a lone surrogate (it could not be stored);
* each envelope field has Stripe's type: ``id`` and ``type`` printable text of at most 255
  characters, ``created`` an integer in ``CREATED_RANGE``, ``livemode`` a boolean,
  ``api_version`` text or null, ``data`` an object whose ``object`` is an object and whose
  ``previous_attributes`` is an object when present; the optional ``account`` and ``context``
  text, ``pending_webhooks`` a non-negative integer, ``request`` null, an id, or an object
  with ``id`` / ``idempotency_key`` text or null. Fields Stripe may add later are let through.

Each handler validates its own ``data.object``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from revenue_engine.json_input import (
    JsonTooDeep,
    JsonTooLarge,
    find_bad_text,
    loads,
    may_decode_to_bad_text,
)
from revenue_engine.webhooks.errors import MalformedEvent

#: Objects and arrays an event may hold: Stripe's hold hundreds (lists inside an event are cut
#: to their first page); a 1 MiB body of 340,000 empty arrays took the decoder 100 ms.
MAX_EVENT_CONTAINERS = 20_000

#: Accepted ``created`` timestamps (unix seconds): 2000-01-01 up to, not including, 2100-01-01.
#: Stripe did not exist before; test clocks move an account's time ahead by months or years,
#: not a century. (Far outside it the ledger's ``datetime.fromtimestamp`` fails outright.)
CREATED_RANGE = range(
    int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()),
    int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()),
)

#: Longest ``id``, ``type`` and other envelope text accepted (Stripe's are far shorter).
MAX_FIELD_LENGTH = 255


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
    #: The other members of ``data``, if any: an event whose object is not all it says (a
    #: meter error report carries its ``reason`` beside the meter) puts the rest here.
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def object_id(self) -> str | None:
        value = self.object.get("id")
        return value if isinstance(value, str) else None


def parse_event(text: str) -> StripeEvent:
    """The envelope of ``text``; ``MalformedEvent`` when it is not a sound Stripe event (see
    the module docstring)."""
    try:
        raw: Any = loads(text, max_containers=MAX_EVENT_CONTAINERS)
    except JsonTooDeep:
        raise MalformedEvent("the body is nested too deeply") from None
    except JsonTooLarge:
        raise MalformedEvent(
            f"the body holds more than {MAX_EVENT_CONTAINERS:,} objects and arrays"
        ) from None
    except ValueError:
        raise MalformedEvent("the body is not valid JSON") from None
    if not isinstance(raw, dict) or raw.get("object") != "event":
        raise MalformedEvent("the body is not a Stripe event")
    bad = find_bad_text(raw) if may_decode_to_bad_text(text) else None
    if bad is not None:
        raise MalformedEvent(f"the event holds text that is not valid Unicode at {bad.describe()}")
    event_id, kind, created = raw.get("id"), raw.get("type"), raw.get("created")
    if not _is_name(event_id):
        raise MalformedEvent("the event has no id")
    if not _is_name(kind):
        raise MalformedEvent("the event has no type")
    if not _is_int(created):
        raise MalformedEvent("the event has no created timestamp")
    if created not in CREATED_RANGE:
        raise MalformedEvent("the event's created timestamp is out of range")
    livemode = raw.get("livemode")
    if not isinstance(livemode, bool):
        raise MalformedEvent("the event has no livemode flag")
    api_version = raw.get("api_version")
    if not _is_text_or_none(api_version):
        raise MalformedEvent("the event's api_version is not a string")
    data = raw.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("the event has no data.object")
    previous = data.get("previous_attributes")
    if not (previous is None or isinstance(previous, dict)):
        raise MalformedEvent("the event's data.previous_attributes is not an object")
    _check_optional_fields(raw)
    return StripeEvent(
        id=event_id,
        type=kind,
        livemode=livemode,
        api_version=api_version,
        created=created,
        object=data["object"],
        previous_attributes=previous,
        details={k: v for k, v in data.items() if k not in ("object", "previous_attributes")},
    )


def _check_optional_fields(raw: dict[str, Any]) -> None:
    for name in ("account", "context"):
        if not _is_text_or_none(raw.get(name)):
            raise MalformedEvent(f"the event's {name} is not a string")
    pending = raw.get("pending_webhooks")
    if pending is not None and not (_is_int(pending) and pending >= 0):
        raise MalformedEvent("the event's pending_webhooks is not a count")
    request = raw.get("request")
    # An object on current API versions; a bare request id on versions before 2017-05-25.
    if isinstance(request, dict):
        if not all(_is_text_or_none(request.get(key)) for key in ("id", "idempotency_key")):
            raise MalformedEvent("the event's request is not a request reference")
    elif not _is_text_or_none(request):
        raise MalformedEvent("the event's request is not a request reference")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_name(value: object) -> TypeGuard[str]:
    """Text fit for an id or a type: printable (no control characters), not too long."""
    return isinstance(value, str) and 0 < len(value) <= MAX_FIELD_LENGTH and value.isprintable()


def _is_text_or_none(value: object) -> TypeGuard[str | None]:
    return value is None or (isinstance(value, str) and len(value) <= MAX_FIELD_LENGTH)
