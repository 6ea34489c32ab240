"""Order-proofing for event-driven writes: admit an event only if it is not older than the
newest one already applied to the same Stripe object (see ``StripeObjectVersion``).

Callers serialise ``admit`` + their write per object (``object_lock``): in one process no
older event can slip in between. Several worker processes would need the write itself to be
conditional on the version; the catalog's writes are rare and idempotent, so this is the
documented limit rather than a transaction.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from revenue_engine.db import DuplicateKeyError
from revenue_engine.documents.stripe_object_version import StripeObjectVersion

_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def object_lock(object_id: str) -> asyncio.Lock:
    """The in-process lock of one Stripe object (kept while someone holds a reference)."""
    lock = _locks.get(object_id)
    if lock is None:
        lock = asyncio.Lock()
        _locks[object_id] = lock
    return lock


def stage_of(event_type: str) -> int:
    """Lifecycle order of same-second events: ``*.created`` < anything else < ``*.deleted``."""
    if event_type.endswith(".created"):
        return 0
    if event_type.endswith(".deleted"):
        return 2
    return 1


def _not_newer_than(created: int, stage: int, event_id: str) -> list[dict[str, Any]]:
    # Stored version <= (created, stage, event_id), lexicographically.
    return [
        {"created": {"$lt": created}},
        {"created": created, "stage": {"$lt": stage}},
        {"created": created, "stage": stage, "event_id": {"$lte": event_id}},
    ]


async def admit(object_id: str, *, created: int, event_type: str, event_id: str) -> bool:
    """Record the event as the object's newest and return True, or False when it is older."""
    stage = stage_of(event_type)
    version = {"created": created, "stage": stage, "event_id": event_id}
    try:
        await StripeObjectVersion(object_id=object_id, **version).insert()
    except DuplicateKeyError:
        pass  # seen before: the conditional update below decides
    else:
        return True
    query = {"object_id": object_id, "$or": _not_newer_than(created, stage, event_id)}
    result = await StripeObjectVersion.find_one(query).update({"$set": version})
    return bool(getattr(result, "matched_count", 0))
