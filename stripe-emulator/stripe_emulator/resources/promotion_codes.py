"""Promotion codes: customer-facing codes for a coupon.

Routes: ``POST /v1/promotion_codes``, ``GET|POST /v1/promotion_codes/{id}``,
``GET /v1/promotion_codes`` (``code`` — case-insensitive —, ``active``, ``coupon``,
``customer``, ``created`` filters).

The current API's shape: ``promotion: {type: "coupon", coupon: <id>}`` (expandable). A code is
unique, regardless of case, among the *active* codes of the same customer restriction. It may be
limited to one ``customer``, to ``max_redemptions`` uses (never more than its coupon's), to an
``expires_at`` (never after the coupon's ``redeem_by``), and by ``restrictions``:
``first_time_transaction`` (only customers with no paid invoice or successful payment) and
``minimum_amount`` + ``minimum_amount_currency`` (the purchase's amount before discounts).
``active`` is what was set and false once the coupon is no longer valid (Stripe: "A promotion
code is only active if the coupon is also valid"). Redeeming one is :mod:`discounts`' job.
``restrictions[currency_options]`` is refused as not emulated.
"""

from __future__ import annotations

import re
import secrets
import string

from stripe_emulator import reference
from stripe_emulator.errors import invalid_request, parameter_invalid, unsupported
from stripe_emulator.events import emit, emit_update
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import new_id
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.resources.coupons import is_valid, refresh, require_coupon
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

_CODE = re.compile(r"^[A-Za-z0-9-]{1,500}$")
_CODE_ALPHABET = string.ascii_uppercase + string.digits


def coupon_of(ctx: Ctx, promo: JSON) -> JSON:
    """The promotion code's coupon (a deleted one included: its discounts still resolve)."""
    coupon = ctx.store.get("coupon", str(promo["promotion"]["coupon"]))
    assert coupon is not None
    return coupon


def refresh_code(ctx: Ctx, promo: JSON) -> JSON:
    """``active`` as Stripe shows it: the flag that was set, while the coupon is valid."""
    coupon = refresh(ctx, coupon_of(ctx, promo))
    promo["active"] = bool(ctx.store.priv(promo["id"]).get("active")) and bool(coupon["valid"])
    return promo


def _code(p: Params) -> str:
    code = p.string("code", max_length=500)
    if code is None:
        return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    if not _CODE.match(code):
        raise parameter_invalid(
            "code",
            "Invalid code: a promotion code may only contain letters (a-z, A-Z), digits (0-9) "
            "and dashes (-).",
        )
    return code


def _unique(ctx: Ctx, code: str, customer: str | None, *, except_id: str | None = None) -> None:
    for other in ctx.store.all("promotion_code"):
        if other["id"] == except_id or other["customer"] != customer:
            continue
        if refresh_code(ctx, other)["active"] and other["code"].lower() == code.lower():
            raise invalid_request(
                "An active promotion code with this code already exists.",
                param="code",
                code="resource_already_exists",
            )


