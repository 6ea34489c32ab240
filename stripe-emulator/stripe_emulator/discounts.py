"""Discounts: redeeming coupons and promotion codes, and what they take off an invoice.

**Redemption** (``discounts=[{promotion_code}|{coupon}]`` on a subscription or a Checkout
Session): :func:`references` reads the parameter, :func:`check` applies Stripe's rules without
writing anything — the code exists, is active, has not expired (``expires_at``) nor been used up
(``max_redemptions``), is the customer's if restricted to one, ``first_time_transaction`` (no
paid invoice, no successful payment yet), ``minimum_amount`` (the purchase before discounts, in
``minimum_amount_currency``); its coupon is valid (``redeem_by``, ``max_redemptions``, not
deleted), in the purchase's currency when ``amount_off``, and applies to one of the purchase's
products when limited by ``applies_to`` — and :func:`redeem` makes the ``discount`` object
(``customer.discount.created``), counting the redemption on the code and on the coupon.

**Arithmetic** (:func:`discount_lines`, the one place invoice discounts are computed; real
invoices get it through :func:`apply_to_invoice` when announced, previews call
:func:`discount_lines` on their own draft): each discount applies, in order, to the
*discountable* lines (not prorations: Stripe's ``discountable`` is "always false for
prorations") with a positive amount, of the coupon's products if it is limited. ``percent_off``
takes ``round_half_up(line * p / 100)`` off each line; ``amount_off`` takes ``min(amount_off,
those lines' total)``, shared over the lines in proportion to their amounts (largest remainder
first). A later discount works on what the earlier ones left. Lines carry ``discount_amounts``
(``[{amount, discount}]``), the invoice ``discounts`` (ids) and ``total_discount_amounts``;
``total = subtotal - sum(discounts)`` (never below 0 through a discount).

**Duration**: ``once`` ends after the first invoice it took something off (a $0 trial invoice
does not use it up); ``repeating`` ends ``duration_in_months`` months after its ``start`` —
invoices created before that ``end`` are discounted; ``forever`` never ends. An ended discount
leaves the subscription (``customer.discount.deleted`` and ``customer.subscription.updated``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stripe_emulator import reference
from stripe_emulator.errors import StripeError, invalid_request, unsupported
from stripe_emulator.events import emit, emit_update
from stripe_emulator.forms import Params
from stripe_emulator.ids import new_id
from stripe_emulator.periods import add_intervals
from stripe_emulator.resources.coupons import is_valid, products_of, refresh
from stripe_emulator.resources.promotion_codes import coupon_of, refresh_code
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

#: Stripe takes at most 20 discounts on one object.
MAX_DISCOUNTS = 20


@dataclass(frozen=True)
class Reference:
    """One entry of a ``discounts`` parameter, resolved to stored objects."""

    param: str
    coupon: JSON
    promotion_code: JSON | None = None


@dataclass(frozen=True)
class Purchase:
    """What a redemption is checked against: who buys, in what currency, which products, and
    the amount before discounts (the first invoice's, or the Checkout Session's subtotal)."""

    customer: str | None
    currency: str
    products: tuple[str, ...]
    amount: int
    now: int


def references(ctx: Ctx, p: Params, key: str = "discounts") -> list[Reference] | None:
    """The ``discounts`` parameter: ``None`` when absent, ``[]`` when blank (clears them)."""
    if not p.has(key):
        return None
    if p.is_blank(key):
        return []
    entries = p.hashes(key)
    if len(entries) > MAX_DISCOUNTS:
        raise invalid_request(f"You can apply at most {MAX_DISCOUNTS} discounts.", param=key)
    found: list[Reference] = []
    for entry in entries:
        entry.only(("coupon", "promotion_code", "discount"))
        if entry.has("discount"):
            raise unsupported(entry.path("discount"))
        given = [name for name in ("coupon", "promotion_code") if entry.has(name)]
        if len(given) != 1:
            raise invalid_request(
                "You must specify exactly one of these parameters: coupon, promotion_code.",
                param=entry.name,
            )
        if given == ["coupon"]:
            coupon = ctx.store.require("coupon", entry.string("coupon"), param=entry.path("coupon"))
            found.append(Reference(entry.path("coupon"), refresh(ctx, coupon)))
        else:
            where = entry.path("promotion_code")
            promo = ctx.store.require("promotion_code", entry.string("promotion_code"), param=where)
            refresh_code(ctx, promo)
            found.append(Reference(where, coupon_of(ctx, promo), promo))
    coupons = [ref.coupon["id"] for ref in found]
    if len(set(coupons)) != len(coupons):
        raise invalid_request("The same coupon cannot be applied more than once.", param=key)
    return found


def has_prior_transactions(ctx: Ctx, customer_id: str | None) -> bool:
    """Has the customer paid anything yet (a paid invoice, a successful payment)?"""
    if customer_id is None:
        return False
    paid = ctx.store.all(
        "invoice",
        lambda inv: (
            inv["customer"] == customer_id
            and inv["status"] == "paid"
            and int(inv["amount_paid"]) > 0
        ),
    )
    succeeded = ctx.store.all(
        "payment_intent",
        lambda pi: pi.get("customer") == customer_id and pi["status"] == "succeeded",
    )
    return bool(paid or succeeded)


def _refuse(message: str, param: str, code: str | None = None) -> StripeError:
    return invalid_request(message, param=param, code=code)


def _check_code(ctx: Ctx, ref: Reference, purchase: Purchase) -> None:
    promo = ref.promotion_code
    assert promo is not None
    if not ctx.store.priv(promo["id"]).get("active"):
        raise _refuse(f"The promotion code `{promo['code']}` is not active.", ref.param)
    if promo["expires_at"] is not None and purchase.now >= int(promo["expires_at"]):
        raise _refuse(f"The promotion code `{promo['code']}` has expired.", ref.param)
    limit = promo["max_redemptions"]
    if limit is not None and int(promo["times_redeemed"]) >= int(limit):
        raise _refuse(
            f"The promotion code `{promo['code']}` has been redeemed the maximum number of times.",
            ref.param,
        )
    if promo["customer"] is not None and promo["customer"] != purchase.customer:
        raise _refuse("This promotion code cannot be redeemed by this customer.", ref.param)
    restrictions = promo["restrictions"]
    if restrictions["first_time_transaction"] and has_prior_transactions(ctx, purchase.customer):
        raise _refuse(
            "This promotion code cannot be redeemed because the associated customer has prior "
            "transactions.",
            ref.param,
        )
    minimum = restrictions["minimum_amount"]
    if minimum is not None:
        currency = str(restrictions["minimum_amount_currency"])
        if currency != purchase.currency or purchase.amount < int(minimum):
            raise _refuse(
                "This promotion code requires a minimum purchase of "
                f"{reference.format_amount(int(minimum), currency)}.",
                ref.param,
            )


def _check_coupon(ctx: Ctx, ref: Reference, purchase: Purchase) -> None:
    coupon = ref.coupon
    if ctx.store.priv(coupon["id"]).get("deleted"):
        raise _refuse(f"No such coupon: '{coupon['id']}'", ref.param, "resource_missing")
    if coupon["redeem_by"] is not None and purchase.now > int(coupon["redeem_by"]):
        raise _refuse(f"Coupon expired: {coupon['id']}", ref.param, "coupon_expired")
    if not is_valid(ctx, coupon, purchase.now):
        raise _refuse(
            f"Coupon {coupon['id']} has been redeemed the maximum number of times.", ref.param
        )
    if coupon["amount_off"] is not None and coupon["currency"] != purchase.currency:
        raise _refuse(
            f"The coupon's currency ({coupon['currency']}) does not match the currency of this "
            f"purchase ({purchase.currency}).",
            ref.param,
        )
    products = products_of(ctx, coupon)
    if products is not None and not set(products) & set(purchase.products):
        raise _refuse(
            f"The coupon {coupon['id']} does not apply to any of the products of this purchase.",
            ref.param,
        )


def check(ctx: Ctx, refs: list[Reference], purchase: Purchase) -> list[Reference]:
    """Stripe's redemption rules for each reference (see the module); writes nothing."""
    for ref in refs:
        if ref.promotion_code is not None:
            _check_code(ctx, ref, purchase)
        _check_coupon(ctx, ref, purchase)
    return refs


