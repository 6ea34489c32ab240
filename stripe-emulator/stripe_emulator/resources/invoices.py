"""Invoices, their lines, invoice payments and invoice items.

Routes: ``GET /v1/invoices`` (``customer``, ``subscription``, ``status``), ``GET|POST
/v1/invoices/{id}``, ``GET /v1/invoices/{id}/lines``, ``POST /v1/invoices/{id}/pay|finalize|void|
mark_uncollectible``, ``GET /v1/invoice_payments`` (``invoice``), ``GET
/v1/invoice_payments/{id}``, ``GET /v1/invoiceitems``, ``GET /v1/invoices/search``.
Invoices are created by subscriptions (see :mod:`billing`), not directly.
"""

from __future__ import annotations

from stripe_emulator.errors import invalid_request
from stripe_emulator.events import emit_update
from stripe_emulator.expand import register_includable
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.invoicing import (
    attempt_payment,
    finalize,
    mark_paid,
    mark_uncollectible,
    subscription_of,
    void,
)
from stripe_emulator.lists import PAGINATION, created_filter, list_object, paginate
from stripe_emulator.resources.payment_methods import resolve
from stripe_emulator.routing import Route
from stripe_emulator.search import search
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

STATUSES = ("draft", "open", "paid", "uncollectible", "void")


def _payments_included(ctx: Ctx, inv: JSON) -> JSON:
    payments = ctx.store.all("invoice_payment", lambda pay: pay["invoice"] == inv["id"])
    return list_object(payments, f"/v1/invoice_payments?invoice={inv['id']}")


def _confirmation_secret(ctx: Ctx, inv: JSON) -> JSON | None:
    """What Stripe.js needs to confirm an open invoice's payment (``default_incomplete``)."""
    pi_id = ctx.store.priv(inv["id"]).get("payment_intent")
    pi = ctx.store.get("payment_intent", pi_id) if pi_id else None
    if pi is None or inv["status"] != "open":
        return None
    return {"client_secret": pi["client_secret"], "type": "payment_intent"}


register_includable("invoice", "payments", _payments_included)
register_includable("invoice", "confirmation_secret", _confirmation_secret)


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("invoice", id, param="invoice")


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(
        ("metadata", "description", "footer", "auto_advance", "default_payment_method", "expand")
    )
    inv = ctx.store.require("invoice", id, param="invoice")
    before = snapshot(inv)
    editing = p.has("description") or p.has("footer") or p.has("default_payment_method")
    if editing and inv["status"] != "draft":
        raise invalid_request(
            "You can only update metadata and auto_advance on a finalized invoice.",
            code="invoice_not_editable",
        )
    for key in ("description", "footer"):
        if p.has(key):
            inv[key] = p.string(key)
    if p.has("default_payment_method"):
        ref = p.string("default_payment_method")
        inv["default_payment_method"] = (
            resolve(ctx, ref, param="default_payment_method", customer=inv["customer"])["id"]
            if ref
            else None
        )
    if p.has("auto_advance"):
        inv["auto_advance"] = p.boolean("auto_advance")
    inv["metadata"] = merge_metadata(inv["metadata"], p.metadata(), replace=False)
    emit_update(ctx, "invoice.updated", inv, before)
    return inv


def _lines(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(PAGINATION)
    inv = ctx.store.require("invoice", id, param="invoice")
    return paginate(list(inv["lines"]["data"]), p, f"/v1/invoices/{id}/lines")


def _pay(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(
        (
            "payment_method",
            "off_session",
            "paid_out_of_band",
            "forgive",
            "source",
            "expand",
            "mandate",
        )
    )
    inv = ctx.store.require("invoice", id, param="invoice")
    if inv["status"] == "draft":
        finalize(ctx, inv)
    if inv["status"] == "paid":
        raise invalid_request("Invoice is already paid", code="invoice_already_paid")
    if inv["status"] != "open":
        raise invalid_request(
            f"This invoice can no longer be paid; its status is {inv['status']}.",
            code="invoice_not_editable",
        )
    if p.boolean("paid_out_of_band", default=False):
        mark_paid(ctx, inv, None)
        return inv
    ref = p.string("payment_method")
    pm = resolve(ctx, ref, param="payment_method", customer=inv["customer"]) if ref else None
    error = attempt_payment(ctx, inv, pm)
    if error is not None:
        raise error
    return inv


def _finalize(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("auto_advance", "expand"))
    inv = ctx.store.require("invoice", id, param="invoice")
    finalize(ctx, inv)
    return inv


def _void(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    inv = ctx.store.require("invoice", id, param="invoice")
    void(ctx, inv)
    return inv


def _uncollectible(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    inv = ctx.store.require("invoice", id, param="invoice")
    mark_uncollectible(ctx, inv)
    return inv


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            *PAGINATION,
            "customer",
            "subscription",
            "status",
            "created",
            "collection_method",
            "due_date",
        )
    )
    customer, subscription = p.string("customer"), p.string("subscription")
    status = p.string("status", choices=STATUSES)
    created = created_filter(p)

    def sub_id(inv: JSON) -> str | None:
        sub = subscription_of(ctx, inv)
        return sub["id"] if sub else None

    items = ctx.store.all(
        "invoice",
        lambda inv: (
            (customer is None or inv["customer"] == customer)
            and (subscription is None or sub_id(inv) == subscription)
            and (status is None or inv["status"] == status)
            and created(inv)
        ),
    )
    return paginate(items, p, "/v1/invoices")


def _search(ctx: Ctx, p: Params) -> JSON:
    return search(ctx, p, "invoice", "/v1/invoices/search")


def _payments(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "invoice", "payment", "status"))
    invoice = p.string("invoice")
    status = p.string("status", choices=("canceled", "open", "paid"))
    items = ctx.store.all(
        "invoice_payment",
        lambda pay: (
            (invoice is None or pay["invoice"] == invoice)
            and (status is None or pay["status"] == status)
        ),
    )
    return paginate(items, p, "/v1/invoice_payments")


def _payment(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("invoice_payment", id, param="invoice_payment")


def _invoiceitems(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "customer", "invoice", "pending", "created"))
    customer, invoice = p.string("customer"), p.string("invoice")
    pending = p.boolean("pending")
    items = ctx.store.all(
        "invoiceitem",
        lambda ii: (
            (customer is None or ii["customer"] == customer)
            and (invoice is None or ii["invoice"] == invoice)
            and (pending is None or (ii["invoice"] is None) == pending)
        ),
    )
    return paginate(items, p, "/v1/invoiceitems")


def _invoiceitem(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("invoiceitem", id, param="invoiceitem")


ROUTES = [
    Route("GET", "/v1/invoices", _list),
    Route("GET", "/v1/invoices/search", _search),
    Route("GET", "/v1/invoices/{id}", _retrieve),
    Route("POST", "/v1/invoices/{id}", _update),
    Route("GET", "/v1/invoices/{id}/lines", _lines),
    Route("POST", "/v1/invoices/{id}/pay", _pay),
    Route("POST", "/v1/invoices/{id}/finalize", _finalize),
    Route("POST", "/v1/invoices/{id}/void", _void),
    Route("POST", "/v1/invoices/{id}/mark_uncollectible", _uncollectible),
    Route("GET", "/v1/invoice_payments", _payments),
    Route("GET", "/v1/invoice_payments/{id}", _payment),
    Route("GET", "/v1/invoiceitems", _invoiceitems),
    Route("GET", "/v1/invoiceitems/{id}", _invoiceitem),
]
