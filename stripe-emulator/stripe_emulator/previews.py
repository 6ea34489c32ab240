"""``POST /v1/invoices/create_preview``: the invoice a subscription bills next — after a change
described in ``subscription_details``, if any — with nothing kept.

The preview is computed by the code that bills for real, so whatever that code puts on an
invoice (prorations, quantities, metered usage, discounts) shows in the preview the same way:

1. a savepoint of the whole store is taken and event listeners are muted (no webhook leaves);
2. the change is applied with the subscription update itself (``items``, ``proration_behavior``,
   ``proration_date``, ``cancel_at_period_end``, ``cancel_at``, ``trial_end``,
   ``billing_cycle_anchor=unchanged``);
3. the invoice is built as a draft (``Ctx.previews``: billing collects drafts instead of
   finalizing and charging them) — the one the change issues at once (``always_invoice``, a new
   interval), else the next one the subscription's schedule issues: the renewal at the period
   end (pending prorations included), the first paid invoice at a trial's end, or a scheduled
   cancellation's final invoice;
4. everything is rolled back: no object, event, id or webhook of the preview survives.

The answer is an invoice object (status ``draft``, no number, no hosted page, billing reason
``upcoming``) whose id starts with ``upcoming_in_`` — the current API's preview ids — and can be
neither retrieved nor paid; ``created`` is when the invoice will be issued (as on the invoices
of Stripe's ``invoice.upcoming`` events); the customer's balance is applied to ``amount_due``
as finalizing would. A subscription with nothing to bill next (ended, incomplete,
ending without metered usage) is answered as Stripe does: ``invoice_upcoming_none``.

Previewing a new subscription (``subscription_details.items`` without ``subscription``),
schedules, ad-hoc invoice items and the other parameters in ``_UNSUPPORTED`` are refused with a
400, never ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stripe_emulator import discounts
from stripe_emulator.billing import (
    current_period,
    end_as_scheduled,
    end_trial,
    renew,
)
from stripe_emulator.errors import invalid_request, unsupported
from stripe_emulator.forms import Params
from stripe_emulator.ids import new_id
from stripe_emulator.resources import subscriptions
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

PREVIEW_PREFIX = "upcoming_in_"
#: Stripe's ``create_preview`` parameters the emulator does not implement: refused with a 400.
_UNSUPPORTED = (
    "automatic_tax",
    "currency",
    "customer_account",
    "customer_details",
    "invoice_items",
    "issuer",
    "on_behalf_of",
    "schedule",
    "schedule_details",
)
#: ``subscription_details`` parameters the subscription update implements.
_DETAILS = (
    "items",
    "proration_behavior",
    "proration_date",
    "cancel_at_period_end",
    "cancel_at",
    "trial_end",
    "billing_cycle_anchor",
)
_DETAILS_UNSUPPORTED = (
    "billing_mode",
    "billing_schedules",
    "cancel_now",
    "default_tax_rates",
    "resume_at",
    "start_date",
)


@contextmanager
def _dry_run(ctx: Ctx) -> Iterator[list[JSON]]:
    """Run billing on the real state, collecting the invoices it builds, then undo it all."""
    store, state = ctx.store, ctx.state
    point = store.savepoint()
    listeners, state.listeners = state.listeners, []
    previews: list[JSON] = []
    ctx.previews = previews
    try:
        yield previews
    finally:
        ctx.previews = None
        state.listeners = listeners
        store.rollback(point)


def _next_scheduled(ctx: Ctx, sub: JSON) -> int | None:
    """Issue the subscription's next scheduled invoice (into ``ctx.previews``); return when it
    falls due, or None when nothing is scheduled to bill (as the test clock would run it)."""
    status = sub["status"]
    cancel_at = sub["cancel_at"]
    if status == "trialing" and sub["trial_end"]:
        trial_end = int(sub["trial_end"])
        if cancel_at is not None and int(cancel_at) <= trial_end:
            return None  # the trial ends the subscription: nothing is billed
        end_trial(ctx, sub)
        return trial_end
    if status not in ("active", "past_due"):
        return None
    period_end = current_period(sub)[1]
    if cancel_at is not None and int(cancel_at) <= period_end:
        end_as_scheduled(ctx, sub)  # a final invoice only for metered usage
        return int(cancel_at)
    renew(ctx, sub)
    return period_end


def _details(p: Params) -> Params | None:
    details = p.sub("subscription_details")
    if details is None:
        return None
    details.only((*_DETAILS, *_DETAILS_UNSUPPORTED))
    for name in _DETAILS_UNSUPPORTED:
        if details.has(name):
            raise unsupported(details.path(name))
    return details


def _shown(ctx: Ctx, inv: JSON, issued_at: int) -> JSON:
    """The draft as a preview: its own id, issued at ``issued_at``, the balance applied."""
    shown = snapshot(inv)
    preview_id = new_id(PREVIEW_PREFIX)
    customer = ctx.store.require("customer", inv["customer"], param="customer")
    balance = int(customer["balance"])
    due = max(0, int(shown["total"]) + balance)
    shown.update(
        id=preview_id,
        # Stripe reserves this reason for previews, whichever invoice they show.
        billing_reason="upcoming",
        created=issued_at,
        starting_balance=balance,
        amount_due=due,
        amount_remaining=due,
    )
    shown["lines"]["url"] = f"/v1/invoices/{preview_id}/lines"
    for line in shown["lines"]["data"]:
        line["invoice"] = preview_id
    return shown


def _create_preview(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            *_UNSUPPORTED,
            "customer",
            "subscription",
            "subscription_details",
            "discounts",
            "preview_mode",
            "expand",
        )
    )
    for name in _UNSUPPORTED:
        if p.has(name):
            raise unsupported(name)
    if p.string("preview_mode", choices=("next", "recurring")) == "recurring":
        raise unsupported("preview_mode", " (only `next`)")
    details = _details(p)
    sub_id = p.string("subscription")
    if sub_id is None:
        if details is not None and details.has("items"):
            raise unsupported(
                "subscription_details[items]", " without `subscription` (a new subscription)"
            )
        raise invalid_request(
            "Missing required param: subscription.", param="subscription", code="parameter_missing"
        )
    sub = ctx.store.require("subscription", sub_id, param="subscription")
    customer_id = p.string("customer")
    if customer_id is not None:
        ctx.store.require("customer", customer_id, param="customer")
        if customer_id != sub["customer"]:
            raise invalid_request(
                f"The subscription {sub_id} does not belong to customer {customer_id}.",
                param="subscription",
            )
    when = ctx.state.now_for(sub)
    with _dry_run(ctx) as built:
        if details is not None or p.has("discounts"):
            # The preview's ``discounts`` replace the subscription's, as the change would.
            data = dict(details.data) if details is not None else {}
            if p.has("discounts"):
                data["discounts"] = p.data["discounts"]
            update = Params(data, details.name if details is not None else "")
            if details is not None:
                when = details.integer("proration_date", minimum=0) or when
            subscriptions.update(ctx, update, sub_id)
        due = when
        if not built:
            # The change issues nothing at once: the next invoice is the schedule's.
            due = _next_scheduled(ctx, ctx.store.require("subscription", sub_id)) or when
        if not built:
            raise invalid_request(
                f"No upcoming invoices for customer: {sub['customer']}",
                code="invoice_upcoming_none",
                status=404,
            )
        shown = built[0]
        # The invoice takes the subscription's discounts when it is issued (as a real one
        # does when it is announced): worked out here on the draft.
        current = ctx.store.require("subscription", sub_id)
        discounts.discount_lines(ctx, shown, discounts.active_discounts(ctx, current, due))
        return _shown(ctx, shown, due)


ROUTES = [Route("POST", "/v1/invoices/create_preview", _create_preview)]
