"""Replaying stored events: the admin mutation and ``revenue-engine events replay`` use this.

A replay re-dispatches the payload Stripe signed (kept on the ledger row) through the same
``dispatch.process`` as a delivery. It takes the claim like a delivery does, so it never runs
beside a delivery that is still working on the event (that answers ``busy``), and it may take
finished rows. Handlers are idempotent and order-proof, so replaying a processed event is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from revenue_engine.documents import WebhookEvent, WebhookEventStatus
from revenue_engine.errors import NotFound
from revenue_engine.webhooks import dispatch, ledger
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.dispatch import Outcome
from revenue_engine.webhooks.errors import MalformedEvent, describe
from revenue_engine.webhooks.event import parse_event


async def replay_event(event_id: str, context: HandlerContext) -> tuple[Outcome, WebhookEvent]:
    """Re-dispatch one stored event; ``NotFound`` when the ledger has no such id."""
    claim = await ledger.take(event_id, replay=True)
    if claim is None:
        raise NotFound("webhook event", event_id)
    outcome = Outcome.BUSY
    if claim.owned:
        row = await ledger.get_event(event_id)
        if row is None:  # removed meanwhile
            raise NotFound("webhook event", event_id)
        try:
            event = parse_event(row.payload)
        except MalformedEvent as exc:
            # A row stored before today's envelope rules may break them: it can never apply,
            # so the replay fails it (with the reason) instead of crashing.
            await ledger.finish(claim, WebhookEventStatus.FAILED, describe(exc))
            outcome = Outcome.FAILED
        else:
            outcome = await dispatch.process(event, claim, context)
    row = await ledger.get_event(event_id)
    if row is None:
        raise NotFound("webhook event", event_id)
    return outcome, row


@dataclass(slots=True)
class ReplayProgress:
    """Running totals of a batch replay (what the CLI prints)."""

    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return f"{self.done}/{self.total} replayed ({self.rate:.1f}/s) {counts}".rstrip()


async def replay_many(
    event_ids: Sequence[str],
    context: HandlerContext,
    *,
    report: Callable[[ReplayProgress], None] | None = None,
    every: int = 1,
) -> ReplayProgress:
    """Replay ``event_ids`` in order, calling ``report`` every ``every`` events and at the end.

    Safe to interrupt and run again: a processed event drops out of ``--failed`` and replaying
    it anyway is a no-op for idempotent handlers.
    """
    progress = ReplayProgress(total=len(event_ids))
    for event_id in event_ids:
        try:
            outcome, _ = await replay_event(event_id, context)
            key = outcome.value
        except NotFound:
            key = "not_found"
        progress.outcomes[key] = progress.outcomes.get(key, 0) + 1
        progress.done += 1
        if report is not None and (progress.done % every == 0 or progress.done == progress.total):
            report(progress)
    return progress
