"""Events: what Stripe records (and delivers) for every state change.

:func:`emit` snapshots the object into ``data.object``, adds ``data.previous_attributes`` for
``*.updated`` events (only the fields that changed, nested hashes diffed key by key, as Stripe
does), stamps ``request.id``/``request.idempotency_key`` from the causing request (both null for
what Stripe does on its own: a test clock's billing run, an expiry, a hosted page), stores the
event and hands it to listeners (webhook delivery, which renders it in each endpoint's
``api_version`` and counts ``pending_webhooks``).
"""

from __future__ import annotations

import copy
from typing import Any

from stripe_emulator.ids import new_id
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot


def diff(before: JSON, after: JSON) -> JSON:
    """Previous values of fields that changed between two snapshots of an object."""
    previous: JSON = {}
    for key in set(before) | set(after):
        old: Any = before.get(key)
        new: Any = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and key != "items":
            previous[key] = diff(old, new)
        else:
            previous[key] = copy.deepcopy(old)
    return previous


def emit(
    ctx: Ctx,
    type_: str,
    obj: JSON,
    before: JSON | None = None,
    *,
    details: JSON | None = None,
    created: int | None = None,
) -> JSON:
    """Record an event of ``type_`` about ``obj``; ``before`` yields ``previous_attributes``.

    ``details`` are extra keys of ``data`` beside ``object`` (an error report's ``reason`` …);
    ``created`` overrides the time of ``obj``'s clock."""
    state = ctx.state
    data: JSON = {"object": snapshot(obj)}
    if before is not None:
        data["previous_attributes"] = diff(before, obj)
    if details:
        data.update(snapshot(details))
    event: JSON = {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": state.config.api_version,
        "created": state.now_for(obj) if created is None else created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        "type": type_,
    }
    state.store.put(event)
    for listener in list(state.listeners):
        listener(event)
    return event


def emit_update(ctx: Ctx, type_: str, obj: JSON, before: JSON) -> JSON | None:
    """Emit an ``*.updated`` event only if something actually changed."""
    if not diff(before, obj):
        return None
    return emit(ctx, type_, obj, before)
