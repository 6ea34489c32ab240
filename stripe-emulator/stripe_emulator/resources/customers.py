"""Customers.

Routes: ``POST /v1/customers``, ``GET|POST|DELETE /v1/customers/{id}``, ``GET /v1/customers``,
``GET /v1/customers/search``. A customer created with ``test_clock`` lives at that clock's time,
and — like Stripe — is left out of lists unless ``test_clock`` is given. Deleting a customer
cancels its subscriptions; retrieving it afterwards returns the ``deleted: true`` stub.
"""

from __future__ import annotations

import secrets

from stripe_emulator import reference
from stripe_emulator.billing import cancel_now
from stripe_emulator.errors import resource_missing
from stripe_emulator.events import emit, emit_update
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import new_id
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.resources.payment_methods import (
    add_source,
    require_attached,
    require_source,
    resolve,
)
from stripe_emulator.routing import Route
from stripe_emulator.search import search
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

_WRITABLE = (
    "address",
    "description",
    "email",
    "metadata",
    "name",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
    "invoice_settings",
    "balance",
    "expand",
    "invoice_prefix",
    "next_invoice_sequence",
    "source",
    "tax",
    "validate",
)


def _address(p: Params, key: str) -> JSON | None:
    sub = p.sub(key)
    if sub is None:
        return None
    sub.only(("city", "country", "line1", "line2", "postal_code", "state"))
    return {k: sub.string(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}


def _apply(ctx: Ctx, customer: JSON, p: Params, *, creating: bool) -> None:
    for key in ("description", "email", "name", "phone"):
        if p.has(key):
            customer[key] = p.string(key, max_length=512 if key == "email" else 5000)
    if p.has("email"):
        reference.email(customer["email"], param=p.path("email"))
    if p.has("address"):
        customer["address"] = _address(p, "address")
    if p.has("shipping"):
        shipping = p.sub("shipping")
        customer["shipping"] = (
            None
            if shipping is None
            else {
                "address": _address(shipping, "address"),
                "name": shipping.string("name", required=True),
                "phone": shipping.string("phone"),
            }
        )
    if p.has("preferred_locales"):
        customer["preferred_locales"] = p.strings("preferred_locales")
    if p.has("tax_exempt"):
        customer["tax_exempt"] = p.string("tax_exempt", choices=("none", "exempt", "reverse"))
    if p.has("balance"):
        customer["balance"] = p.integer("balance")
    if p.has("invoice_prefix"):
        customer["invoice_prefix"] = p.string("invoice_prefix")
    if p.has("next_invoice_sequence"):
        customer["next_invoice_sequence"] = p.integer("next_invoice_sequence", minimum=1)
    customer["metadata"] = merge_metadata(customer["metadata"], p.metadata(), replace=creating)


def _invoice_settings(ctx: Ctx, customer: JSON, p: Params) -> None:
    settings = p.sub("invoice_settings")
    if settings is None:
        return
    settings.only(("default_payment_method", "custom_fields", "footer", "rendering_options"))
    if settings.has("default_payment_method"):
        ref = settings.string("default_payment_method")
        customer["invoice_settings"]["default_payment_method"] = (
            require_attached(
                ctx, ref, customer["id"], param="invoice_settings[default_payment_method]"
            )["id"]
            if ref
            else None
        )
    if settings.has("footer"):
        customer["invoice_settings"]["footer"] = settings.string("footer")


def _sources(ctx: Ctx, customer: JSON, p: Params) -> None:
    """``source`` (a card token) saves a card; ``default_source`` picks one of the saved ones."""
    token = p.string("source")
    if token:
        add_source(ctx, customer, token)
    if p.has("default_source"):
        ref = p.string("default_source")
        customer["default_source"] = (
            require_source(ctx, ref, customer["id"], param="default_source")["id"] if ref else None
        )


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only((*_WRITABLE, "payment_method", "test_clock", "tax_id_data", "coupon", "promotion_code"))
    clock_id = p.string("test_clock")
    if clock_id:
        ctx.store.require("test_helpers.test_clock", clock_id, param="test_clock")
    customer: JSON = {
        "id": new_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": ctx.state.now(clock_id),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": clock_id,
    }
    _apply(ctx, customer, p, creating=True)
    ctx.store.put(customer)
    emit(ctx, "customer.created", customer)
    pm_ref = p.string("payment_method")
    if pm_ref:
        resolve(ctx, pm_ref, param="payment_method", customer=customer["id"])
    before = snapshot(customer)
    _invoice_settings(ctx, customer, p)
    _sources(ctx, customer, p)
    emit_update(ctx, "customer.updated", customer, before)
    return customer


def new_customer(ctx: Ctx, *, email: str | None, name: str | None = None) -> JSON:
    """A customer created by the emulator itself (Checkout without ``customer``)."""
    data = {key: value for key, value in (("email", email), ("name", name)) if value}
    return _create(ctx, Params(data))


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    customer = ctx.store.get("customer", id)
    if customer is None:
        raise resource_missing("customer", id)
    if ctx.store.priv(id).get("deleted"):
        return {"id": id, "object": "customer", "deleted": True}
    return customer


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only((*_WRITABLE, "default_source", "coupon", "promotion_code"))
    customer = ctx.store.require("customer", id)
    before = snapshot(customer)
    _apply(ctx, customer, p, creating=False)
    _invoice_settings(ctx, customer, p)
    _sources(ctx, customer, p)
    emit_update(ctx, "customer.updated", customer, before)
    return customer


def _delete(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(())
    customer = ctx.store.require("customer", id)
    for sub in ctx.store.all("subscription", lambda s: s["customer"] == id):
        if sub["status"] not in ("canceled", "incomplete_expired"):
            cancel_now(ctx, sub, reason="cancellation_requested")
    ctx.store.priv(id)["deleted"] = True
    emit(ctx, "customer.deleted", customer)
    return {"id": id, "object": "customer", "deleted": True}


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "email", "created", "test_clock"))
    email, clock = p.string("email"), p.string("test_clock")
    created = created_filter(p)
    items = ctx.store.all(
        "customer",
        lambda c: (
            (email is None or c["email"] == email) and c["test_clock"] == clock and created(c)
        ),
    )
    return paginate(items, p, "/v1/customers")


def _search(ctx: Ctx, p: Params) -> JSON:
    return search(ctx, p, "customer", "/v1/customers/search")


ROUTES = [
    Route("POST", "/v1/customers", _create),
    Route("GET", "/v1/customers", _list),
    Route("GET", "/v1/customers/search", _search),
    Route("GET", "/v1/customers/{id}", _retrieve),
    Route("POST", "/v1/customers/{id}", _update),
    Route("DELETE", "/v1/customers/{id}", _delete),
]
