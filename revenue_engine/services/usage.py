"""Usage ingestion: reported events in, per-period counters up — every event counted once,
a batch never half-applied. ``POST /v1/usage`` and GraphQL ``recordUsage`` both call
``record_usage``.

An event is ``{id, organization_id, feature, quantity, timestamp?}``. Each one is answered
``accepted``, ``duplicate`` (its id was recorded before, in this batch or another: the first
one counts, whatever the payloads) or ``rejected`` with a ``Reason``; bad events never spoil
good ones. The write of a batch, and why it counts each event once:

1. **decide** — validate; find each organization's live subscription and plan (one query of
   each per batch) and the period the event falls in (``usage_rules``); read the batch's
   counters (``used``). For a capped counter (overage off, finite included quantity) accept,
   in input order, while ``used + quantity <= included``. When some events did not fit, the
   store is asked which of the batch's ids it holds already, so a retried batch near the cap
   is answered ``duplicate``, not ``QUOTA_EXCEEDED``.
2. **insert** — ``insert_many(ordered=False)`` of the accepted events, each with this
   write's ``batch`` id and ``counted=False``. The unique index on (organization, id) is
   what makes an id count once across instances: an event it refuses is a ``duplicate``.
3. **count** — per counter (concurrently), one conditional update: filter ``{_id,
   "marks.<batch>": absent}`` (and ``used: <as read>`` for a capped counter), ``$inc used``
   by the inserted events' sum, ``$set marks.<batch>``. The mark makes the addition happen at
   most once; for a capped counter a lost race re-reads ``used``, re-decides, deletes the
   events that no longer fit (answered ``QUOTA_EXCEEDED``) and tries again — two batches
   cannot together pass the cap.
4. **settle** — one ``update_many`` (by ``_id``) marks the events of the counted counters
   ``counted=True``.

A crash between 2 and 4 leaves events ``counted=False``: ``complete_pending_batches`` (run
in the background) re-runs 3 and 4 for each (batch, counter) of events older than a minute;
the mark makes 3 add each batch once, whoever gets there first. A mark is needed as long as
anyone may still count its batch: a completer that read the batch's events before they were
settled counts it later. A batch this process settled within ``EAGER_UNSET_WITHIN`` of
storing its events was never seen by a completer (it takes only events older than
``PENDING_AFTER``), so its mark is unset in the next update of the same counter; the marks of
slower batches, and of completed ones, stay until ``trim_marks`` drops them an hour later
(instances' clocks must agree within ``PENDING_AFTER - EAGER_UNSET_WITHIN``).

No transactions, ``$max`` or pipelines: each step is one single-document (or unordered bulk)
write any MongoDB — and the bundled wire test server — performs atomically. Counters are
written with raw driver calls and events validated with plain Python: per event the engine
spends a few microseconds, the store one round trip per step per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Int64, ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError

from revenue_engine.clock import as_utc, utcnow
from revenue_engine.documents import (
    LIVE_STATUSES,
    BillingInterval,
    Customer,
    Subscription,
    SubscriptionPlan,
    UsageCounter,
    UsageEvent,
)
from revenue_engine.documents.usage import counter_id
from revenue_engine.errors import ServiceUnavailable
from revenue_engine.invariants import InvariantError
from revenue_engine.services import plan_cache
from revenue_engine.services.clock import subscription_now
from revenue_engine.services.usage_rules import (
    Allowance,
    Period,
    Window,
    allowance,
    parse_timestamp,
    shift_months,
)

log = logging.getLogger(__name__)

#: Events one batch may hold.
MAX_BATCH = 1000
#: The largest quantity of one event.
MAX_QUANTITY = 10**9
#: Uncounted events older than this are completed by ``complete_pending_batches``.
PENDING_AFTER = timedelta(seconds=60)
#: A batch settled within this of storing its events has its mark unset at once (see above).
EAGER_UNSET_WITHIN = PENDING_AFTER / 2
#: Marks older than this (whose batch is settled) are dropped by ``trim_marks``.
MARK_TTL = timedelta(hours=1)
#: Attempts of a capped counter's compare-and-set before the batch answers "retry".
_CAS_ATTEMPTS = 25
_INSERT_ATTEMPTS = 5
_DUPLICATE_KEY = 11000

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}", re.ASCII)
# As ``auth`` reads organization ids from tokens and headers.
_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", re.ASCII)

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"


class Reason(enum.StrEnum):
    INVALID_ID = "INVALID_ID"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_TIMESTAMP = "INVALID_TIMESTAMP"
    UNKNOWN_FEATURE = "UNKNOWN_FEATURE"
    UNKNOWN_ORGANIZATION = "UNKNOWN_ORGANIZATION"
    NO_LIVE_SUBSCRIPTION = "NO_LIVE_SUBSCRIPTION"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    TIMESTAMP_TOO_OLD = "TIMESTAMP_TOO_OLD"
    TIMESTAMP_IN_FUTURE = "TIMESTAMP_IN_FUTURE"


_MESSAGES = {
    Reason.INVALID_ID: "id must be 1-200 characters of A-Z a-z 0-9 _ . : -",
    Reason.INVALID_QUANTITY: f"quantity must be an integer from 1 to {MAX_QUANTITY}",
    Reason.INVALID_TIMESTAMP: "timestamp must be an RFC 3339 time with an offset "
    "(2026-03-01T12:00:00Z) or unix seconds",
    Reason.UNKNOWN_FEATURE: "feature is not a metered feature of the organization's plan",
    Reason.UNKNOWN_ORGANIZATION: "the organization is not known (it has no customer)",
    Reason.NO_LIVE_SUBSCRIPTION: "the organization has no live subscription",
    Reason.QUOTA_EXCEEDED: "the event would exceed the included quantity and overage is off",
    Reason.TIMESTAMP_TOO_OLD: "the timestamp is in a billing period closed for usage",
    Reason.TIMESTAMP_IN_FUTURE: "the timestamp is in the future",
}
_DUPLICATE_STORED = "already recorded"
_DUPLICATE_IN_BATCH = "the same id appears earlier in this batch"


@dataclass(slots=True)
class EventResult:
    """What became of one event (``id`` as the caller sent it when it is a string)."""

    id: str | None
    status: str
    reason: Reason | None = None
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason.value
        if self.message is not None:
            out["message"] = self.message
        return out


@dataclass(frozen=True, slots=True)
class LiveSubscription:
    """An organization's live subscription as a batch judged it."""

    subscription: Subscription
    plan: SubscriptionPlan | None
    window: Window | None


