"""Organization-wide leases: one holder at a time for an operation, across engine instances.

``hold(key)`` claims ``key`` by inserting a ``Lease`` row (unique ``_id``); a caller that finds
it held waits with a short backoff, takes it over once it has expired (its holder died), and
gives up with ``Busy`` after ``wait_seconds``. The row is deleted by its owner on the way out.

Purchases use it: the live-subscription check, the scan of open Checkout sessions and the Stripe
call that creates a session or a subscription must not interleave with another purchase of the
same organization, or two different purchases started at once could both be paid. Idempotency
keys cover a double-submit of one purchase; only a claim covers two different ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from revenue_engine.db import DuplicateKeyError, StoreError
from revenue_engine.documents import Lease
from revenue_engine.documents.plan import utcnow
from revenue_engine.errors import Busy

log = logging.getLogger(__name__)

#: Longer than the slowest holder can take: a few Stripe calls, each bounded by the SDK's
#: timeout and retries. Only a holder that died leaves a lease to expire.
LEASE_SECONDS = 120.0
#: How long a second caller waits for the holder before answering ``Busy``.
WAIT_SECONDS = 10.0


async def _claim(key: str, owner: str, lease_seconds: float) -> bool:
    collection = Lease.get_motor_collection()
    now = utcnow()
    expires_at = now + timedelta(seconds=lease_seconds)
    try:
        await collection.insert_one({"_id": key, "owner": owner, "expires_at": expires_at})
        return True
    except DuplicateKeyError:
        taken = await collection.find_one_and_update(
            {"_id": key, "expires_at": {"$lte": now}},
            {"$set": {"owner": owner, "expires_at": expires_at}},
        )
        if taken is not None:
            log.warning("lease taken over key=%s (its holder did not release it)", key)
        return taken is not None


@asynccontextmanager
async def hold(
    key: str,
    *,
    lease_seconds: float = LEASE_SECONDS,
    wait_seconds: float = WAIT_SECONDS,
) -> AsyncIterator[None]:
    """Run the body as the only holder of ``key``; ``Busy`` if it stays held ``wait_seconds``."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    pause = 0.01
    while not await _claim(key, owner, lease_seconds):
        if time.monotonic() + pause > deadline:
            raise Busy(
                "another purchase for this organization is under way; retry shortly",
                retry_after=1.0,
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    try:
        yield
    finally:
        try:
            await Lease.get_motor_collection().delete_one({"_id": key, "owner": owner})
        except StoreError:
            # The lease expires on its own; the body's own outcome is what the caller needs.
            log.warning("lease not released key=%s (store error); it expires", key)
