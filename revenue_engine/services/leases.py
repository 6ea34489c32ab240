"""Organization-wide leases: one holder at a time for an operation, across engine instances.

``hold(key)`` claims ``key`` by inserting a ``Lease`` row (unique ``_id``); a caller that finds
it held waits with a short backoff, takes it over once it has expired (its holder died), and
gives up with ``Busy`` after ``wait_seconds``. The holder renews the claim while its body runs
(however slow Stripe is, a live holder keeps it) and deletes the row on the way out; a delete
the store refuses is retried in the background, so an outage does not keep the organization
waiting for the lease to expire.

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

from revenue_engine.clock import utcnow
from revenue_engine.db import DuplicateKeyError, StoreError
from revenue_engine.documents import Lease
from revenue_engine.errors import Busy

log = logging.getLogger(__name__)

#: How long a claim lasts without renewal. The holder renews it every third of that while its
#: body runs, so only a holder that died (or lost the store for that long) lets it expire.
LEASE_SECONDS = 30.0
#: How long a second caller waits for the holder before answering ``Busy``.
WAIT_SECONDS = 10.0
#: Releases that failed (the store was down) and are being retried in the background.
_PENDING_RELEASES: set[asyncio.Task[None]] = set()


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


async def _renew(key: str, owner: str, lease_seconds: float) -> None:
    """Keep the claim alive while its body runs (a slow Stripe must not let it expire)."""
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            result = await Lease.get_motor_collection().update_one(
                {"_id": key, "owner": owner},
                {"$set": {"expires_at": utcnow() + timedelta(seconds=lease_seconds)}},
            )
        except StoreError:
            log.warning("lease not renewed key=%s (store error); retrying", key)
            continue
        if not result.matched_count:
            log.warning("lease lost key=%s (it expired and was taken over)", key)
            return


async def _release(key: str, owner: str) -> None:
    await Lease.get_motor_collection().delete_one({"_id": key, "owner": owner})


async def _release_later(key: str, owner: str) -> None:
    """Retry a release the store refused, so the organization is not kept waiting for the
    lease to expire once the store is back."""
    for pause in (0.5, 1.0, 2.0, 4.0, 8.0):
        await asyncio.sleep(pause)
        try:
            await _release(key, owner)
            return
        except StoreError:
            continue
    log.warning("lease not released key=%s (store error); it expires", key)


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
    renewer = asyncio.create_task(_renew(key, owner, lease_seconds))
    try:
        yield
    finally:
        renewer.cancel()
        try:
            await _release(key, owner)
        except StoreError:
            # The body's own outcome is what the caller needs; the release is retried apart.
            task = asyncio.create_task(_release_later(key, owner))
            _PENDING_RELEASES.add(task)
            task.add_done_callback(_PENDING_RELEASES.discard)
