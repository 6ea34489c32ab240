"""Subscription billing: starting, renewing, prorating, ending trials, dunning, canceling.

Periods live on the subscription **items** (``current_period_start/end``), as in the current API.
Every change runs at the customer's time — the test clock's frozen time for clock customers — and
emits the events Stripe sends. Renewals and retries happen only when a test clock is advanced
(see :mod:`schedule`); subscriptions without a clock never renew on their own.

Metered items (a price with ``recurring[usage_type]=metered``, see :mod:`metering`) have no
quantity and cost nothing up front: the first invoice (and a trial end, a resume, a new cycle)
carries them as a 0-quantity, 0-amount line, and prorations leave them out. Their usage is billed
in arrears: the renewal invoice at a period end bills, per metered item, the customer's usage on
the item's meter over ``[start, period end)`` — ``start`` being the period start, or the moment
the item was added or switched to its price if later (classic billing mode: "On future invoices,
we reflect only usage that occurs after the update"), and never before a trial ended (usage
during a trial is free) — as ``quantity`` = the usage with ``transform_quantity`` applied
and ``amount`` = ``unit_amount`` times the quantity, 0 usage giving a 0 line. A subscription
ending bills the unbilled usage of its last period on a final invoice when it ends as scheduled
(``cancel_at_period_end``/``cancel_at``) or is canceled with ``invoice_now=true``; canceled now
without it (Stripe's default ``invoice_now=false``), that usage is not billed. A metered item
removed mid-period takes its unbilled usage with it: "After deletion, the invoice doesn't
reflect any usage from that item" (classic billing mode; ``clear_usage`` "has no effect if the
plan has a billing meter attached").

Dunning follows :class:`~stripe_emulator.state.DunningPolicy`: a failed renewal makes the
subscription ``past_due`` and schedules retries (``invoice.next_payment_attempt``); when the last
retry fails the subscription is canceled or marked ``unpaid``. What falls due when a test clock
advances is decided in :mod:`schedule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from stripe_emulator.discounts import Reference, redeem
from stripe_emulator.errors import card_error, invalid_request
from stripe_emulator.events import emit, emit_update
from stripe_emulator.ids import new_id
from stripe_emulator.invoicing import (
    add_line,
    announce,
    attempt_payment,
    default_payment_method,
    finalize,
    invoice_intent,
    mark_uncollectible,
    money,
    new_invoice,
    subscription_of,
    void,
)
from stripe_emulator.metering import billed_quantity, is_metered, transform, usage
from stripe_emulator.periods import period_bounds, prorated, utc_datetime
from stripe_emulator.resources.payment_methods import card_of
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

ENDED = ("canceled", "incomplete_expired")
# Stripe writes quantities on invoice lines with a multiplication sign ("1 x Product").
TIMES = "\u00d7"


@dataclass
class ItemSpec:
    price: JSON
    quantity: int | None = 1  # None for a metered price
    metadata: dict[str, str] | None = None


def plan_from_price(price: JSON) -> JSON:
    """The legacy ``plan`` hash Stripe still mirrors onto subscription items."""
    recurring = price["recurring"] or {}
    rule = price["transform_quantity"]
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": recurring.get("meter"),
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": dict(rule) if rule else None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def build_item(
    ctx: Ctx, sub_id: str, spec: ItemSpec, period: tuple[int, int], created: int
) -> JSON:
    item: JSON = {
        "id": new_id("si_"),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": dict(spec.metadata or {}),
        "plan": plan_from_price(spec.price),
        "price": snapshot(spec.price),
        "quantity": None if is_metered(spec.price) else spec.quantity,
        "subscription": sub_id,
        "tax_rates": [],
    }
    ctx.store.put(item)
    ctx.store.priv(item["id"])["usage_from"] = created
    return item


def items_of(sub: JSON) -> list[JSON]:
    items: list[JSON] = sub["items"]["data"]
    return items


def current_period(sub: JSON) -> tuple[int, int]:
    first = items_of(sub)[0]
    return int(first["current_period_start"]), int(first["current_period_end"])


def set_period(ctx: Ctx, sub: JSON, start: int, end: int) -> None:
    for item in items_of(sub):
        item["current_period_start"] = start
        item["current_period_end"] = end
        stored = ctx.store.get("subscription_item", item["id"])
        if stored is not None and stored is not item:
            stored.update(current_period_start=start, current_period_end=end)


def recurring_of(price: JSON) -> tuple[str, int]:
    recurring = price["recurring"]
    return str(recurring["interval"]), int(recurring["interval_count"])


def item_amount(item: JSON) -> int:
    """What a licensed item costs per period (metered items: 0, their usage is billed apart)."""
    price = item["price"]
    if is_metered(price):
        return 0
    return int(price["unit_amount"] or 0) * transform(price, int(item["quantity"] or 0))


def usage_amount(price: JSON, quantity: int) -> int:
    """``unit_amount`` times a billed usage quantity, in the price's (maybe fractional) unit."""
    exact = Decimal(str(price["unit_amount_decimal"] or price["unit_amount"] or 0)) * quantity
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def product_name(ctx: Ctx, price: JSON) -> str:
    product = ctx.store.get("product", price["product"])
    return str(product["name"]) if product else str(price["product"])


