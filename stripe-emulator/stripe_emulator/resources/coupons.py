"""Coupons: what a discount takes off, for how long, and how often it may be redeemed.

Routes: ``POST /v1/coupons``, ``GET|POST|DELETE /v1/coupons/{id}``, ``GET /v1/coupons``.

A coupon is ``percent_off`` (0 < p ≤ 100) or ``amount_off`` with a ``currency``; ``duration``
is ``once`` (the default: one invoice), ``repeating`` (``duration_in_months`` months from the
redemption) or ``forever``. ``max_redemptions`` and ``redeem_by`` bound who may still redeem it:
once either is reached the coupon is no longer ``valid`` (discounts made from it keep working,
as on Stripe). ``applies_to[products]`` limits it to lines of those products; the field is
*includable* (returned only with ``expand[]=applies_to``), as Stripe's. Only ``name`` and
``metadata`` can be changed; a deleted coupon cannot be redeemed, its discounts stay.
``currency_options`` is refused as not emulated.
"""

from __future__ import annotations

import re
import secrets
import string

from stripe_emulator import reference
from stripe_emulator.errors import invalid_request, parameter_invalid, unsupported
from stripe_emulator.events import emit, emit_update
from stripe_emulator.expand import register_includable
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

DURATIONS = ("forever", "once", "repeating")
#: Stripe refuses a ``redeem_by`` more than five years ahead.
_FIVE_YEARS = 5 * 366 * 86400
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_ID_ALPHABET = string.ascii_uppercase + string.digits


def percent(p: Params, key: str) -> float | None:
    """A ``percent_off`` value: a decimal number with Stripe's bounds (0 < p ≤ 100)."""
    value = p.data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _NUMBER.match(value):
        raise parameter_invalid(p.path(key), f"Invalid decimal: {value}")
    number = float(value)
    if not 0 < number <= 100:
        raise parameter_invalid(p.path(key), "percent_off must be greater than 0 and at most 100.")
    return number


def is_valid(ctx: Ctx, coupon: JSON, now: int | None = None) -> bool:
    """May the coupon still be redeemed at ``now`` (the wall clock by default)?"""
    if ctx.store.priv(coupon["id"]).get("deleted"):
        return False
    moment = ctx.state.now() if now is None else now
    if coupon["redeem_by"] is not None and moment > int(coupon["redeem_by"]):
        return False
    limit = coupon["max_redemptions"]
    return limit is None or int(coupon["times_redeemed"]) < int(limit)


def refresh(ctx: Ctx, coupon: JSON) -> JSON:
    """Bring the stored ``valid`` flag up to date (time passes, redemptions are counted)."""
    coupon["valid"] = is_valid(ctx, coupon)
    return coupon


def products_of(ctx: Ctx, coupon: JSON) -> list[str] | None:
    """The products a coupon is limited to (``None``: every product)."""
    products: list[str] | None = ctx.store.priv(coupon["id"]).get("applies_to")
    return products


def _applies_to(ctx: Ctx, coupon: JSON) -> JSON | None:
    products = products_of(ctx, coupon)
    return {"products": list(products)} if products is not None else None


register_includable("coupon", "applies_to", _applies_to)