@dataclass(slots=True)
class BatchResult:
    results: list[EventResult]
    #: The live subscriptions the batch used, by organization.
    live: dict[str, LiveSubscription] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def as_json(self) -> dict[str, Any]:
        return {
            "results": [r.as_json() for r in self.results],
            "accepted": self.count(ACCEPTED),
            "duplicates": self.count(DUPLICATE),
            "rejected": self.count(REJECTED),
        }


# Decision states of a valid event.
_PENDING, _ACCEPT, _OVER, _DUP_STORED, _DUP_IN_BATCH = range(5)


class _Event:
    __slots__ = (
        "counter",
        "doc_id",
        "feature",
        "first",
        "id",
        "index",
        "org",
        "qty",
        "state",
        "ts",
    )

    def __init__(self, index: int, event_id: str, org: str, feature: str, qty: int) -> None:
        self.index = index
        self.id = event_id
        self.org = org
        self.feature = feature
        self.qty = qty
        self.ts: datetime | None = None
        self.counter: _Counter | None = None
        self.state = _PENDING
        self.first: _Event | None = None
        self.doc_id: ObjectId | None = None


class _Counter:
    """One counter a batch writes to, with the events it accepted for it (input order)."""

    __slots__ = ("exists", "feature", "id", "inserted", "live", "period", "rule", "running", "used")

    def __init__(
        self, cid: str, live: LiveSubscription, feature: str, period: Period, rule: Allowance
    ) -> None:
        self.id = cid
        self.live = live
        self.feature = feature
        self.period = period
        self.rule = rule
        self.used = 0
        self.exists = False
        self.running = 0
        self.inserted: list[_Event] = []

    def fits(self, used: int, quantity: int) -> bool:
        included = self.rule.included
        return not self.rule.capped or included is None or used + quantity <= included