def describe(ctx: Ctx, item: JSON, quantity: int | None = None) -> str:
    """``1 x Pro (at 20.00 USD / month)`` (with Stripe's multiplication sign); a package price
    adds ``per <divide_by>``."""
    price = item["price"]
    interval, count = recurring_of(price)
    every = interval if count == 1 else f"{count} {interval}s"
    unit = money(int(price["unit_amount"] or 0), price["currency"])
    rule = price["transform_quantity"]
    per = f" per {rule['divide_by']}" if rule else ""
    shown = int(item["quantity"] or 0) if quantity is None else quantity
    return f"{shown} {TIMES} {product_name(ctx, price)} (at {unit}{per} / {every})"


def metered_items(sub: JSON) -> list[JSON]:
    return [item for item in items_of(sub) if is_metered(item["price"])]


def usage_since(ctx: Ctx, sub: JSON, item: JSON, period_start: int) -> int:
    """Where a metered item's unbilled usage starts: the period start, or later when the item
    was added (or switched to its price) mid-period, and never inside a trial."""
    added = int(ctx.store.priv(item["id"]).get("usage_from", period_start))
    return max(period_start, added, int(sub["trial_end"] or 0))


def add_usage_line(
    ctx: Ctx,
    inv: JSON,
    sub: JSON,
    item: JSON,
    window: tuple[int, int],
    *,
    through_end: bool = False,
) -> None:
    """Bill a metered item's usage over ``window`` (0 usage: a 0 line); ``through_end``
    counts events stamped in the window's last second too (a cancellation's final invoice)."""
    start, end = window
    price = item["price"]
    total = 0
    if start < end or (through_end and start <= end):
        meter = str(price["recurring"]["meter"])
        total = usage(ctx, meter, sub["customer"], start, end + 1 if through_end else end)
    quantity = billed_quantity(price, total)
    add_line(
        inv,
        amount=usage_amount(price, quantity),
        description=describe(ctx, item, quantity),
        quantity=quantity,
        price=price,
        period=(start, max(start, end)),
        proration=False,
        subscription=sub["id"],
        subscription_item=item["id"],
    )


def check_prices(specs: list[ItemSpec], *, param: str = "items") -> None:
    """Stripe's rules: recurring, active prices sharing one interval and currency."""
    if not specs:
        raise invalid_request(
            "Missing required param: items.", param=param, code="parameter_missing"
        )
    first = specs[0].price
    for index, spec in enumerate(specs):
        price = spec.price
        where = f"{param}[{index}][price]"
        if price["type"] != "recurring":
            raise invalid_request(
                "The price specified is set to `type=one_time` but this field only accepts "
                "prices with `type=recurring`.",
                param=where,
            )
        if not price["active"]:
            raise invalid_request(
                "The price specified is inactive. This field only accepts active prices.",
                param=where,
            )
        if recurring_of(price) != recurring_of(first) or price["currency"] != first["currency"]:
            raise invalid_request(
                "Currency and interval fields must match across all plans on this "
                "subscription. Found mismatch in interval field.",
                param=where,
            )
        if spec.quantity is not None and spec.quantity < 0:
            raise invalid_request("Invalid quantity.", param=f"{param}[{index}][quantity]")


