"""Per-organization rate limits: fixed windows counted in MongoDB (``RateLimitCounter``).

``hit`` counts one operation in the current window with a single atomic upsert and raises
``RateLimited`` (with the seconds until the window ends) once the organization is over its
limit. Counting in the database — not in process memory — means every engine instance on the
same database enforces one shared limit; the embedded default counts in its in-memory store.
A fixed window lets a burst of up to twice the limit straddle a boundary: good enough to stop
a runaway client from spending the account's Stripe rate limit, which is what it is for.

A counter row outlives its window by ``EXPIRY_MARGIN_SECONDS``: the key names the window, so a
past window's row is never read again, and the margin keeps the current one from expiring
under a request that is counting in it (see ``documents.rate_limit``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from revenue_engine.clock import unix_now
from revenue_engine.db import DuplicateKeyError, StoreError
from revenue_engine.documents import RateLimitCounter
from revenue_engine.errors import RateLimited

#: How long a counter row is kept past the end of its window. The store expires rows by ITS
#: clock — the in-memory store on every read, MongoDB's TTL monitor about once a minute — while
#: the window is chosen by the engine's clock when the request starts. A row expiring at the
#: window's end could vanish between the upsert and its read-back (the in-memory store then
#: answers no document), or be deleted while still counting on a server whose clock runs
#: ahead; five minutes covers any request and any sane clock skew.
EXPIRY_MARGIN_SECONDS = 300

#: Upserts tried before giving up: one more after a lost insert race (duplicate key) or a row
#: removed before it was read back.
_ATTEMPTS = 3


async def hit(
    organization_id: str,
    bucket: str,
    *,
    limit: int,
    window_seconds: int,
    now: float | None = None,
) -> int:
    """Count one ``bucket`` operation for the organization; return the count in this window.

    Raises ``RateLimited`` when the count is over ``limit`` (``limit`` 0 = unlimited), and
    ``StoreError`` (answered as retryable ``UNAVAILABLE``) if the store keeps losing the row."""
    if limit <= 0:
        return 0
    now = unix_now() if now is None else now
    start = int(now // window_seconds) * window_seconds
    count = await _count(
        f"{organization_id}:{bucket}:{start}",
        {
            "$inc": {"hits": 1},
            "$setOnInsert": {
                "organization_id": organization_id,
                "bucket": bucket,
                "expires_at": datetime.fromtimestamp(
                    start + window_seconds + EXPIRY_MARGIN_SECONDS, UTC
                ),
            },
        },
    )
    if count > limit:
        retry_after = max(1, math.ceil(start + window_seconds - now))
        raise RateLimited(
            f"too many requests for this organization; retry in {retry_after} s",
            retry_after=float(retry_after),
        )
    return count


async def _count(key: str, update: dict[str, Any]) -> int:
    """Apply ``update`` to the counter ``key`` (created if missing); its count after."""
    collection = RateLimitCounter.get_motor_collection()
    for _ in range(_ATTEMPTS):
        try:
            row = await collection.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            # Two first hits raced to insert the window's row: the loser's increment applies
            # on the next attempt, to the winner's row.
            continue
        if row is not None:
            return int(row["hits"])
        # The row expired between the upsert and its read-back: its increment is gone with
        # it, so counting again counts this operation once.
    raise StoreError(f"rate-limit counter {key} could not be updated")