def _rejected(event_id: object, reason: Reason, message: str | None = None) -> EventResult:
    shown = event_id if isinstance(event_id, str) else None
    return EventResult(shown, REJECTED, reason, message or _MESSAGES[reason])


def _parse(index: int, raw: Mapping[str, Any]) -> _Event | EventResult:
    """The event's syntax (plain Python: this runs for every event of every batch)."""
    event_id = raw.get("id")
    if type(event_id) is not str or _ID.fullmatch(event_id) is None:
        return _rejected(event_id, Reason.INVALID_ID)
    quantity = raw.get("quantity")
    if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
        return _rejected(event_id, Reason.INVALID_QUANTITY)
    org = raw.get("organization_id")
    if type(org) is not str or _ORG.fullmatch(org) is None:
        return _rejected(
            event_id,
            Reason.UNKNOWN_ORGANIZATION,
            "organization_id must be 1-128 characters of A-Z a-z 0-9 _ . : - "
            "(starting with a letter or digit)",
        )
    feature = raw.get("feature")
    if type(feature) is not str:
        return _rejected(event_id, Reason.UNKNOWN_FEATURE, "feature must be a string")
    event = _Event(index, event_id, org, feature, quantity)
    stamp = raw.get("timestamp")
    if stamp is not None:
        event.ts = parse_timestamp(stamp)
        if event.ts is None:
            return _rejected(event_id, Reason.INVALID_TIMESTAMP)
    return event


async def _live_subscriptions(
    orgs: set[str], grace_seconds: int
) -> dict[str, LiveSubscription | Reason]:
    """Each organization's live subscription, its plan and window: three queries per batch
    (subscriptions, the plans they use, and customers of those without one)."""
    if not orgs:
        return {}
    subs = await Subscription.find(
        {"organization_id": {"$in": sorted(orgs)}, "status": {"$in": sorted(LIVE_STATUSES)}}
    ).to_list()
    newest: dict[str, Subscription] = {}
    for sub in sorted(subs, key=lambda s: as_utc(s.created_at)):
        newest[sub.organization_id] = sub  # one per organization; the newest should two exist
    uids = sorted({s.plan_uid for s in newest.values() if s.plan_uid})
    plans = await plan_cache.plans(uids) if uids else {}
    found: dict[str, LiveSubscription | Reason] = {}
    for org, sub in newest.items():
        window = Window.of(sub, subscription_now(sub), grace_seconds)
        plan = plans.get(sub.plan_uid) if sub.plan_uid else None
        found[org] = LiveSubscription(sub, plan, window)
    missing = sorted(orgs - set(newest))
    if missing:
        rows = (
            await Customer.get_motor_collection()
            .find({"organization_id": {"$in": missing}}, {"organization_id": 1})
            .to_list(None)
        )
        known = {row["organization_id"] for row in rows}
        for org in missing:
            found[org] = (
                Reason.NO_LIVE_SUBSCRIPTION if org in known else Reason.UNKNOWN_ORGANIZATION
            )
    return found


#: A batch's counters by (subscription, feature, period object of its window): an event finds
#: its counter without building the counter's id (the window's periods live for the batch).
_Slots = dict[tuple[str, str, int], _Counter]