def start_subscription(
    ctx: Ctx,
    *,
    customer_id: str,
    specs: list[ItemSpec],
    default_payment_method: str | None = None,
    metadata: dict[str, str] | None = None,
    trial_end: int | None = None,
    payment_behavior: str = "allow_incomplete",
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
    description: str | None = None,
    cancel_at_period_end: bool = False,
    missing_payment_method: str = "create_invoice",
    discounts: Sequence[Reference] = (),
    checkout_session: str | None = None,
) -> JSON:
    """Create a subscription, its first invoice and (unless deferred) collect the payment.

    The subscription is announced ``incomplete`` (or ``trialing``) and moves to ``active`` when
    the first invoice is paid — the same two events Stripe sends for Checkout-created ones.
    ``discounts`` (checked by the caller, see :mod:`discounts`) are redeemed onto it first, so
    its first invoice takes them.
    """
    check_prices(specs)
    customer = ctx.store.require("customer", customer_id, param="customer")
    now = ctx.state.now_for_customer(customer_id)
    interval, count = recurring_of(specs[0].price)
    trialing = trial_end is not None and trial_end > now
    if trialing:
        assert trial_end is not None
        anchor, period, index = trial_end, (now, trial_end), -1
    else:
        anchor, index = now, 0
        period = period_bounds(anchor, interval, count, 0)
    sub_id = new_id("sub_")

    if not trialing and collection_method == "charge_automatically":
        _precheck_payment(ctx, customer, default_payment_method, payment_behavior)

    sub: JSON = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": collection_method,
        "created": now,
        "currency": specs[0].price["currency"],
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": days_until_due,
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": dict(metadata or {}),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "trialing" if trialing else "incomplete",
        "test_clock": customer["test_clock"],
        "transfer_data": None,
        "trial_end": trial_end if trialing else None,
        "trial_settings": {"end_behavior": {"missing_payment_method": missing_payment_method}},
        "trial_start": now if trialing else None,
    }
    sub["items"]["data"] = [build_item(ctx, sub_id, spec, period, now) for spec in specs]
    ctx.store.put(sub)
    ctx.store.priv(sub_id).update(anchor=anchor, index=index)
    sub["discounts"] = [
        redeem(
            ctx,
            ref,
            customer=customer_id,
            start=now,
            subscription=sub_id,
            checkout_session=checkout_session,
        )["id"]
        for ref in discounts
    ]
    if cancel_at_period_end:
        _schedule_cancel(ctx, sub, now)
    emit(ctx, "customer.subscription.created", sub)

    inv = new_invoice(
        ctx,
        customer_id=customer_id,
        subscription=sub,
        billing_reason="subscription_create",
        period_start=now,
        period_end=now,
        currency=sub["currency"],
        collection_method=collection_method,
        days_until_due=days_until_due,
    )
    for item in items_of(sub):
        # A metered item is billed in arrears: its line here is 0 (item_amount) of quantity 0.
        amount = 0 if trialing else item_amount(item)
        label = (
            f"Trial period for {product_name(ctx, item['price'])}"
            if trialing
            else describe(ctx, item)
        )
        add_line(
            inv,
            amount=amount,
            description=label,
            quantity=int(item["quantity"] or 0),
            price=item["price"],
            period=period,
            proration=False,
            subscription=sub_id,
            subscription_item=item["id"],
        )
    sub["latest_invoice"] = inv["id"]
    announce(ctx, inv)
    finalize(ctx, inv)
    if collection_method == "send_invoice" and sub["status"] == "incomplete":
        before = snapshot(sub)
        sub["status"] = "active"  # send_invoice subscriptions are active while the invoice is due
        emit_update(ctx, "customer.subscription.updated", sub, before)
    elif inv["status"] == "open" and payment_behavior == "default_incomplete":
        invoice_intent(ctx, inv)  # the client confirms this PaymentIntent
    elif inv["status"] == "open":
        attempt_payment(ctx, inv)
    return sub


