"""Backfill: fetch events Stripe could not deliver (Events API, 30 days) and run them through
the same ledger and dispatch as a delivery. Idempotent with the ledger: an event already
recorded is a duplicate and changes nothing (except a row parked only for its age, which a
delivery takes again), so a run can be interrupted and simply re-run."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from revenue_engine.gateway.models.catalog import StripeEventListing
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.dispatch import ENDPOINT_EVENT_TYPES, deliver
from revenue_engine.webhooks.errors import MalformedEvent
from revenue_engine.webhooks.event import parse_event

log = logging.getLogger(__name__)

#: Stripe accepts at most 20 ``types[]`` per list request.
TYPES_PER_REQUEST = 20

#: Progress is reported after this many events or this many seconds, whichever comes first.
REPORT_EVERY_EVENTS = 10
REPORT_EVERY_SECONDS = 1.0


@dataclass
class BackfillProgress:
    done: int = 0
    #: How many events Stripe listed (known once listing is over, before processing starts).
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return f"{self.done}/{self.total} events ({rate:.1f}/s) {counts}".rstrip()


async def backfill(
    context: HandlerContext,
    *,
    since: int,
    only_undelivered: bool = True,
    report: Callable[[BackfillProgress], None] | None = None,
) -> BackfillProgress:
    """Process every handled event created at or after ``since`` (unix time) that Stripe lists
    (only those with ``delivery_success=false`` unless ``only_undelivered`` is off), oldest
    first so the ledger sees them in Stripe's order."""
    progress = BackfillProgress()
    types = list(ENDPOINT_EVENT_TYPES)
    events: dict[str, StripeEventListing] = {}
    for start in range(0, len(types), TYPES_PER_REQUEST):
        batch = types[start : start + TYPES_PER_REQUEST]
        cursor: str | None = None
        while True:
            page, more = await context.gateway.list_events(
                created_gte=since,
                types=batch,
                delivery_success=False if only_undelivered else None,
                starting_after=cursor,
            )
            for listed in page:
                events[listed.id] = listed
            if not more or not page:
                break
            cursor = page[-1].id
    progress.total = len(events)
    reported = time.monotonic()
    for listed in sorted(events.values(), key=_order):
        text = listed.envelope
        try:
            event = parse_event(text)
        except MalformedEvent as exc:
            # Counted and skipped, as the webhook route would refuse it: one bad listing must
            # not stop the run.
            log.warning("backfill skipped a malformed event error=%s", exc)
            progress.outcomes["malformed"] += 1
        else:
            outcome = await deliver(event, text, context)
            progress.outcomes[outcome.value] += 1
        progress.done += 1
        now = time.monotonic()
        due = progress.done % REPORT_EVERY_EVENTS == 0 or now - reported >= REPORT_EVERY_SECONDS
        if report and due and progress.done < progress.total:
            report(progress)
            reported = now
    if report:
        report(progress)
    return progress


def _order(listed: StripeEventListing) -> tuple[int, str]:
    """Stripe's order (created, then id); a listing without an integer ``created`` goes first
    and is refused by ``parse_event``."""
    return (-1 if listed.created is None else listed.created, listed.id)