def _restrictions(p: Params) -> JSON:
    restrictions: JSON = {
        "first_time_transaction": False,
        "minimum_amount": None,
        "minimum_amount_currency": None,
    }
    given = p.sub("restrictions")
    if given is None:
        return restrictions
    given.only(
        ("first_time_transaction", "minimum_amount", "minimum_amount_currency", "currency_options")
    )
    if given.has("currency_options"):
        raise unsupported(given.path("currency_options"))
    restrictions["first_time_transaction"] = bool(
        given.boolean("first_time_transaction", default=False)
    )
    minimum = given.integer("minimum_amount", minimum=1)
    if minimum is not None:
        if not given.has("minimum_amount_currency"):
            raise invalid_request(
                "You must specify `minimum_amount_currency` with `minimum_amount`.",
                param=given.path("minimum_amount_currency"),
            )
        restrictions["minimum_amount"] = minimum
        restrictions["minimum_amount_currency"] = reference.currency(
            given.string("minimum_amount_currency"), param=given.path("minimum_amount_currency")
        )
    elif given.has("minimum_amount_currency"):
        raise invalid_request(
            "`minimum_amount_currency` can only be set with `minimum_amount`.",
            param=given.path("minimum_amount_currency"),
        )
    return restrictions


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            "promotion",
            "code",
            "active",
            "customer",
            "customer_account",
            "expires_at",
            "max_redemptions",
            "restrictions",
            "metadata",
            "expand",
        )
    )
    if p.has("customer_account"):
        raise unsupported("customer_account")
    promotion = p.sub("promotion", required=True)
    assert promotion is not None
    promotion.only(("type", "coupon"))
    promotion.string("type", required=True, choices=("coupon",))
    coupon = require_coupon(
        ctx, promotion.string("coupon", required=True), param=promotion.path("coupon")
    )
    if not coupon["valid"]:
        raise invalid_request(
            f"Coupon {coupon['id']} is no longer valid and cannot be used for a promotion code.",
            param=promotion.path("coupon"),
        )
    code = _code(p)
    customer = p.string("customer")
    if customer:
        ctx.store.require("customer", customer, param="customer")
    active = bool(p.boolean("active", default=True))
    if active:
        _unique(ctx, code, customer)
    now = ctx.state.now()
    expires_at = p.integer("expires_at", minimum=0)
    if expires_at is not None:
        if expires_at <= now:
            raise invalid_request("Invalid timestamp: must be in the future.", param="expires_at")
        if coupon["redeem_by"] is not None and expires_at > int(coupon["redeem_by"]):
            raise invalid_request(
                "The promotion code's `expires_at` cannot be after its coupon's `redeem_by`.",
                param="expires_at",
            )
    max_redemptions = p.integer("max_redemptions", minimum=1)
    limit = coupon["max_redemptions"]
    if max_redemptions is not None and limit is not None and max_redemptions > int(limit):
        raise invalid_request(
            "The promotion code's `max_redemptions` cannot be greater than its coupon's.",
            param="max_redemptions",
        )
    promo: JSON = {
        "id": new_id("promo_"),
        "object": "promotion_code",
        "active": active,
        "code": code,
        "created": now,
        "customer": customer,
        "customer_account": None,
        "expires_at": expires_at,
        "livemode": False,
        "max_redemptions": max_redemptions,
        "metadata": merge_metadata({}, p.metadata(), replace=True),
        "promotion": {"coupon": coupon["id"], "type": "coupon"},
        "restrictions": _restrictions(p),
        "times_redeemed": 0,
    }
    ctx.store.put(promo)
    ctx.store.priv(promo["id"])["active"] = active
    emit(ctx, "promotion_code.created", promo)
    return promo


def require_code(ctx: Ctx, promo_id: str | None, *, param: str = "id") -> JSON:
    return refresh_code(ctx, ctx.store.require("promotion_code", promo_id, param=param))


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return require_code(ctx, id)


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("active", "metadata", "restrictions", "expand"))
    promo = require_code(ctx, id)
    before = snapshot(promo)
    restrictions = p.sub("restrictions")
    if restrictions is not None:
        restrictions.only(("currency_options",))
        raise unsupported(restrictions.path("currency_options"))
    if p.has("active"):
        active = bool(p.boolean("active"))
        if active and not promo["active"]:
            if not is_valid(ctx, coupon_of(ctx, promo)):
                raise invalid_request(
                    "This promotion code cannot be reactivated: its coupon is no longer valid.",
                    param="active",
                )
            _unique(ctx, promo["code"], promo["customer"], except_id=promo["id"])
        ctx.store.priv(id)["active"] = active
    promo["metadata"] = merge_metadata(promo["metadata"], p.metadata(), replace=False)
    refresh_code(ctx, promo)
    emit_update(ctx, "promotion_code.updated", promo, before)
    return promo


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "active", "code", "coupon", "customer", "customer_account", "created"))
    if p.has("customer_account"):
        raise unsupported("customer_account")
    active = p.boolean("active")
    code = p.string("code", max_length=500)
    coupon = p.string("coupon")
    customer = p.string("customer")
    created = created_filter(p)
    items = [
        refresh_code(ctx, promo)
        for promo in ctx.store.all("promotion_code", created)
        if (code is None or promo["code"].lower() == code.lower())
        and (coupon is None or promo["promotion"]["coupon"] == coupon)
        and (customer is None or promo["customer"] == customer)
    ]
    items = [promo for promo in items if active is None or promo["active"] == active]
    return paginate(items, p, "/v1/promotion_codes")


ROUTES = [
    Route("POST", "/v1/promotion_codes", _create),
    Route("GET", "/v1/promotion_codes", _list),
    Route("GET", "/v1/promotion_codes/{id}", _retrieve),
    Route("POST", "/v1/promotion_codes/{id}", _update),
]
