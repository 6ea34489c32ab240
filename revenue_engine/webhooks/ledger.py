"""The webhook ledger: claim an event by inserting its row, finish or release the claim, list.

Claim-by-insert: the first delivery of an event id inserts its ``WebhookEvent`` row (status
``processing``, a fresh lease and a claim token) and processes it. A concurrent or later
delivery of the same id hits the unique index and reads the row instead:

* finished (``processed`` / ``ignored`` / ``failed``) → a duplicate: answered 200, nothing done;
* ``processing`` under a live lease → busy: answered 409 so Stripe tries again later;
* ``processing`` with a released lease (a transient failure) or one older than ``LEASE``
  (the worker died) → re-taken atomically by exactly one delivery, ``attempts`` + 1.

A replay (admin or CLI) may also take a finished row. Finishing and releasing are conditional
on the claim token, so a delivery whose lease was re-taken cannot overwrite the new outcome.

Abandoned rows: Stripe stops redelivering after a while (live mode: 3 days; test mode: three
retries over a few hours), so an event whose first delivery is older than ``give_up_after``
(3 days; 24 hours in test mode, well past Stripe's few hours) is parked as ``failed`` on its
next transient failure, and a ``processing`` row that no delivery holds and that is that old
is parked by ``park_abandoned`` — run before every listing of failed events, so
``webhookEvents(status: FAILED)`` and ``events replay --failed`` see it. A row parked only for
its age is marked ``parked_for_age``: should Stripe deliver the event again after all, that
delivery takes it (``Claim.revived``) instead of answering ``duplicate``, so it is applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId, SortDirection
from beanie.odm.queries.update import UpdateResponse
from bson.errors import InvalidId
from pydantic import BaseModel

from revenue_engine.clock import as_utc, utcnow
from revenue_engine.db import DuplicateKeyError
from revenue_engine.documents import WebhookEvent, WebhookEventStatus
from revenue_engine.errors import ValidationFailed
from revenue_engine.invariants import present
from revenue_engine.webhooks.event import StripeEvent

#: How long a claim protects an event from being re-taken by another delivery.
LEASE = timedelta(seconds=60)

#: How long after an event's first delivery Stripe may still redeliver it: retries last up to
#: 3 days in live mode, but only three retries over a few hours in test mode (Stripe gives no
#: exact span, so test mode waits a whole day: parking while Stripe still retries would leave
#: a redelivery nothing to do but take the row back).
GIVE_UP_AFTER_LIVE = timedelta(days=3)
GIVE_UP_AFTER_TEST = timedelta(hours=24)

#: Longest ``last_error`` kept on a row.
MAX_ERROR_LENGTH = 500

FINISHED = (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED, WebhookEventStatus.FAILED)


@dataclass(frozen=True, slots=True)
class Claim:
    """The result of trying to claim an event: ``token`` is set when this caller owns it."""

    event_id: str
    token: str | None
    status: WebhookEventStatus
    attempts: int
    replay: bool = False
    recorded: bool = False
    #: When the event was first delivered (the row's ``received_at``).
    received_at: datetime | None = None
    #: A delivery took a row that had been parked only for its age (``parked_for_age``):
    #: Stripe still redelivers it, so a transient failure releases it rather than parking it.
    revived: bool = False

    @property
    def owned(self) -> bool:
        return self.token is not None


def _new_token() -> str:
    return uuid.uuid4().hex


def give_up_after(livemode: bool) -> timedelta:
    """How long after its first delivery an event may still be redelivered by Stripe."""
    return GIVE_UP_AFTER_LIVE if livemode else GIVE_UP_AFTER_TEST


def past_redelivery(claim: Claim, livemode: bool, now: datetime | None = None) -> bool:
    """Whether Stripe would no longer redeliver the claimed event (see ``give_up_after``)."""
    if claim.received_at is None:
        return False
    return (now or utcnow()) - as_utc(claim.received_at) >= give_up_after(livemode)


def _abandoned(now: datetime) -> dict[str, Any]:
    return {
        "status": WebhookEventStatus.PROCESSING.value,
        "$and": [
            {"$or": [{"claimed_at": None}, {"claimed_at": {"$lt": now - LEASE}}]},
            {
                "$or": [
                    {"livemode": True, "received_at": {"$lt": now - GIVE_UP_AFTER_LIVE}},
                    {"livemode": False, "received_at": {"$lt": now - GIVE_UP_AFTER_TEST}},
                ]
            },
        ],
    }


async def park_abandoned() -> int:
    """Park as ``failed`` every ``processing`` row no delivery holds whose first delivery is
    older than Stripe keeps redelivering (see the module docstring); how many were parked."""
    now = utcnow()
    parked = 0
    for row in await WebhookEvent.find(_abandoned(now)).to_list():
        reason = "gave up: not redelivered since " + as_utc(row.received_at).isoformat()
        if row.last_error:
            reason = f"{reason}; {row.last_error}"
        result = await WebhookEvent.find_one(
            {"_id": row.id, "claim_token": row.claim_token, **_abandoned(now)}
        ).update(
            {
                "$set": {
                    "status": WebhookEventStatus.FAILED.value,
                    "last_error": reason[:MAX_ERROR_LENGTH],
                    "processed_at": now,
                    "claimed_at": None,
                    "claim_token": None,
                    "parked_for_age": True,
                }
            }
        )
        parked += int(bool(getattr(result, "matched_count", 0)))
    return parked


def _claimable(now: datetime, *, replay: bool) -> list[dict[str, Any]]:
    processing = WebhookEventStatus.PROCESSING.value
    conditions: list[dict[str, Any]] = [
        {"status": processing, "claimed_at": None},
        {"status": processing, "claimed_at": {"$lt": now - LEASE}},
    ]
    if replay:
        conditions.append({"status": {"$in": [s.value for s in FINISHED]}})
    else:
        # Parked only because Stripe was thought to be done with it: Stripe's redelivery wins.
        conditions.append({"status": WebhookEventStatus.FAILED.value, "parked_for_age": True})
    return conditions


async def claim(event: StripeEvent, payload: str, *, ignored: str | None = None) -> Claim:
    """Claim a delivered event (see the module docstring). Store errors propagate.

    With ``ignored`` (the reason), an event we will not apply is inserted already finished as
    ``ignored``: one write instead of claim + finish. The returned claim is then not owned
    and ``recorded`` says this call wrote the outcome.
    """
    now = utcnow()
    token = None if ignored else _new_token()
    row = WebhookEvent(
        event_id=event.id,
        type=event.type,
        livemode=event.livemode,
        api_version=event.api_version,
        created=datetime.fromtimestamp(event.created, UTC),
        received_at=now,
        payload=payload,
        status=WebhookEventStatus.IGNORED if ignored else WebhookEventStatus.PROCESSING,
        last_error=ignored,
        processed_at=now if ignored else None,
        claimed_at=None if ignored else now,
        claim_token=token,
    )
    try:
        await row.insert()
    except DuplicateKeyError:
        # The row exists: the index just said so.
        return present(await take(event.id), f"the ledger row of event {event.id}")
    return Claim(
        event.id, token, row.status, attempts=1, recorded=ignored is not None, received_at=now
    )


async def take(event_id: str, *, replay: bool = False) -> Claim | None:
    """Claim an existing row if it is claimable (``replay`` also takes finished rows; a
    delivery also takes a row parked only for its age).

    ``None`` when there is no such event; a ``Claim`` without token when it is not claimable.
    """
    now = utcnow()
    token = _new_token()
    before = await WebhookEvent.find_one(
        {"event_id": event_id, "$or": _claimable(now, replay=replay)}
    ).update(
        {
            "$set": {
                "status": WebhookEventStatus.PROCESSING.value,
                "claimed_at": now,
                "claim_token": token,
                "parked_for_age": False,
            },
            "$inc": {"attempts": 1},
        },
        response_type=UpdateResponse.OLD_DOCUMENT,
    )
    if isinstance(before, WebhookEvent):
        return Claim(
            event_id,
            token,
            WebhookEventStatus.PROCESSING,
            before.attempts + 1,
            replay=replay,
            received_at=as_utc(before.received_at),
            revived=not replay and before.status is WebhookEventStatus.FAILED,
        )
    current = await get_event(event_id)
    if current is None:
        return None
    return Claim(event_id, None, current.status, current.attempts, replay=replay)


async def finish(
    claim: Claim,
    status: WebhookEventStatus,
    error: str | None = None,
    *,
    parked_for_age: bool = False,
) -> bool:
    """Record the outcome of an owned claim; False when the claim was re-taken meanwhile.

    ``parked_for_age``: failed only because Stripe is thought to have stopped redelivering.
    """
    if status not in FINISHED:
        raise ValueError(f"{status} is not a finished status")
    if parked_for_age and status is not WebhookEventStatus.FAILED:
        raise ValueError("only a failed event is parked for its age")
    result = await WebhookEvent.find_one(
        {"event_id": claim.event_id, "claim_token": claim.token}
    ).update(
        {
            "$set": {
                "status": status.value,
                "last_error": error[:MAX_ERROR_LENGTH] if error else None,
                "processed_at": utcnow(),
                "claimed_at": None,
                "claim_token": None,
                "parked_for_age": parked_for_age,
            }
        }
    )
    return bool(getattr(result, "matched_count", 0))


async def release(claim: Claim, error: str) -> bool:
    """Give an owned claim back after a transient failure: the next delivery may take it."""
    result = await WebhookEvent.find_one(
        {"event_id": claim.event_id, "claim_token": claim.token}
    ).update(
        {
            "$set": {
                "last_error": error[:MAX_ERROR_LENGTH],
                "claimed_at": None,
                "claim_token": None,
            }
        }
    )
    return bool(getattr(result, "matched_count", 0))


async def get_event(event_id: str) -> WebhookEvent | None:
    return await WebhookEvent.find_one({"event_id": event_id})


def _cursor_id(cursor: str) -> PydanticObjectId:
    try:
        return PydanticObjectId(cursor)
    except (InvalidId, TypeError, ValueError):
        raise ValidationFailed("invalid cursor") from None


#: Rows per batch when a page is read with its payloads (each up to WEBHOOK_MAX_BODY_BYTES):
#: what the page holds beyond its response budget is at most one batch.
PAYLOAD_BATCH = 4


async def list_events(
    *,
    status: WebhookEventStatus | None = None,
    type: str | None = None,
    first: int = 20,
    after: str | None = None,
    with_payload: bool = True,
    charge: Callable[[int], None] | None = None,
) -> tuple[list[WebhookEvent], bool]:
    """Newest first: up to ``first`` rows after the cursor ``after``, and whether more exist.
    Abandoned rows are parked first, so they are listed as ``failed``.

    ``with_payload=False`` leaves the payloads in the store (the rows come back with an empty
    ``payload``). Otherwise rows are read a few at a time and ``charge`` is called with each
    payload's size as it arrives: it may raise (a response budget) to stop reading there."""
    if status in (None, WebhookEventStatus.FAILED, WebhookEventStatus.PROCESSING):
        await park_abandoned()
    query: dict[str, Any] = {}
    if status is not None:
        query["status"] = status.value
    if type is not None:
        query["type"] = type
    if after is not None:
        query["_id"] = {"$lt": _cursor_id(after)}
    cursor = (
        WebhookEvent.get_motor_collection()
        .find(query, None if with_payload else {"payload": 0})
        .sort([("_id", SortDirection.DESCENDING)])
        .limit(first + 1)
        .batch_size(PAYLOAD_BATCH if with_payload else first + 1)
    )
    rows: list[WebhookEvent] = []
    try:
        async for raw in cursor:
            if not with_payload:
                raw["payload"] = ""
            elif charge is not None and len(rows) < first:
                charge(len(raw.get("payload") or ""))
            rows.append(WebhookEvent.model_validate(raw))
    finally:
        await _close(cursor)
    return rows[:first], len(rows) > first


async def _close(cursor: Any) -> None:
    # Motor's cursor closes with a coroutine, the in-memory store's at once.
    closed = cursor.close()
    if closed is not None:
        await closed


class _EventId(BaseModel):
    event_id: str


async def failed_event_ids() -> list[str]:
    """Ids of every ``failed`` event, oldest first (what ``events replay --failed`` walks),
    abandoned ``processing`` rows parked first."""
    await park_abandoned()
    rows = (
        await WebhookEvent.find({"status": WebhookEventStatus.FAILED.value})
        .sort([("_id", SortDirection.ASCENDING)])
        .project(_EventId)
        .to_list()
    )
    return [row.event_id for row in rows]