def redeem(
    ctx: Ctx,
    ref: Reference,
    *,
    customer: str,
    start: int,
    subscription: str | None = None,
    checkout_session: str | None = None,
) -> JSON:
    """Make the discount of a checked reference and count the redemption."""
    coupon = ref.coupon
    end = None
    if coupon["duration"] == "repeating":
        end = add_intervals(start, "month", int(coupon["duration_in_months"]))
    discount: JSON = {
        "id": new_id("di_"),
        "object": "discount",
        "checkout_session": checkout_session,
        "customer": customer,
        "customer_account": None,
        "end": end,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": ref.promotion_code["id"] if ref.promotion_code else None,
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": start,
        "subscription": subscription,
        "subscription_item": None,
    }
    ctx.store.put(discount)
    coupon["times_redeemed"] = int(coupon["times_redeemed"]) + 1
    refresh(ctx, coupon)
    if ref.promotion_code is not None:
        promo = ref.promotion_code
        promo["times_redeemed"] = int(promo["times_redeemed"]) + 1
        refresh_code(ctx, promo)
    emit(ctx, "customer.discount.created", discount)
    return discount


def same_source(discount: JSON, ref: Reference) -> bool:
    """Does an existing discount come from this reference (same code, or same bare coupon)?"""
    promo = ref.promotion_code["id"] if ref.promotion_code else None
    return bool(
        discount["promotion_code"] == promo and discount["source"]["coupon"] == ref.coupon["id"]
    )