def _place(
    event: _Event,
    live: LiveSubscription,
    counters: dict[str, _Counter],
    rules: dict[tuple[str, str], Allowance | None],
    slots: _Slots,
) -> EventResult | None:
    """Give ``event`` its counter (made on first use), or answer why it cannot have one."""
    window = live.window
    if window is None:
        return _rejected(
            event.id,
            Reason.NO_LIVE_SUBSCRIPTION,
            "the organization's subscription has no current billing period yet",
        )
    sub = live.subscription
    key = (sub.stripe_subscription_id, event.feature)
    if key in rules:
        rule = rules[key]
    else:
        rule = rules[key] = allowance(sub, live.plan, event.feature) if live.plan else None
    if rule is None:
        return _rejected(event.id, Reason.UNKNOWN_FEATURE)
    if event.ts is None:
        event.ts = window.now
        period = window.place_now()
    else:
        period = window.place(event.ts)
    if isinstance(period, str):
        return _rejected(event.id, Reason(period))
    slot = (key[0], key[1], id(period))
    counter = slots.get(slot)
    if counter is None:
        cid = counter_id(sub.stripe_subscription_id, period.start, event.feature)
        counter = counters.get(cid)
        if counter is None:
            counter = counters[cid] = _Counter(cid, live, event.feature, period, rule)
        slots[slot] = counter
    event.counter = counter
    return None


def _decide(
    valid: list[_Event], counters: Iterable[_Counter], stored: set[tuple[str, str]]
) -> None:
    """Which events to insert, in input order: the first of an id counts (later ones are
    duplicates of it, and ids in ``stored`` are duplicates of an earlier batch); a capped
    counter takes events while they fit."""
    for each in counters:
        each.running = each.used
    taken: dict[tuple[str, str], _Event] = {}
    for event in valid:
        key = (event.org, event.id)
        first = taken.get(key)
        if first is not None:
            event.state, event.first = _DUP_IN_BATCH, first
            continue
        if key in stored:
            event.state = _DUP_STORED
            continue
        counter = event.counter
        if counter is None:
            raise InvariantError(f"usage event {event.id!r} was accepted without a counter")
        if not counter.fits(counter.running, event.qty):
            event.state = _OVER
            continue
        counter.running += event.qty
        event.state = _ACCEPT
        taken[key] = event