def _coupon_id(p: Params) -> str:
    wanted = p.string("id", max_length=200)
    if wanted is None:
        return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return wanted


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            "id",
            "percent_off",
            "amount_off",
            "currency",
            "duration",
            "duration_in_months",
            "max_redemptions",
            "redeem_by",
            "name",
            "metadata",
            "applies_to",
            "currency_options",
            "expand",
        )
    )
    if p.has("currency_options"):
        raise unsupported("currency_options")
    coupon_id = _coupon_id(p)
    if ctx.store.get("coupon", coupon_id) is not None:
        raise invalid_request("Coupon already exists.", param="id", code="resource_already_exists")
    percent_off = percent(p, "percent_off")
    amount_off = p.integer("amount_off", minimum=1)
    if percent_off is None and amount_off is None:
        raise invalid_request(
            "Must provide either `percent_off` or `amount_off` to create a coupon.",
            param="percent_off",
        )
    if percent_off is not None and amount_off is not None:
        raise invalid_request(
            "You may only specify one of these parameters: amount_off, percent_off.",
            param="amount_off",
        )
    currency: str | None = None
    if amount_off is not None:
        if not p.has("currency"):
            raise invalid_request(
                "You must specify a `currency` when creating an `amount_off` coupon.",
                param="currency",
            )
        currency = reference.currency(p.string("currency"))
        reference.check_maximum(amount_off, currency, param="amount_off")
    elif p.has("currency"):
        raise invalid_request(
            "`currency` can only be set on an `amount_off` coupon.", param="currency"
        )
    duration = p.string("duration", choices=DURATIONS) or "once"
    months = p.integer("duration_in_months", minimum=1)
    if duration == "repeating" and months is None:
        raise invalid_request(
            "Missing required param: duration_in_months.",
            param="duration_in_months",
            code="parameter_missing",
        )
    if duration != "repeating" and months is not None:
        raise invalid_request(
            "`duration_in_months` can only be set when `duration` is `repeating`.",
            param="duration_in_months",
        )
    now = ctx.state.now()
    redeem_by = p.integer("redeem_by", minimum=0)
    if redeem_by is not None and not now < redeem_by <= now + _FIVE_YEARS:
        raise invalid_request(
            "Invalid timestamp: `redeem_by` must be in the future and at most 5 years away.",
            param="redeem_by",
        )
    products: list[str] | None = None
    applies = p.sub("applies_to")
    if applies is not None:
        applies.only(("products",))
        products = applies.strings("products")
        for index, product_id in enumerate(products):
            ctx.store.require("product", product_id, param=f"applies_to[products][{index}]")
    coupon: JSON = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount_off,
        "created": now,
        "currency": currency,
        "duration": duration,
        "duration_in_months": months,
        "livemode": False,
        "max_redemptions": p.integer("max_redemptions", minimum=1),
        "metadata": merge_metadata({}, p.metadata(), replace=True),
        "name": p.string("name", max_length=40),
        "percent_off": percent_off,
        "redeem_by": redeem_by,
        "times_redeemed": 0,
        "valid": True,
    }
    ctx.store.put(coupon)
    if products is not None:
        ctx.store.priv(coupon_id)["applies_to"] = products
    emit(ctx, "coupon.created", coupon)
    return coupon


def require_coupon(ctx: Ctx, coupon_id: str | None, *, param: str = "id") -> JSON:
    return refresh(ctx, ctx.store.require("coupon", coupon_id, param=param))


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return require_coupon(ctx, id)


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("name", "metadata", "currency_options", "expand"))
    if p.has("currency_options"):
        raise unsupported("currency_options")
    coupon = require_coupon(ctx, id)
    before = snapshot(coupon)
    if p.has("name"):
        coupon["name"] = p.string("name", max_length=40)
    coupon["metadata"] = merge_metadata(coupon["metadata"], p.metadata(), replace=False)
    emit_update(ctx, "coupon.updated", coupon, before)
    return coupon


def _delete(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(())
    coupon = require_coupon(ctx, id)
    # Kept (marked deleted) so the discounts made from it still resolve, as on Stripe.
    ctx.store.priv(id)["deleted"] = True
    coupon["valid"] = False
    emit(ctx, "coupon.deleted", coupon)
    return {"id": id, "object": "coupon", "deleted": True}


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "created"))
    created = created_filter(p)
    items = [refresh(ctx, c) for c in ctx.store.all("coupon", created)]
    return paginate(items, p, "/v1/coupons")


ROUTES = [
    Route("POST", "/v1/coupons", _create),
    Route("GET", "/v1/coupons", _list),
    Route("GET", "/v1/coupons/{id}", _retrieve),
    Route("POST", "/v1/coupons/{id}", _update),
    Route("DELETE", "/v1/coupons/{id}", _delete),
]