def _precheck_payment(ctx: Ctx, customer: JSON, pm_id: str | None, payment_behavior: str) -> None:
    """``error_if_incomplete``: refuse up front, creating nothing, when payment cannot succeed."""
    if payment_behavior != "error_if_incomplete":
        return
    pm_id = (
        pm_id
        or customer["invoice_settings"]["default_payment_method"]
        or customer.get("default_source")
    )
    pm = ctx.store.get("payment_method", pm_id) if pm_id else None
    if pm is None:
        raise invalid_request(
            "This customer has no attached payment source or default payment method. Please "
            "consider adding a default payment method.",
            code="resource_missing",
        )
    card = card_of(ctx, pm)
    if card.decline_code:
        raise card_error(card.error_code, card.message, decline_code=card.decline_code)


def _schedule_cancel(ctx: Ctx, sub: JSON, now: int) -> None:
    sub["cancel_at_period_end"] = True
    sub["cancel_at"] = current_period(sub)[1]
    sub["canceled_at"] = now
    sub["cancellation_details"]["reason"] = "cancellation_requested"


def schedule_cancel(ctx: Ctx, sub: JSON, *, at_period_end: bool) -> None:
    """``cancel_at_period_end`` on (with ``cancel_at``/``canceled_at``) or off."""
    now = ctx.state.now_for(sub)
    if at_period_end:
        _schedule_cancel(ctx, sub, now)
    else:
        sub["cancel_at_period_end"] = False
        sub["cancel_at"] = None
        sub["canceled_at"] = None
        sub["cancellation_details"]["reason"] = None


def cancel_now(
    ctx: Ctx,
    sub: JSON,
    *,
    reason: str = "cancellation_requested",
    comment: str | None = None,
    feedback: str | None = None,
) -> None:
    """End a subscription immediately: ``customer.subscription.deleted``."""
    now = ctx.state.now_for(sub)
    sub["status"] = "canceled"
    sub["ended_at"] = now
    if sub["canceled_at"] is None or reason != "cancellation_requested":
        sub["canceled_at"] = now
    details = sub["cancellation_details"]
    details["reason"] = reason
    if comment is not None:
        details["comment"] = comment
    if feedback is not None:
        details["feedback"] = feedback
    # Pending prorations die with the subscription; open invoices stay open but stop retrying.
    for pending in pending_items(ctx, sub):
        ctx.store.priv(pending["id"])["deleted"] = True
    for inv in ctx.store.all("invoice"):
        if inv["status"] == "open" and subscription_of(ctx, inv) is sub:
            inv["next_payment_attempt"] = None
    emit(ctx, "customer.subscription.deleted", sub)


def pending_items(ctx: Ctx, sub: JSON) -> list[JSON]:
    """Invoice items (prorations) waiting for the subscription's next invoice, oldest first."""
    return [
        ii
        for ii in reversed(ctx.store.all("invoiceitem"))
        if ii["invoice"] is None
        and (ii.get("parent") or {}).get("subscription_details", {}).get("subscription")
        == sub["id"]
    ]


