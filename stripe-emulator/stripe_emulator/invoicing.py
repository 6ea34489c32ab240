"""Invoices: building, finalizing, collecting payment, voiding.

An invoice is created ``draft`` (``invoice.created``), finalized to ``open`` (``invoice.finalized``;
it gets a number, a hosted page and a PDF link), then collected through one PaymentIntent per
invoice (linked by an ``invoice_payment``). A successful charge marks it ``paid``
(``invoice.paid`` + ``invoice.payment_succeeded``) and reactivates the subscription it bills; a
decline emits ``invoice.payment_failed`` and leaves it ``open`` for the dunning schedule in
:mod:`billing`. Zero-amount invoices are paid on finalization, as on Stripe.

Invoices link to their subscription the current-API way: ``parent.subscription_details``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_emulator.discounts import apply_to_invoice, recompute_totals
from stripe_emulator.errors import StripeError, card_error, invalid_request
from stripe_emulator.events import emit, emit_update
from stripe_emulator.ids import new_id
from stripe_emulator.resources.payment_intents import confirm_intent, create_intent
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.upper()}"


def new_invoice(
    ctx: Ctx,
    *,
    customer_id: str,
    subscription: JSON | None,
    billing_reason: str,
    period_start: int,
    period_end: int,
    currency: str,
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> JSON:
    """A draft invoice (lines are added with :func:`add_line`; emit via :func:`announce`)."""
    customer = ctx.store.require("customer", customer_id, param="customer")
    now = ctx.state.now_for_customer(customer_id)
    inv_id = new_id("in_")
    parent: JSON | None = None
    if subscription is not None:
        parent = {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        }
    inv: JSON = {
        "id": inv_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": ctx.state.config.account_name,
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": collection_method,
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": customer_id,
        "customer_account": None,
        "customer_address": None,
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "due_date": now + days_until_due * 86400 if days_until_due is not None else None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/invoices/{inv_id}/lines",
        },
        "livemode": False,
        "metadata": dict(metadata or {}),
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period_end,
        "period_start": period_start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": customer["test_clock"],
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }
    ctx.store.put(inv)
    return inv


def add_line(
    inv: JSON,
    *,
    amount: int,
    description: str,
    quantity: int,
    price: JSON | None,
    period: tuple[int, int],
    proration: bool,
    subscription: str | None,
    subscription_item: str | None = None,
    invoice_item: str | None = None,
) -> JSON:
    """Append a line (``line_item``) to a draft invoice and recompute its totals."""
    proration_details: JSON = {"credited_items": None}
    if invoice_item is not None:
        parent: JSON = {
            "invoice_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": proration_details,
                "subscription": subscription,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    else:
        parent = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": proration_details,
                "subscription": subscription,
                "subscription_item": subscription_item,
            },
            "type": "subscription_item_details",
        }
    line: JSON = {
        "id": new_id("il_"),
        "object": "line_item",
        "amount": amount,
        "currency": inv["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": inv["id"],
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": (
                {"price": price["id"], "product": price["product"]} if price is not None else None
            ),
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"] if price is not None else None,
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": subscription,
        "subtotal": amount,
        "taxes": [],
    }
    inv["lines"]["data"].append(line)
    recompute_totals(inv)
    return line


def announce(ctx: Ctx, inv: JSON) -> None:
    """The draft is complete: its subscription's discounts are applied (see :mod:`discounts`)
    and ``invoice.created`` is emitted."""
    apply_to_invoice(ctx, inv, subscription_of(ctx, inv))
    emit(ctx, "invoice.created", inv)


def finalize(ctx: Ctx, inv: JSON) -> None:
    """Draft → open: number, hosted page, customer balance applied; $0 invoices are paid now."""
    if inv["status"] != "draft":
        raise invalid_request(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            code="invoice_not_editable",
        )
    customer = ctx.store.require("customer", inv["customer"], param="customer")
    now = ctx.state.now_for_customer(inv["customer"])
    starting = int(customer["balance"])
    due = int(inv["total"]) + starting
    customer_before = snapshot(customer)
    customer["balance"] = min(0, due)
    sequence = int(customer["next_invoice_sequence"])
    customer["next_invoice_sequence"] = sequence + 1
    inv.update(
        status="open",
        number=f"{customer['invoice_prefix']}-{sequence:04d}",
        effective_at=now,
        starting_balance=starting,
        ending_balance=customer["balance"],
        amount_due=max(0, due),
        amount_remaining=max(0, due),
        hosted_invoice_url=ctx.url(f"/invoices/{inv['id']}"),
        invoice_pdf=ctx.url(f"/invoices/{inv['id']}/pdf"),
        webhooks_delivered_at=now,
    )
    inv["status_transitions"]["finalized_at"] = now
    if inv["collection_method"] == "send_invoice" and inv["due_date"] is None:
        inv["due_date"] = now + 30 * 86400
    if customer["balance"] != starting:
        emit_update(ctx, "customer.updated", customer, customer_before)
    emit(ctx, "invoice.finalized", inv)
    if inv["amount_due"] == 0:
        mark_paid(ctx, inv, None)


def invoice_intent(ctx: Ctx, inv: JSON) -> JSON:
    """The invoice's PaymentIntent (created on first need) and its ``invoice_payment`` link."""
    private = ctx.store.priv(inv["id"])
    pi_id = private.get("payment_intent")
    if pi_id is not None:
        pi = ctx.store.require("payment_intent", pi_id)
        if pi["amount"] != inv["amount_remaining"] and pi["status"] != "succeeded":
            pi["amount"] = inv["amount_remaining"]
        return pi
    reason = inv["billing_reason"]
    pi = create_intent(
        ctx,
        amount=inv["amount_remaining"],
        currency=inv["currency"],
        customer=inv["customer"],
        description="Subscription creation"
        if reason == "subscription_create"
        else "Subscription update",
    )
    private["payment_intent"] = pi["id"]
    ctx.store.priv(pi["id"])["invoice"] = inv["id"]
    payment: JSON = {
        "id": new_id("inpay_"),
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": inv["amount_remaining"],
        "created": pi["created"],
        "currency": inv["currency"],
        "invoice": inv["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }
    ctx.store.put(payment)
    private["invoice_payment"] = payment["id"]
    return pi


def default_payment_method(ctx: Ctx, inv: JSON) -> JSON | None:
    """Invoice → subscription → customer default (its default payment method, then its
    default source), the order Stripe uses."""
    candidates: list[Any] = [inv.get("default_payment_method")]
    sub = subscription_of(ctx, inv)
    if sub is not None:
        candidates.append(sub.get("default_payment_method"))
    customer = ctx.store.get("customer", inv["customer"])
    if customer is not None:
        candidates.append(customer["invoice_settings"]["default_payment_method"])
        candidates.append(customer.get("default_source"))
    for pm_id in candidates:
        if isinstance(pm_id, str):
            pm = ctx.store.get("payment_method", pm_id)
            if pm is not None:
                return pm
    return None


def subscription_of(ctx: Ctx, inv: JSON) -> JSON | None:
    parent = inv.get("parent") or {}
    details = parent.get("subscription_details") or {}
    sub_id = details.get("subscription")
    return ctx.store.get("subscription", sub_id) if isinstance(sub_id, str) else None


def attempt_payment(
    ctx: Ctx,
    inv: JSON,
    payment_method: JSON | None = None,
    *,
    on_failure: Callable[[JSON], None] | None = None,
) -> StripeError | None:
    """Charge an open invoice; returns the error on failure (after recording the attempt).

    ``on_failure`` runs before ``invoice.payment_failed`` is emitted, so the event carries what
    it decides (the dunning schedule's ``next_payment_attempt``).
    """
    pm = payment_method or default_payment_method(ctx, inv)
    inv["attempted"] = True
    inv["attempt_count"] = int(inv["attempt_count"]) + 1
    failure: StripeError | None
    if pm is None:
        failure = invalid_request(
            "This customer has no attached payment source or default payment method. Please "
            "consider adding a default payment method.",
            code="resource_missing",
        )
    else:
        pi = invoice_intent(ctx, inv)
        failure = confirm_intent(ctx, pi, pm)
        if failure is None:
            # A bank debit is only started: the invoice stays open while its PaymentIntent is
            # processing (Stripe: "the invoice status would be open and the PaymentIntent
            # status would be processing") until the debit settles (see settlement).
            if pi["status"] == "succeeded":
                mark_paid(ctx, inv, pi)
                return None
            if pi["status"] != "requires_action":
                return None
            # Off-session 3D Secure (a renewal): Stripe reports the attempt as failed
            # (invoice.payment_failed, the PaymentIntent requires_action) and asks for the
            # customer with invoice.payment_action_required; the invoice stays open.
            failure = card_error(
                "authentication_required",
                "Your card was declined. This transaction requires authentication.",
                decline_code="authentication_required",
            )
            if on_failure is not None:
                on_failure(inv)
            emit(ctx, "invoice.payment_failed", inv)
            emit(ctx, "invoice.payment_action_required", inv)
            return failure
    if on_failure is not None:
        on_failure(inv)
    emit(ctx, "invoice.payment_failed", inv)
    return failure


def mark_paid(ctx: Ctx, inv: JSON, pi: JSON | None) -> None:
    now = ctx.state.now_for_customer(inv["customer"])
    inv.update(
        status="paid",
        amount_paid=inv["amount_due"],
        amount_remaining=0,
        next_payment_attempt=None,
        attempted=True,
    )
    inv["status_transitions"]["paid_at"] = now
    payment_id = ctx.store.priv(inv["id"]).get("invoice_payment")
    payment = ctx.store.get("invoice_payment", payment_id) if payment_id else None
    if payment is not None and pi is not None:
        payment.update(status="paid", amount_paid=pi["amount"])
        payment["status_transitions"]["paid_at"] = now
    emit(ctx, "invoice.paid", inv)
    emit(ctx, "invoice.payment_succeeded", inv)
    if payment is not None and payment["status"] == "paid":
        emit(ctx, "invoice_payment.paid", payment)
    sub = subscription_of(ctx, inv)
    if sub is not None and sub["status"] in ("incomplete", "past_due", "unpaid"):
        still_open = [
            other
            for other in ctx.store.all("invoice")
            if other["status"] == "open" and subscription_of(ctx, other) is sub
        ]
        if not still_open:
            before = snapshot(sub)
            sub["status"] = "active"
            emit_update(ctx, "customer.subscription.updated", sub, before)


def on_intent_succeeded(ctx: Ctx, pi: JSON) -> None:
    """A PaymentIntent confirmed directly (e.g. by Stripe.js) pays the invoice it belongs to."""
    inv_id = ctx.store.priv(pi["id"]).get("invoice")
    inv = ctx.store.get("invoice", inv_id) if inv_id else None
    if inv is not None and inv["status"] == "open" and pi["status"] == "succeeded":
        mark_paid(ctx, inv, pi)


def void(ctx: Ctx, inv: JSON) -> None:
    if inv["status"] not in ("open", "uncollectible"):
        raise invalid_request(
            f"You can only void open or uncollectible invoices; this one is {inv['status']}.",
            code="invoice_not_editable",
        )
    inv.update(status="void", next_payment_attempt=None, amount_remaining=0)
    inv["status_transitions"]["voided_at"] = ctx.state.now_for_customer(inv["customer"])
    _cancel_intent(ctx, inv)
    emit(ctx, "invoice.voided", inv)


def mark_uncollectible(ctx: Ctx, inv: JSON) -> None:
    if inv["status"] != "open":
        raise invalid_request(
            f"You can only mark open invoices uncollectible; this one is {inv['status']}.",
            code="invoice_not_editable",
        )
    inv.update(status="uncollectible", next_payment_attempt=None)
    inv["status_transitions"]["marked_uncollectible_at"] = ctx.state.now_for_customer(
        inv["customer"]
    )
    emit(ctx, "invoice.marked_uncollectible", inv)


def _cancel_intent(ctx: Ctx, inv: JSON) -> None:
    pi_id = ctx.store.priv(inv["id"]).get("payment_intent")
    pi = ctx.store.get("payment_intent", pi_id) if pi_id else None
    if pi is not None and pi["status"] in (
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ):
        pi.update(status="canceled", canceled_at=ctx.state.now_for_customer(inv["customer"]))
        pi["cancellation_reason"] = "void_invoice"
        emit(ctx, "payment_intent.canceled", pi)
