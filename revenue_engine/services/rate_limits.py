"""Per-organization rate limits: fixed windows counted in MongoDB (``RateLimitCounter``).

``hit`` counts one operation in the current window with a single atomic upsert and raises
``RateLimited`` (with the seconds until the window ends) once the organization is over its
limit. Counting in the database — not in process memory — means every engine instance on the
same database enforces one shared limit; the embedded default counts in its in-memory store.
A fixed window lets a burst of up to twice the limit straddle a boundary: good enough to stop
a runaway client from spending the account's Stripe rate limit, which is what it is for.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from pymongo import ReturnDocument

from revenue_engine.db import DuplicateKeyError
from revenue_engine.documents import RateLimitCounter
from revenue_engine.errors import RateLimited


async def hit(
    organization_id: str,
    bucket: str,
    *,
    limit: int,
    window_seconds: int,
    now: float | None = None,
) -> int:
    """Count one ``bucket`` operation for the organization; return the count in this window.

    Raises ``RateLimited`` when the count is over ``limit`` (``limit`` 0 = unlimited)."""
    if limit <= 0:
        return 0
    now = time.time() if now is None else now
    start = int(now // window_seconds) * window_seconds
    key = f"{organization_id}:{bucket}:{start}"
    collection = RateLimitCounter.get_motor_collection()
    update = {
        "$inc": {"hits": 1},
        "$setOnInsert": {
            "organization_id": organization_id,
            "bucket": bucket,
            "expires_at": datetime.fromtimestamp(start + window_seconds, UTC),
        },
    }
    try:
        row = await collection.find_one_and_update(
            {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:
        # Two first hits raced to insert the window's row: the loser's increment applies now.
        row = await collection.find_one_and_update(
            {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    count = int(row["hits"])
    if count > limit:
        retry_after = max(1, math.ceil(start + window_seconds - now))
        raise RateLimited(
            f"too many requests for this organization; retry in {retry_after} s",
            retry_after=float(retry_after),
        )
    return count
