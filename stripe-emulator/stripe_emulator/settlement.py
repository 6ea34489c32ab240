"""Delayed-notification payments settling: what the bank's answer to a debit changes.

A bank debit (ACH Direct Debit) leaves its PaymentIntent ``processing`` and its invoice
``open``; a subscription started that way stays ``incomplete`` meanwhile (Stripe:
"Subscriptions can also be incomplete if there's a pending payment. In that case, the invoice
status would be open and the PaymentIntent status would be processing."), and a Checkout
Session completed with it is ``complete`` with ``payment_status: "unpaid"``. It settles when a
test clock passes the debit's settlement time (4 days, Stripe's "up to 4 business days") or on
``POST /_emulator/payment_intents/{id}/settle``:

* success — ``charge.succeeded``, ``payment_intent.succeeded``, the invoice paid
  (``invoice.paid``, ``invoice.payment_succeeded``, ``invoice_payment.paid``), the subscription
  ``active`` (``customer.subscription.updated``), then the session ``paid`` with
  ``checkout.session.async_payment_succeeded``;
* failure — ``charge.failed``, ``payment_intent.payment_failed``, ``invoice.payment_failed``
  (the invoice stays open), then ``checkout.session.async_payment_failed`` (still ``unpaid``).
  A first invoice's subscription stays ``incomplete`` and expires (``incomplete_expired``, the
  invoice voided) 23 hours after it was created — at once if that time has passed; a renewal's
  goes ``past_due`` and follows the dunning schedule, as a declined card's would.
"""

from __future__ import annotations

from stripe_emulator.billing import dun, expire_incomplete, schedule_retry
from stripe_emulator.events import emit
from stripe_emulator.invoicing import mark_paid, subscription_of
from stripe_emulator.resources.payment_intents import settle_debit
from stripe_emulator.resources.payment_methods import bank_of
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON


def settles_at(ctx: Ctx, pi: JSON) -> int | None:
    """When a processing debit settles on its own (on a test clock), or None."""
    if pi["status"] != "processing" or not pi["payment_method"]:
        return None
    pm = ctx.store.get("payment_method", pi["payment_method"])
    bank = bank_of(ctx, pm) if pm is not None else None
    since = ctx.store.priv(pi["id"]).get("processing_since")
    if bank is None or since is None:
        return None
    return int(since) + bank.settle_seconds


def first_payment_processing(ctx: Ctx, sub: JSON) -> bool:
    """An incomplete subscription whose first invoice is being debited does not expire."""
    inv = ctx.store.get("invoice", sub["latest_invoice"] or "")
    pi_id = ctx.store.priv(inv["id"]).get("payment_intent") if inv is not None else None
    pi = ctx.store.get("payment_intent", pi_id) if pi_id else None
    return pi is not None and pi["status"] == "processing"


def settle(ctx: Ctx, pi: JSON, succeed: bool | None = None) -> bool:
    """Settle a processing debit and apply the outcome to its invoice, subscription and
    Checkout Session. Returns whether the money arrived."""
    ok = settle_debit(ctx, pi, succeed)
    inv_id = ctx.store.priv(pi["id"]).get("invoice")
    inv = ctx.store.get("invoice", inv_id) if inv_id else None
    if inv is not None and inv["status"] == "open":
        if ok:
            mark_paid(ctx, inv, pi)
        else:
            _failed(ctx, inv)
    for session in ctx.store.all("checkout.session"):
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            continue
        if session["payment_intent"] != pi["id"] and (
            inv is None or session["invoice"] != inv["id"]
        ):
            continue
        if ok:
            session["payment_status"] = "paid"
            emit(ctx, "checkout.session.async_payment_succeeded", session)
        else:
            emit(ctx, "checkout.session.async_payment_failed", session)
    return ok


def _failed(ctx: Ctx, inv: JSON) -> None:
    sub = subscription_of(ctx, inv)
    if sub is None:
        emit(ctx, "invoice.payment_failed", inv)
        return
    if sub["status"] == "incomplete":
        emit(ctx, "invoice.payment_failed", inv)
        expires = int(sub["created"]) + ctx.state.config.incomplete_expiry
        if ctx.state.now_for(sub) >= expires:
            expire_incomplete(ctx, sub)
        return
    schedule_retry(ctx, sub, inv)
    emit(ctx, "invoice.payment_failed", inv)
    dun(ctx, sub, inv)
