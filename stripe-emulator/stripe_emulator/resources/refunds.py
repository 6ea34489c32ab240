"""Refunds.

Routes: ``POST /v1/refunds`` (``payment_intent`` or ``charge``, optional ``amount``),
``GET|POST /v1/refunds/{id}``, ``GET /v1/refunds``. Refunds succeed at once; partial refunds add
up on the charge (``amount_refunded``, ``refunded`` when whole) and can never exceed what was
captured. Emits ``refund.created`` and ``charge.refunded``.
"""

from __future__ import annotations

from stripe_emulator.errors import invalid_request
from stripe_emulator.events import emit, emit_update
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import new_id
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _charge_for(ctx: Ctx, p: Params) -> JSON:
    intent_id, charge_id = p.string("payment_intent"), p.string("charge")
    if intent_id and charge_id:
        raise invalid_request(
            "You can only pass one of charge and payment_intent.", param="payment_intent"
        )
    if charge_id:
        return ctx.store.require("charge", charge_id, param="charge")
    if not intent_id:
        raise invalid_request(
            "One of the following params should be provided for this request: payment_intent or "
            "charge.",
            code="parameter_missing",
        )
    pi = ctx.store.require("payment_intent", intent_id, param="payment_intent")
    if pi["status"] != "succeeded" or pi["latest_charge"] is None:
        raise invalid_request(
            f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
            param="payment_intent",
            code="charge_not_refundable",
        )
    return ctx.store.require("charge", pi["latest_charge"], param="payment_intent")


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            "payment_intent",
            "charge",
            "amount",
            "reason",
            "metadata",
            "expand",
            "refund_application_fee",
            "reverse_transfer",
            "instructions_email",
            "origin",
        )
    )
    charge = _charge_for(ctx, p)
    if charge["status"] != "succeeded":
        raise invalid_request(
            f"Charge {charge['id']} has not been captured or has failed; it cannot be refunded.",
            code="charge_not_refundable",
        )
    remaining = int(charge["amount_captured"]) - int(charge["amount_refunded"])
    if remaining <= 0:
        raise invalid_request(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = p.integer("amount", minimum=1)
    amount = remaining if amount is None else amount
    if amount > remaining:
        raise invalid_request(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            param="amount",
            code="amount_too_large",
        )
    refund: JSON = {
        "id": new_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": ctx.state.now_for_customer(charge["customer"]),
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": merge_metadata({}, p.metadata(), replace=True),
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": p.string("reason", choices=REASONS),
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    ctx.store.put(refund)
    before = snapshot(charge)
    charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    emit(ctx, "refund.created", refund)
    emit(ctx, "charge.refunded", charge, before)
    return refund


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("refund", id, param="refund")


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("metadata", "expand"))
    refund = ctx.store.require("refund", id, param="refund")
    before = snapshot(refund)
    refund["metadata"] = merge_metadata(refund["metadata"], p.metadata(), replace=False)
    emit_update(ctx, "refund.updated", refund, before)
    return refund


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "payment_intent", "charge", "created"))
    intent, charge = p.string("payment_intent"), p.string("charge")
    created = created_filter(p)
    items = ctx.store.all(
        "refund",
        lambda r: (
            (intent is None or r["payment_intent"] == intent)
            and (charge is None or r["charge"] == charge)
            and created(r)
        ),
    )
    return paginate(items, p, "/v1/refunds")


ROUTES = [
    Route("POST", "/v1/refunds", _create),
    Route("GET", "/v1/refunds", _list),
    Route("GET", "/v1/refunds/{id}", _retrieve),
    Route("POST", "/v1/refunds/{id}", _update),
]