def set_subscription_discounts(ctx: Ctx, sub: JSON, refs: list[Reference]) -> None:
    """Replace a subscription's discounts (an update's ``discounts``): one already there from
    the same code or coupon is kept (not redeemed twice); the others end now."""
    now = ctx.state.now_for(sub)
    current = [d for d in (ctx.store.get("discount", i) for i in sub["discounts"]) if d]
    kept: list[str] = []
    for ref in refs:
        existing = next((d for d in current if same_source(d, ref)), None)
        if existing is not None:
            kept.append(existing["id"])
            continue
        made = redeem(ctx, ref, customer=sub["customer"], start=now, subscription=sub["id"])
        kept.append(made["id"])
    for discount in current:
        if discount["id"] not in kept:
            emit(ctx, "customer.discount.deleted", discount)
    sub["discounts"] = kept


def end_discount(ctx: Ctx, sub: JSON, discount: JSON) -> None:
    """A discount ran out: it leaves the subscription (the invoices keep their amounts)."""
    if discount["id"] not in sub["discounts"]:
        return
    before = snapshot(sub)
    sub["discounts"] = [d for d in sub["discounts"] if d != discount["id"]]
    emit(ctx, "customer.discount.deleted", discount)
    emit_update(ctx, "customer.subscription.updated", sub, before)


def active_discounts(ctx: Ctx, sub: JSON, at: int) -> list[JSON]:
    """The subscription's discounts that still apply to an invoice created at ``at``."""
    found: list[JSON] = []
    for discount_id in sub["discounts"]:
        discount = ctx.store.get("discount", discount_id)
        if discount is not None and (discount["end"] is None or at < int(discount["end"])):
            found.append(discount)
    return found


def _product(line: JSON) -> str | None:
    details = (line.get("pricing") or {}).get("price_details") or {}
    product = details.get("product")
    return str(product) if product else None


def _taken(line: JSON) -> int:
    return sum(int(d["amount"]) for d in line.get("discount_amounts") or [])


