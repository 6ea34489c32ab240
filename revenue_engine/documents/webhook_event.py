"""The webhook ledger: one ``WebhookEvent`` per Stripe event id (unique index).

The row is the claim: inserting it decides which delivery processes the event; a second
insert of the same id fails on the index. ``claimed_at`` is the lease of the delivery working
on it (``None`` once released after a transient failure). ``payload`` is the raw JSON text
exactly as Stripe signed it, for replay and audit (metadata keys may hold dots or dollars,
which MongoDB field names may not).
"""

from __future__ import annotations

import enum
from datetime import datetime

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel

from revenue_engine.clock import utcnow


class WebhookEventStatus(enum.StrEnum):
    PROCESSING = "processing"  # claimed (or released after a transient failure, to be retried)
    PROCESSED = "processed"  # applied
    IGNORED = "ignored"  # not for us: unhandled type or the other livemode
    FAILED = "failed"  # could not be applied; see last_error; replayable


class WebhookEvent(Document):
    event_id: str
    type: str
    livemode: bool
    api_version: str | None = None
    #: Stripe's ``created`` of the event (second resolution).
    created: datetime
    received_at: datetime = Field(default_factory=utcnow)
    status: WebhookEventStatus = WebhookEventStatus.PROCESSING
    #: How many times a delivery or a replay has claimed the event.
    attempts: int = 1
    #: Why the event was not applied: failed, ignored, or released after a transient error.
    last_error: str | None = None
    payload: str
    #: When the last claim finished (processed, ignored or failed).
    processed_at: datetime | None = None
    #: Lease of the current claim; ``None`` when no delivery is working on the event.
    claimed_at: datetime | None = None
    #: Identifies the current claim, so a delivery whose lease was re-taken cannot finish it.
    claim_token: str | None = None
    #: Parked as ``failed`` only because Stripe was thought to have stopped redelivering it:
    #: a later delivery from Stripe takes it again (a replay takes any finished row).
    parked_for_age: bool = False

    class Settings:
        name = "webhook_events"
        indexes = [
            IndexModel([("event_id", pymongo.ASCENDING)], unique=True, name="event_id_unique"),
            IndexModel([("status", pymongo.ASCENDING), ("_id", pymongo.DESCENDING)]),
            IndexModel([("type", pymongo.ASCENDING), ("_id", pymongo.DESCENDING)]),
        ]
