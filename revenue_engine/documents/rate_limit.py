"""``RateLimitCounter``: how many limited operations one organization started in one window.

One document per (organization, bucket, window start), so every engine instance on the same
database shares the count. The window is part of the key: a counter of a past window is never
read again, whatever the TTL monitor (``expires_at``) has or has not deleted yet — the TTL only
keeps the collection small. ``expires_at`` is the window's end plus a margin
(``services.rate_limits.EXPIRY_MARGIN_SECONDS``), never the end itself: the store expires rows
by its own clock (MongoDB about once a minute, the in-memory store on every read), and a row
expiring at the boundary vanished between the upsert and its read-back.
"""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel


class RateLimitCounter(Document):
    id: str = Field(description="<organization>:<bucket>:<window start, unix seconds>")  # type: ignore[assignment]
    organization_id: str
    bucket: str
    hits: int = 0
    expires_at: datetime

    class Settings:
        name = "rate_limit_counters"
        indexes = [
            IndexModel([("expires_at", pymongo.ASCENDING)], expireAfterSeconds=0, name="ttl"),
        ]