def allocate(coupon: JSON, products: list[str] | None, lines: list[JSON]) -> list[int]:
    """What ``coupon`` takes off each line (0 where it does not apply), given what earlier
    discounts took (``discount_amounts`` already on the lines)."""
    remaining = [
        int(line["amount"]) - _taken(line)
        if line.get("discountable")
        and int(line["amount"]) > 0
        and (products is None or _product(line) in products)
        else 0
        for line in lines
    ]
    remaining = [max(0, r) for r in remaining]
    if coupon["percent_off"] is not None:
        rate = Decimal(str(coupon["percent_off"])) / 100
        return [
            int((Decimal(r) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for r in remaining
        ]
    base = sum(remaining)
    total = min(int(coupon["amount_off"] or 0), base)
    if total <= 0:
        return [0 for _ in lines]
    shares = [total * r // base for r in remaining]
    # The cents lost to rounding down go to the lines with the largest remainders.
    order = sorted(range(len(lines)), key=lambda i: (-(total * remaining[i] % base), i))
    for index in order[: total - sum(shares)]:
        shares[index] += 1
    return shares


def discount_lines(ctx: Ctx, inv: JSON, discounts: list[JSON]) -> None:
    """Compute ``discounts`` (in order) over the invoice's lines and set its totals. Pure on
    ``inv``: nothing else is read but the discounts' coupons, nothing else is written."""
    lines: list[JSON] = inv["lines"]["data"]
    for line in lines:
        line["discount_amounts"] = []
    totals: list[JSON] = []
    for discount in discounts:
        coupon = ctx.store.get("coupon", str(discount["source"]["coupon"]))
        assert coupon is not None
        if coupon["amount_off"] is not None and coupon["currency"] != inv["currency"]:
            continue
        amounts = allocate(coupon, products_of(ctx, coupon), lines)
        for line, amount in zip(lines, amounts, strict=True):
            if amount:
                line["discount_amounts"].append({"amount": amount, "discount": discount["id"]})
        totals.append({"amount": sum(amounts), "discount": discount["id"]})
    inv["discounts"] = [t["discount"] for t in totals]
    inv["total_discount_amounts"] = totals
    recompute_totals(inv)


def recompute_totals(inv: JSON) -> None:
    """Subtotal (the lines), total (less their discounts) and what is due, on a draft."""
    lines: list[JSON] = inv["lines"]["data"]
    subtotal = sum(int(line["amount"]) for line in lines)
    total = subtotal - sum(_taken(line) for line in lines)
    inv.update(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal,
        total=total,
        total_excluding_tax=total,
        amount_due=max(0, total),
        amount_remaining=max(0, total),
    )


def apply_to_invoice(ctx: Ctx, inv: JSON, sub: JSON | None) -> None:
    """A real subscription invoice takes the subscription's discounts: ended ones leave the
    subscription first, a ``once`` discount that took something off leaves it afterwards.
    Idempotent per invoice (the discounts chosen the first time are kept)."""
    if sub is None:
        return
    private: dict[str, Any] = ctx.store.priv(inv["id"])
    chosen = private.get("discounts")
    if chosen is None:
        at = int(inv["created"])
        for discount_id in list(sub["discounts"]):
            discount = ctx.store.get("discount", discount_id)
            if discount is not None and discount["end"] is not None and at >= int(discount["end"]):
                end_discount(ctx, sub, discount)
        chosen = [d["id"] for d in active_discounts(ctx, sub, at)]
        private["discounts"] = chosen
    discounts = [d for d in (ctx.store.get("discount", i) for i in chosen) if d is not None]
    discount_lines(ctx, inv, discounts)
    for total in inv["total_discount_amounts"]:
        discount = ctx.store.get("discount", total["discount"])
        coupon = ctx.store.get("coupon", str(discount["source"]["coupon"])) if discount else None
        if discount and coupon and coupon["duration"] == "once" and int(total["amount"]) > 0:
            end_discount(ctx, sub, discount)


def checkout_amounts(ctx: Ctx, refs: list[Reference], items: list[JSON]) -> list[int]:
    """What the references take off each Checkout line item (as its first invoice would)."""
    lines: list[JSON] = [
        {
            "amount": int(item["amount_subtotal"]),
            "discountable": True,
            "discount_amounts": [],
            "pricing": {"price_details": {"product": item["price"]["product"]}},
        }
        for item in items
    ]
    for ref in refs:
        amounts = allocate(ref.coupon, products_of(ctx, ref.coupon), lines)
        for line, amount in zip(lines, amounts, strict=True):
            line["discount_amounts"].append({"amount": amount, "discount": ref.coupon["id"]})
    return [_taken(line) for line in lines]
