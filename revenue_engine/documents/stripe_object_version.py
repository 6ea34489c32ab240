"""``StripeObjectVersion``: the newest Stripe event applied to one Stripe object.

Stripe delivers events in no guaranteed order and ``created`` has one-second resolution. An
event is applied only when its version ``(created, stage, event_id)`` is not older than the
stored one: ``stage`` orders same-second lifecycle events (created < updated < deleted) and the
event id breaks the remaining ties, so two same-second events give the same result in either
order. An equal version (a redelivery or replay of the same event) is applied again.
"""

from __future__ import annotations

import pymongo
from beanie import Document
from pymongo import IndexModel


class StripeObjectVersion(Document):
    object_id: str
    created: int
    stage: int
    event_id: str

    class Settings:
        name = "stripe_object_versions"
        indexes = [
            IndexModel([("object_id", pymongo.ASCENDING)], unique=True, name="object_id_unique"),
        ]
