"""What falls due when a test clock advances, and in which order.

:func:`next_action` finds the earliest billing action on a clock's subscriptions and invoices
up to a target time — a trial-ending notice (3 days ahead), a trial end, a scheduled
cancellation, a renewal, a payment retry, a bank debit settling, the expiry of an incomplete
subscription (not while its first payment is processing) — and
:func:`run_action` performs it through :mod:`billing`. The clock module loops over the two,
moving the clock to each action's time so everything it creates carries that time.
"""

from __future__ import annotations

from stripe_emulator.billing import (
    ENDED,
    current_period,
    end_as_scheduled,
    end_trial,
    expire_incomplete,
    renew,
    retry,
)
from stripe_emulator.events import emit
from stripe_emulator.settlement import first_payment_processing, settle, settles_at
from stripe_emulator.state import Ctx

# Tie-break order when several things fall due at the same second.
_ORDER = {
    "trial_will_end": 0,
    "cancel": 1,
    "settle": 2,
    "retry": 3,
    "trial_end": 4,
    "renew": 5,
    "expire": 6,
}


def next_action(ctx: Ctx, clock_id: str, until: int) -> tuple[int, str, str] | None:
    """The earliest scheduled billing action on a clock's objects at or before ``until``."""
    config = ctx.state.config
    candidates: list[tuple[int, int, str, str]] = []

    def add(at: int, kind: str, object_id: str) -> None:
        if at <= until:
            candidates.append((at, _ORDER[kind], kind, object_id))

    for sub in ctx.store.all("subscription"):
        if ctx.state.clock_of(sub) != clock_id or sub["status"] in ENDED:
            continue
        private = ctx.store.priv(sub["id"])
        status = sub["status"]
        if status == "trialing" and sub["trial_end"]:
            notice = int(sub["trial_end"]) - config.trial_will_end_notice
            if not private.get("trial_will_end_sent") and notice > int(sub["trial_start"]):
                add(notice, "trial_will_end", sub["id"])
            add(int(sub["trial_end"]), "trial_end", sub["id"])
        if sub["cancel_at"] is not None:
            add(int(sub["cancel_at"]), "cancel", sub["id"])
        if status in ("active", "past_due"):
            add(current_period(sub)[1], "renew", sub["id"])
        if status == "incomplete" and not first_payment_processing(ctx, sub):
            add(int(sub["created"]) + config.incomplete_expiry, "expire", sub["id"])
    for inv in ctx.store.all("invoice"):
        if (
            inv["status"] == "open"
            and inv["next_payment_attempt"] is not None
            and ctx.state.clock_of(inv) == clock_id
        ):
            add(int(inv["next_payment_attempt"]), "retry", inv["id"])
    for pi in ctx.store.all("payment_intent"):
        at = settles_at(ctx, pi)
        if at is not None and ctx.state.clock_of(pi) == clock_id:
            add(at, "settle", pi["id"])
    if not candidates:
        return None
    at, _, kind, object_id = min(candidates)
    return at, kind, object_id


def run_action(ctx: Ctx, kind: str, object_id: str) -> None:
    if kind == "retry":
        retry(ctx, ctx.store.require("invoice", object_id))
        return
    if kind == "settle":
        settle(ctx, ctx.store.require("payment_intent", object_id))
        return
    sub = ctx.store.require("subscription", object_id)
    if kind == "trial_will_end":
        ctx.store.priv(sub["id"])["trial_will_end_sent"] = True
        emit(ctx, "customer.subscription.trial_will_end", sub)
    elif kind == "cancel":
        end_as_scheduled(ctx, sub)
    elif kind == "trial_end":
        end_trial(ctx, sub)
    elif kind == "renew":
        renew(ctx, sub)
    elif kind == "expire":
        expire_incomplete(ctx, sub)
