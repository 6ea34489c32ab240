"""``Lease``: a short, expiring claim on one organization-wide operation (see
``services.leases``).

One document per claimed key; inserting it is the claim (the ``_id`` is unique on every
engine instance's shared database), deleting it by owner is the release. ``expires_at`` bounds a
claim whose holder died: a later caller takes an expired lease over, and MongoDB's TTL monitor
removes forgotten ones.
"""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel


class Lease(Document):
    id: str = Field(description="<organization>:<operation>")  # type: ignore[assignment]
    owner: str
    expires_at: datetime

    class Settings:
        name = "leases"
        indexes = [
            IndexModel([("expires_at", pymongo.ASCENDING)], expireAfterSeconds=0, name="ttl"),
        ]