def add_proration(
    ctx: Ctx,
    sub: JSON,
    *,
    amount: int,
    description: str,
    price: JSON,
    quantity: int,
    period: tuple[int, int],
    item_id: str | None,
) -> JSON:
    now = ctx.state.now_for(sub)
    ii: JSON = {
        "id": new_id("ii_"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": sub["currency"],
        "customer": sub["customer"],
        "customer_account": None,
        "date": now,
        "description": description,
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": amount,
        "parent": {
            "subscription_details": {"subscription": sub["id"], "subscription_item": item_id},
            "type": "subscription_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "proration": True,
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": sub["test_clock"],
    }
    ctx.store.put(ii)
    emit(ctx, "invoiceitem.created", ii)
    return ii


def invoice_pending(
    ctx: Ctx,
    sub: JSON,
    *,
    billing_reason: str,
    period: tuple[int, int] | None,
    include_items: bool,
    usage_period: tuple[int, int] | None = None,
    usage_through_end: bool = False,
) -> JSON:
    """Create, finalize and collect an invoice for the subscription (cycle or update).

    ``include_items`` bills the licensed items for the current period (metered ones as 0
    lines); ``usage_period`` bills each metered item's usage over that ended period instead."""
    start, end = current_period(sub)
    now = ctx.state.now_for(sub)
    inv = new_invoice(
        ctx,
        customer_id=sub["customer"],
        subscription=sub,
        billing_reason=billing_reason,
        period_start=period[0] if period else now,
        period_end=period[1] if period else now,
        currency=sub["currency"],
        collection_method=sub["collection_method"],
        days_until_due=sub["days_until_due"],
    )
    for pending in pending_items(ctx, sub):
        pending["invoice"] = inv["id"]
        add_line(
            inv,
            amount=int(pending["amount"]),
            description=str(pending["description"]),
            quantity=int(pending["quantity"]),
            price=ctx.store.get("price", pending["pricing"]["price_details"]["price"]),
            period=(pending["period"]["start"], pending["period"]["end"]),
            proration=bool(pending["proration"]),
            subscription=sub["id"],
            invoice_item=pending["id"],
        )
    for item in items_of(sub):
        if is_metered(item["price"]) and usage_period is not None:
            window = (usage_since(ctx, sub, item, usage_period[0]), usage_period[1])
            add_usage_line(ctx, inv, sub, item, window, through_end=usage_through_end)
        elif include_items:
            add_line(
                inv,
                amount=item_amount(item),
                description=describe(ctx, item),
                quantity=int(item["quantity"] or 0),
                price=item["price"],
                period=(start, end),
                proration=False,
                subscription=sub["id"],
                subscription_item=item["id"],
            )
    for item in items_of(sub):
        if is_metered(item["price"]) and usage_period is not None:
            # Billed up to the period end: the next window starts there.
            ctx.store.priv(item["id"])["usage_from"] = usage_period[1]
    if ctx.previews is not None:
        ctx.previews.append(inv)  # a preview: the draft is what was asked for
        return inv
    before = snapshot(sub)
    sub["latest_invoice"] = inv["id"]
    emit_update(ctx, "customer.subscription.updated", sub, before)
    announce(ctx, inv)
    finalize(ctx, inv)
    if inv["status"] == "open" and sub["collection_method"] == "charge_automatically":
        collect(ctx, sub, inv)
    return inv


def collect(ctx: Ctx, sub: JSON, inv: JSON) -> None:
    """An automatic payment attempt, with the dunning consequences of a failure."""
    failure = attempt_payment(ctx, inv, on_failure=lambda failed: schedule_retry(ctx, sub, failed))
    if failure is None:
        return
    dun(ctx, sub, inv)


def schedule_retry(ctx: Ctx, sub: JSON, failed: JSON) -> None:
    """After a failed attempt: retry N happens retry_days[N-1] days after the previous one."""
    policy = ctx.state.config.dunning
    failures = int(failed["attempt_count"])
    exhausted = failures > len(policy.retry_days)
    failed["next_payment_attempt"] = (
        None if exhausted else ctx.state.now_for(sub) + policy.retry_days[failures - 1] * 86400
    )


def dun(ctx: Ctx, sub: JSON, inv: JSON) -> None:
    """What a failed automatic payment does to the subscription: ``past_due``, and when the
    retries are exhausted the policy's final action."""
    policy = ctx.state.config.dunning
    exhausted = inv["next_payment_attempt"] is None
    if sub["status"] in ("active", "trialing"):
        before = snapshot(sub)
        sub["status"] = "past_due"
        emit_update(ctx, "customer.subscription.updated", sub, before)
    if not exhausted:
        return
    if policy.mark_uncollectible:
        mark_uncollectible(ctx, inv)
    if policy.final_action == "cancel":
        cancel_now(ctx, sub, reason="payment_failed")
    elif sub["status"] != "unpaid":
        before = snapshot(sub)
        sub["status"] = "unpaid"
        emit_update(ctx, "customer.subscription.updated", sub, before)


def renew(ctx: Ctx, sub: JSON) -> None:
    """Period end: move the items to the next period and bill it."""
    private = ctx.store.priv(sub["id"])
    old = current_period(sub)
    private["index"] = int(private["index"]) + 1
    interval, count = recurring_of(items_of(sub)[0]["price"])
    start, end = period_bounds(int(private["anchor"]), interval, count, int(private["index"]))
    before = snapshot(sub)
    set_period(ctx, sub, start, end)
    emit_update(ctx, "customer.subscription.updated", sub, before)
    invoice_pending(
        ctx,
        sub,
        billing_reason="subscription_cycle",
        period=old,
        include_items=True,
        usage_period=old,
    )


def end_as_scheduled(ctx: Ctx, sub: JSON) -> None:
    """``cancel_at`` reached: a final invoice bills the metered usage (and pending prorations)
    of the last period, then the subscription ends."""
    if metered_items(sub) and sub["status"] in ("active", "past_due"):
        now = ctx.state.now_for(sub)
        start = current_period(sub)[0]
        invoice_pending(
            ctx,
            sub,
            billing_reason="subscription_cycle",
            period=(start, now),
            include_items=False,
            usage_period=(start, now),
        )
    cancel_now(ctx, sub, reason="cancellation_requested")


def end_trial(ctx: Ctx, sub: JSON) -> None:
    """Trial over: bill the first paid period (or cancel/pause without a payment method)."""
    private = ctx.store.priv(sub["id"])
    has_pm = default_payment_method(ctx, {"customer": sub["customer"], "parent": _parent(sub)})
    behavior = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
    if has_pm is None and behavior == "cancel":
        cancel_now(ctx, sub, reason="cancellation_requested")
        return
    before = snapshot(sub)
    if has_pm is None and behavior == "pause":
        sub["status"] = "paused"
        emit_update(ctx, "customer.subscription.updated", sub, before)
        emit(ctx, "customer.subscription.paused", sub)
        return
    trial_end = int(sub["trial_end"])
    private.update(anchor=trial_end, index=0)
    interval, count = recurring_of(items_of(sub)[0]["price"])
    set_period(ctx, sub, *period_bounds(trial_end, interval, count, 0))
    sub["status"] = "active"
    emit_update(ctx, "customer.subscription.updated", sub, before)
    invoice_pending(
        ctx,
        sub,
        billing_reason="subscription_cycle",
        period=(int(sub["trial_start"]), trial_end),
        include_items=True,
    )


def _parent(sub: JSON) -> JSON:
    return {"subscription_details": {"subscription": sub["id"]}}


def expire_incomplete(ctx: Ctx, sub: JSON) -> None:
    """23 hours without a first payment: ``incomplete_expired`` (terminal), invoice voided."""
    sub["status"] = "incomplete_expired"
    sub["ended_at"] = ctx.state.now_for(sub)
    latest = ctx.store.get("invoice", sub["latest_invoice"] or "")
    if latest is not None and latest["status"] == "open":
        void(ctx, latest)
    emit(ctx, "customer.subscription.deleted", sub)


def retry(ctx: Ctx, inv: JSON) -> None:
    sub = subscription_of(ctx, inv)
    if sub is None or sub["status"] in ENDED:
        inv["next_payment_attempt"] = None
        return
    collect(ctx, sub, inv)


def prorate_change(
    ctx: Ctx,
    sub: JSON,
    item: JSON,
    new_price: JSON,
    new_quantity: int | None,
    when: int,
) -> list[JSON]:
    """Credit the unused time of the old price/quantity and charge the new one until period end."""
    start, end = current_period(sub)
    old_price = item["price"]
    # Each side is prorated on its whole amount (unit amount * quantity), then rounded.
    credited = prorated(item_amount(item), start, end, when)
    charged = prorated(
        item_amount({"price": new_price, "quantity": new_quantity}), start, end, when
    )
    created: list[JSON] = []
    if credited:
        created.append(
            add_proration(
                ctx,
                sub,
                amount=-credited,
                description=f"Unused time on {item['quantity']} {TIMES} "
                f"{product_name(ctx, old_price)} after {_date(when)}",
                price=old_price,
                quantity=int(item["quantity"] or 0),
                period=(when, end),
                item_id=item["id"],
            )
        )
    if charged:
        created.append(
            add_proration(
                ctx,
                sub,
                amount=charged,
                description=f"Remaining time on {new_quantity} {TIMES} "
                f"{product_name(ctx, new_price)} after {_date(when)}",
                price=new_price,
                quantity=int(new_quantity or 0),
                period=(when, end),
                item_id=item["id"],
            )
        )
    return created


def _date(timestamp: int) -> str:
    return utc_datetime(timestamp).strftime("%d %b %Y")