async def _stored_ids(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Of the (organization, id) pairs, those the store holds, with the batch that wrote each."""
    by_org: dict[str, list[str]] = {}
    for org, event_id in keys:
        by_org.setdefault(org, []).append(event_id)
    if not by_org:
        return {}
    clauses = [{"organization_id": o, "event_id": {"$in": ids}} for o, ids in by_org.items()]
    query = clauses[0] if len(clauses) == 1 else {"$or": clauses}
    rows = (
        await UsageEvent.get_motor_collection()
        .find(query, {"organization_id": 1, "event_id": 1, "batch": 1})
        .to_list(None)
    )
    return {(r["organization_id"], r["event_id"]): r["batch"] for r in rows}


async def _read_counters(counters: dict[str, _Counter]) -> None:
    rows = (
        await UsageCounter.get_motor_collection()
        .find({"_id": {"$in": list(counters)}}, {"used": 1})
        .to_list(None)
    )
    for row in rows:
        counter = counters[row["_id"]]
        counter.exists = True
        counter.used = int(row.get("used") or 0)


async def _ensure_counter(counter: _Counter, now: datetime) -> None:
    """Create the counter if no one has (a concurrent creator's insert wins, same content)."""
    sub = counter.live.subscription
    fields = {
        "organization_id": sub.organization_id,
        "stripe_subscription_id": sub.stripe_subscription_id,
        "stripe_customer_id": sub.stripe_customer_id,
        "feature": counter.feature,
        "period_start": counter.period.start,
        "period_end": counter.period.end,
        # 64-bit from the start: ``$inc`` keeps a 32-bit field 32-bit on some servers (the
        # wire test server wraps past 2**31 instead of widening as MongoDB does).
        "used": Int64(0),
        "marks": {},
        "reported": 0,
        "inflight": None,
        "report_due": False,
        "report_failures": 0,
        "report_retry_at": None,
        "last_report_error": None,
        "updated_at": now,
    }
    # Two upserts may race and MongoDB let one insert: the other's error means it exists.
    with contextlib.suppress(DuplicateKeyError):
        await UsageCounter.get_motor_collection().update_one(
            {"_id": counter.id}, {"$setOnInsert": fields}, upsert=True
        )


async def _insert(events: list[_Event], batch: str, now: datetime) -> None:
    """Step 2: store the accepted events; those whose id is taken become duplicates."""
    docs: list[dict[str, Any]] = []
    for event in events:
        counter = event.counter
        if counter is None:
            raise InvariantError(f"usage event {event.id!r} was accepted without a counter")
        event.doc_id = ObjectId()
        docs.append(
            {
                "_id": event.doc_id,
                "organization_id": event.org,
                "event_id": event.id,
                "feature": event.feature,
                "quantity": event.qty,
                "timestamp": event.ts,
                "stripe_subscription_id": counter.live.subscription.stripe_subscription_id,
                "counter_id": counter.id,
                "batch": batch,
                "counted": False,
                "received_at": now,
            }
        )
    pending = list(range(len(docs)))
    collection = UsageEvent.get_motor_collection()
    for _ in range(_INSERT_ATTEMPTS):
        try:
            await collection.insert_many([docs[i] for i in pending], ordered=False)
            return
        except BulkWriteError as exc:
            # MongoDB and mongomock insert every other document and list the refused ones.
            errors = exc.details.get("writeErrors") or []
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            for error in errors:
                events[pending[error["index"]]].state = _DUP_STORED
            return
        except DuplicateKeyError:
            # A store that refuses the whole command (the wire test server) says neither
            # which id nor whether the rest went in: ask it what it holds.
            held = await _stored_ids((events[i].org, events[i].id) for i in pending)
            left = []
            for i in pending:
                owner = held.get((events[i].org, events[i].id))
                if owner is None:
                    left.append(i)
                elif owner != batch:
                    events[i].state = _DUP_STORED
            if not left:
                return
            pending = left
    raise ServiceUnavailable("usage events could not be stored; retry the batch")


class _SettledMarks:
    """Batches of a counter this process has settled quickly (no completer can have seen
    them): their marks are unset in the next update of that counter (no extra round trip),
    keeping ``marks`` to batches in flight. Bounded; what it forgets ``trim_marks`` removes
    later."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._by_counter: dict[str, list[str]] = {}

    def take(self, cid: str) -> list[str]:
        return self._by_counter.pop(cid, [])

    def add(self, cid: str, batch: str) -> None:
        if cid not in self._by_counter and len(self._by_counter) >= self.LIMIT:
            self._by_counter.pop(next(iter(self._by_counter)))
        self._by_counter.setdefault(cid, []).append(batch)


_settled = _SettledMarks()


async def _count(counter: _Counter, batch: str, events: list[_Event], used: int) -> list[_Event]:
    """Step 3 for one counter: add ``events`` once. A capped counter takes only what fits its
    ``used`` (as last read) and re-decides on a lost race. Returns the events refused (and
    deleted) because they did not fit. The caller settles (step 4) what is left."""
    collection = UsageCounter.get_motor_collection()
    refused: list[_Event] = []
    stale = _settled.take(counter.id)
    for _ in range(_CAS_ATTEMPTS):
        if counter.rule.capped:
            fit, over = _split(counter, events, used)
            if over:
                # Deleted before the counter moves: a crash now leaves only events that fit.
                await UsageEvent.get_motor_collection().delete_many(
                    {"_id": {"$in": [e.doc_id for e in over]}}
                )
                refused += over
                events = fit
        if not events:
            break
        now = utcnow()
        query: dict[str, Any] = {"_id": counter.id, f"marks.{batch}": {"$exists": False}}
        if counter.rule.capped:
            query["used"] = Int64(used)  # the stored type: some servers compare types too
        changes: dict[str, Any] = {f"marks.{batch}": now, "updated_at": now}
        if counter.rule.overage_on:
            changes["report_due"] = True  # the outbox: the reporter looks at it
        total = Int64(sum(e.qty for e in events))
        update: dict[str, Any] = {"$inc": {"used": total}, "$set": changes}
        if stale:
            update["$unset"] = {f"marks.{b}": "" for b in stale}
        result = await collection.update_one(query, update)
        if result.matched_count:
            break
        row = await collection.find_one({"_id": counter.id}, {"used": 1, f"marks.{batch}": 1})
        if row is None:
            await _ensure_counter(counter, now)
            used = 0
            continue
        if batch in (row.get("marks") or {}):
            # Completed meanwhile (by ``complete_pending_batches``): it counted what is still
            # stored and deleted what did not fit.
            kept = (
                await UsageEvent.get_motor_collection()
                .find({"_id": {"$in": [e.doc_id for e in events]}}, {"_id": 1})
                .to_list(None)
            )
            ids = {r["_id"] for r in kept}
            refused += [e for e in events if e.doc_id not in ids]
            break
        used = int(row.get("used") or 0)
    else:
        raise ServiceUnavailable("the usage counter is busy; retry the batch")
    return refused


def _split(counter: _Counter, events: list[_Event], used: int) -> tuple[list[_Event], list[_Event]]:
    """The events that fit ``counter`` from ``used`` on, in order, and the rest."""
    fit: list[_Event] = []
    over: list[_Event] = []
    running = used
    for event in events:
        if counter.fits(running, event.qty):
            running += event.qty
            fit.append(event)
        else:
            over.append(event)
    return fit, over


async def record_usage(
    raw_events: Sequence[Mapping[str, Any]], *, grace_seconds: int = 3600
) -> BatchResult:
    """Record a batch (see the module docstring); the answer is in input order. Callers
    check who may report for which organization, and the batch's size and shape."""
    results: list[EventResult | None] = [None] * len(raw_events)
    parsed: list[_Event] = []
    for index, raw in enumerate(raw_events):
        got = _parse(index, raw)
        if isinstance(got, EventResult):
            results[index] = got
        else:
            parsed.append(got)
    lives = await _live_subscriptions({e.org for e in parsed}, grace_seconds)
    counters: dict[str, _Counter] = {}
    rules: dict[tuple[str, str], Allowance | None] = {}
    slots: _Slots = {}
    valid: list[_Event] = []
    for event in parsed:
        live = lives[event.org]
        problem = (
            _rejected(event.id, live)
            if isinstance(live, Reason)
            else _place(event, live, counters, rules, slots)
        )
        if problem is None:
            valid.append(event)
        else:
            results[event.index] = problem
    if valid:
        await _write(valid, counters)
    for event in valid:
        results[event.index] = _answer(event)
    live_by_org = {org: live for org, live in lives.items() if isinstance(live, LiveSubscription)}
    return BatchResult([r for r in results if r is not None], live_by_org)


async def _write(valid: list[_Event], counters: dict[str, _Counter]) -> None:
    await _read_counters(counters)
    _decide(valid, counters.values(), set())
    over = {e.counter.id for e in valid if e.state == _OVER and e.counter is not None}
    if over:
        # At the cap: tell a retried event (a duplicate, which takes no room) from a new one.
        held = await _stored_ids((e.org, e.id) for e in valid if e.counter and e.counter.id in over)
        if held:
            _decide(valid, counters.values(), set(held))
    accepted = [e for e in valid if e.state == _ACCEPT]
    if not accepted:
        return
    now = utcnow()
    used = {e.counter.id for e in accepted if e.counter is not None}
    await asyncio.gather(
        *(_ensure_counter(counters[c], now) for c in used if not counters[c].exists)
    )
    batch = str(ObjectId())
    await _insert(accepted, batch, now)
    for event in accepted:
        if event.state == _ACCEPT and event.counter is not None:
            event.counter.inserted.append(event)
    touched = [c for c in counters.values() if c.inserted]
    outcomes = await asyncio.gather(
        *(_count(c, batch, c.inserted, c.used) for c in touched), return_exceptions=True
    )
    counted: list[_Counter] = []
    failure: BaseException | None = None
    for each, outcome in zip(touched, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failure = failure or outcome
            continue
        counted.append(each)
        for event in outcome:
            event.state = _OVER
    if counted:
        # Step 4 for every counted counter at once, by _id: one write per batch, not a scan
        # of the uncounted events per counter (a batch may touch 1,000 counters).
        ids = [e.doc_id for c in counted for e in c.inserted if e.state == _ACCEPT]
        await UsageEvent.get_motor_collection().update_many(
            {"_id": {"$in": ids}}, {"$set": {"counted": True}}
        )
        if utcnow() - now < EAGER_UNSET_WITHIN:
            for each in counted:
                _settled.add(each.id, batch)
    if failure is not None:
        raise failure  # the other counters' events are left to ``complete_pending_batches``


def _answer(event: _Event) -> EventResult:
    state = event.state
    if state == _DUP_IN_BATCH and event.first is not None and event.first.state == _OVER:
        state = _OVER  # its first event was refused after all: nothing holds this id
    if state == _ACCEPT:
        return EventResult(event.id, ACCEPTED)
    if state == _DUP_STORED:
        return EventResult(event.id, DUPLICATE, message=_DUPLICATE_STORED)
    if state == _DUP_IN_BATCH:
        return EventResult(event.id, DUPLICATE, message=_DUPLICATE_IN_BATCH)
    return _rejected(event.id, Reason.QUOTA_EXCEEDED)


# --- background completion ---------------------------------------------------------------


def _period_of(sub: Subscription, start: datetime) -> Period:
    """The period starting at ``start`` (a counter's), from the subscription's own periods."""
    window = Window.of(sub, utcnow(), 0)
    if window is not None:
        for period in window.periods:
            if period.start == start:
                return period
    step = 12 if sub.interval is BillingInterval.YEAR else 1
    return Period(start, shift_months(start, step, start.day))


async def complete_pending_batches(
    *, older_than: timedelta = PENDING_AFTER, limit: int = 200
) -> int:
    """Finish the writes that stopped between inserting their events and settling them
    (steps 3 and 4, once per (batch, counter)); returns how many were completed. At most
    ``limit`` (batch, counter) pairs per call, oldest first."""
    done = 0
    subs: dict[str, Subscription | None] = {}
    plans: dict[str, SubscriptionPlan | None] = {}
    for batch, cid in await _pending_groups(older_than, limit):
        if await _complete_batch(batch, cid, subs, plans):
            done += 1
    return done


async def _pending_groups(older_than: timedelta, limit: int) -> list[tuple[str, str]]:
    """The (batch, counter id) pairs with events uncounted for ``older_than``, oldest first, at
    most ``limit``."""
    cutoff = utcnow() - older_than
    rows = (
        await UsageEvent.get_motor_collection()
        .find({"counted": False, "received_at": {"$lte": cutoff}}, {"batch": 1, "counter_id": 1})
        .sort("received_at", 1)
        .limit(50 * limit)
        .to_list(None)
    )
    return list(dict.fromkeys((r["batch"], r["counter_id"]) for r in rows))[:limit]


async def _complete_batch(
    batch: str,
    cid: str,
    subs: dict[str, Subscription | None],
    plans: dict[str, SubscriptionPlan | None],
) -> bool:
    """Count one (batch, counter)'s uncounted events and mark them counted; ``False`` when there
    was nothing to complete (done meanwhile, a malformed counter id) or the counter stayed busy.
    ``subs`` and ``plans`` cache lookups across the pass."""
    events = UsageEvent.get_motor_collection()
    projection = {"organization_id": 1, "event_id": 1, "feature": 1, "quantity": 1}
    found = (
        await events.find(
            {"counted": False, "batch": batch, "counter_id": cid},
            {**projection, "stripe_subscription_id": 1},
        )
        .sort("_id", 1)
        .to_list(None)
    )
    if not found:
        return False  # completed meanwhile
    try:
        counter = await _pending_counter(cid, found[0], subs, plans)
    except (ValueError, IndexError):
        log.error("usage events with a malformed counter id batch=%s counter=%s", batch, cid)
        return False
    pending = [_pending_event(row, counter) for row in found]
    held = await UsageCounter.get_motor_collection().find_one({"_id": cid}, {"used": 1})
    if held is None:
        await _ensure_counter(counter, utcnow())
    try:
        refused = await _count(counter, batch, pending, int((held or {}).get("used") or 0))
    except ServiceUnavailable:
        return False  # the counter stayed busy: the next pass takes the batch again
    # Settled, but its mark is left to ``trim_marks``: another completer may have read the
    # same events and be about to count them.
    await events.update_many(
        {"counted": False, "batch": batch, "counter_id": cid}, {"$set": {"counted": True}}
    )
    log.warning(
        "usage batch completed batch=%s counter=%s events=%d refused=%d",
        batch,
        cid,
        len(pending),
        len(refused),
    )
    return True


def _pending_event(row: Mapping[str, Any], counter: _Counter) -> _Event:
    """An uncounted stored event, as the write path's event on ``counter``."""
    event = _Event(0, row["event_id"], row["organization_id"], row["feature"], 0)
    event.qty = int(row["quantity"])
    event.doc_id = row["_id"]
    event.counter = counter
    return event


async def _pending_counter(
    cid: str,
    row: Mapping[str, Any],
    subs: dict[str, Subscription | None],
    plans: dict[str, SubscriptionPlan | None],
) -> _Counter:
    """The counter of an uncounted event, judged by its subscription as it is now."""
    sid = str(row["stripe_subscription_id"])
    start = datetime.fromtimestamp(int(cid.split(":")[1]), tz=UTC)
    feature = str(row["feature"])
    if sid not in subs:
        subs[sid] = await Subscription.find_one({"stripe_subscription_id": sid})
    sub = subs[sid]
    if sub is None:
        # Its subscription is gone: count what was accepted, uncapped.
        sub = Subscription(
            stripe_subscription_id=sid,
            organization_id=str(row["organization_id"]),
            stripe_customer_id="",
            status="canceled",
            observed_at=utcnow(),
        )
        return _Counter(
            cid,
            LiveSubscription(sub, None, None),
            feature,
            _period_of(sub, start),
            Allowance(included=None, overage_on=False),
        )
    uid = sub.plan_uid or ""
    if uid not in plans:
        plans[uid] = await plan_cache.plan(uid)
    plan = plans[uid]
    rule = (allowance(sub, plan, feature) if plan else None) or Allowance(None, False)
    return _Counter(cid, LiveSubscription(sub, plan, None), feature, _period_of(sub, start), rule)


async def trim_marks(*, older_than: timedelta = MARK_TTL, limit: int = 1000) -> int:
    """Drop counters' marks older than ``older_than`` whose batch is settled (a mark only
    guards a batch until then); returns how many were dropped. Looks at ``limit`` counters
    holding marks per call."""
    counters = UsageCounter.get_motor_collection()
    cutoff = utcnow() - older_than
    old: dict[str, list[str]] = {}
    rows = await counters.find({"marks": {"$ne": {}}}, {"marks": 1}).limit(limit).to_list(None)
    for row in rows:
        marks = row.get("marks") or {}
        batches = [
            b for b, at in marks.items() if isinstance(at, datetime) and as_utc(at) <= cutoff
        ]
        if batches:
            old[row["_id"]] = batches
    if not old:
        return 0
    every = sorted({b for batches in old.values() for b in batches})
    unsettled = {
        r["batch"]
        for r in await UsageEvent.get_motor_collection()
        .find({"counted": False, "batch": {"$in": every}}, {"batch": 1})
        .to_list(None)
    }
    dropped = 0
    for cid, batches in old.items():
        settled = [b for b in batches if b not in unsettled]
        if settled:
            await counters.update_one({"_id": cid}, {"$unset": {f"marks.{b}": "" for b in settled}})
            dropped += len(settled)
    return dropped
