"""Subscriptions and subscription items.

Routes: ``POST /v1/subscriptions``, ``GET|POST|DELETE /v1/subscriptions/{id}``,
``POST /v1/subscriptions/{id}/resume``, ``GET /v1/subscriptions`` (``status=all|ended|…``,
``customer``, ``price``, ``test_clock``), ``GET /v1/subscriptions/search``,
``GET /v1/subscription_items?subscription=…``, ``GET /v1/subscription_items/{id}``.

Updates follow Stripe's rules: swapping a price mid-period creates proration invoice items
(``proration_behavior=create_prorations``, billed on the next invoice), bills them at once
(``always_invoice``) or not at all (``none``); changing the interval resets the billing cycle to
now and invoices immediately. ``cancel_at_period_end`` schedules the end; ``DELETE`` ends it now
(``invoice_now=true``: a final invoice with pending prorations and the unbilled metered usage).
``discounts=[{promotion_code}|{coupon}]`` on create and update redeems codes and coupons (see
:mod:`discounts`; ``discounts=`` clears them; a code already applied is kept, not redeemed twice).
A metered price is an item without ``quantity`` ("You cannot set the quantity for metered
plans."), never prorated; how its usage is billed is described in :mod:`billing`.
Parameters Stripe honours and the emulator does not implement (``_UNSUPPORTED``, an anchor other
than ``unchanged``, ``trial_end`` outside a trial) are refused with a 400, never ignored.
"""

from __future__ import annotations

from stripe_emulator import discounts
from stripe_emulator.billing import (
    ENDED,
    TIMES,
    ItemSpec,
    add_proration,
    build_item,
    cancel_now,
    check_prices,
    current_period,
    end_trial,
    invoice_pending,
    item_amount,
    items_of,
    metered_items,
    pending_items,
    plan_from_price,
    product_name,
    prorate_change,
    recurring_of,
    schedule_cancel,
    start_subscription,
)
from stripe_emulator.errors import (
    card_error,
    invalid_request,
    resource_missing,
    unsupported,
)
from stripe_emulator.events import emit, emit_update
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.metering import is_metered
from stripe_emulator.periods import period_bounds, prorated
from stripe_emulator.resources.payment_methods import card_of, require_attached
from stripe_emulator.routing import Route
from stripe_emulator.search import search
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

PAYMENT_BEHAVIORS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)
PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
#: Accepted as on Stripe. ``off_session`` is honoured by construction: emulated cards never ask
#: for authentication, so a customer who is not present changes nothing.
_ACCEPTED = ("expand", "off_session")
#: Stripe parameters the emulator does not implement: refused with a 400, never ignored.
_UNSUPPORTED = (
    "payment_settings",
    "automatic_tax",
    "default_tax_rates",
    "application_fee_percent",
    "on_behalf_of",
    "transfer_data",
    "billing_thresholds",
    "pending_invoice_item_interval",
    "billing_mode",
    "currency",
    "pause_collection",
    "add_invoice_items",
    "backdate_start_date",
    "billing_schedules",
)
_UNSUPPORTED_ITEM = ("tax_rates", "discounts", "billing_thresholds")


def _refuse(p: Params, names: tuple[str, ...]) -> None:
    for name in names:
        if p.has(name):
            raise unsupported(p.path(name))


def _quantity(item: Params, price: JSON, default: int | None) -> int | None:
    """An item's quantity: none for a metered price (Stripe refuses one), else given or
    ``default``."""
    quantity = item.integer("quantity", minimum=0)
    if is_metered(price):
        if quantity is not None:
            raise invalid_request(
                "You cannot set the quantity for metered plans.", param=item.path("quantity")
            )
        return None
    return (1 if default is None else default) if quantity is None else quantity


def _item_specs(ctx: Ctx, p: Params) -> list[ItemSpec]:
    specs = []
    for item in p.hashes("items", required=True):
        item.only(("price", "quantity", "metadata", *_UNSUPPORTED_ITEM))
        _refuse(item, _UNSUPPORTED_ITEM)
        price_id = item.string("price", required=True)
        price = ctx.store.require("price", price_id, param=item.path("price"))
        specs.append(
            ItemSpec(price=price, quantity=_quantity(item, price, 1), metadata=item.metadata())
        )
    return specs


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            *_ACCEPTED,
            *_UNSUPPORTED,
            "customer",
            "items",
            "default_payment_method",
            "metadata",
            "trial_period_days",
            "trial_end",
            "trial_from_plan",
            "trial_settings",
            "payment_behavior",
            "collection_method",
            "days_until_due",
            "description",
            "cancel_at_period_end",
            "cancel_at",
            "proration_behavior",
            "billing_cycle_anchor",
            "discounts",
        )
    )
    # The first period always starts now: no anchor elsewhere, no backdating.
    _refuse(p, (*_UNSUPPORTED, "billing_cycle_anchor"))
    customer_id = p.string("customer", required=True)
    assert customer_id is not None
    ctx.store.require("customer", customer_id, param="customer")
    specs = _item_specs(ctx, p)
    check_prices(specs)
    now = ctx.state.now_for_customer(customer_id)
    refs = discounts.references(ctx, p) or []
    discounts.check(
        ctx,
        refs,
        discounts.Purchase(
            customer=customer_id,
            currency=str(specs[0].price["currency"]),
            products=tuple(str(spec.price["product"]) for spec in specs),
            amount=sum(item_amount({"price": s.price, "quantity": s.quantity}) for s in specs),
            now=now,
        ),
    )
    trial_end = p.timestamp_or_now("trial_end", now)
    days = p.integer("trial_period_days", minimum=0, maximum=730)
    if days is None and p.boolean("trial_from_plan", default=False):
        days = (specs[0].price["recurring"] or {}).get("trial_period_days")
    if trial_end is None and days:
        trial_end = now + int(days) * 86400
    if trial_end is not None and trial_end != now and trial_end < now:
        raise invalid_request("Invalid timestamp: must be in the future.", param="trial_end")
    pm_ref = p.string("default_payment_method")
    pm_id = (
        require_attached(ctx, pm_ref, customer_id, param="default_payment_method")["id"]
        if pm_ref
        else None
    )
    collection = p.string("collection_method", choices=("charge_automatically", "send_invoice"))
    days_until_due = p.integer("days_until_due", minimum=0)
    if collection == "send_invoice" and days_until_due is None:
        raise invalid_request(
            "Missing required param: days_until_due.",
            param="days_until_due",
            code="parameter_missing",
        )
    end_behavior = "create_invoice"
    trial_settings = p.sub("trial_settings")
    if trial_settings is not None:
        behavior = trial_settings.sub("end_behavior", required=True)
        assert behavior is not None
        end_behavior = (
            behavior.string(
                "missing_payment_method",
                required=True,
                choices=("cancel", "create_invoice", "pause"),
            )
            or end_behavior
        )
    sub = start_subscription(
        ctx,
        customer_id=customer_id,
        specs=specs,
        default_payment_method=pm_id,
        metadata=merge_metadata({}, p.metadata(), replace=True),
        trial_end=trial_end,
        payment_behavior=p.string("payment_behavior", choices=PAYMENT_BEHAVIORS)
        or "allow_incomplete",
        collection_method=collection or "charge_automatically",
        days_until_due=days_until_due,
        description=p.string("description"),
        cancel_at_period_end=bool(p.boolean("cancel_at_period_end", default=False)),
        missing_payment_method=end_behavior,
        discounts=refs,
    )
    cancel_at = p.integer("cancel_at", minimum=0)
    if cancel_at is not None:
        before = snapshot(sub)
        sub["cancel_at"] = cancel_at
        emit_update(ctx, "customer.subscription.updated", sub, before)
    return sub


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("subscription", id)


def _find_item(sub: JSON, item_id: str, param: str) -> JSON:
    for item in items_of(sub):
        if item["id"] == item_id:
            return item
    raise resource_missing("subscription item", item_id, param=param)


def _apply_items(ctx: Ctx, sub: JSON, p: Params, behavior: str, when: int) -> None:
    """Apply ``items[]`` changes, with prorations unless trialing or ``proration_behavior=none``."""
    changes = p.hashes("items")
    if not changes:
        return
    current = list(items_of(sub))
    old_interval = recurring_of(current[0]["price"])
    removed: list[JSON] = []
    updates: list[tuple[JSON, JSON, int | None, dict[str, str] | None]] = []
    additions: list[ItemSpec] = []
    for change in changes:
        change.only(
            (
                "id",
                "price",
                "quantity",
                "metadata",
                "deleted",
                "clear_usage",
                *_UNSUPPORTED_ITEM,
            )
        )
        _refuse(change, _UNSUPPORTED_ITEM)
        item_id = change.string("id")
        if item_id:
            item = _find_item(sub, item_id, change.path("id"))
            if change.boolean("deleted", default=False):
                removed.append(item)
                continue
            price_id = change.string("price")
            price = (
                ctx.store.require("price", price_id, param=change.path("price"))
                if price_id
                else item["price"]
            )
            quantity = _quantity(change, price, item["quantity"])
            updates.append((item, price, quantity, change.metadata()))
        else:
            price_id = change.string("price", required=True)
            price = ctx.store.require("price", price_id, param=change.path("price"))
            additions.append(ItemSpec(price, _quantity(change, price, 1), change.metadata()))
    remaining = [
        ItemSpec(price, quantity) for (_item, price, quantity, _meta) in updates
    ] + additions
    kept = [i for i in current if i not in removed and all(i is not u[0] for u in updates)]
    check_prices([ItemSpec(i["price"], i["quantity"]) for i in kept] + remaining)
    if not kept and not remaining:
        raise invalid_request("A subscription must have at least one item.", param="items")

    prorate = behavior != "none" and sub["status"] in ("active", "past_due")
    new_interval = recurring_of((remaining or [ItemSpec(kept[0]["price"])])[0].price)
    interval_changed = new_interval != old_interval
    start, end = current_period(sub)
    if prorate:
        for item, price, quantity, _meta in updates:
            if interval_changed:
                _credit_unused(ctx, sub, item, when)
            elif price["id"] != item["price"]["id"] or quantity != item["quantity"]:
                prorate_change(ctx, sub, item, price, quantity, when)
        for item in removed:
            _credit_unused(ctx, sub, item, when)
        if not interval_changed:
            for spec in additions:
                charged = prorated(
                    item_amount({"price": spec.price, "quantity": spec.quantity}), start, end, when
                )  # 0 for a metered price: its usage is billed in arrears
                if charged:
                    add_proration(
                        ctx,
                        sub,
                        amount=charged,
                        description=f"Remaining time on {spec.quantity} {TIMES} "
                        f"{product_name(ctx, spec.price)}",
                        price=spec.price,
                        quantity=int(spec.quantity or 0),
                        period=(when, end),
                        item_id=None,
                    )
    for item, price, quantity, metadata in updates:
        if price["id"] != item["price"]["id"]:
            # Classic billing mode bills a metered price only for usage after the switch.
            ctx.store.priv(item["id"])["usage_from"] = when
        item["price"] = snapshot(price)
        item["plan"] = plan_from_price(price)
        item["quantity"] = quantity
        item["metadata"] = merge_metadata(item["metadata"], metadata, replace=False)
    for item in removed:
        sub["items"]["data"].remove(item)
        ctx.store.remove("subscription_item", item["id"])
    for spec in additions:
        sub["items"]["data"].append(build_item(ctx, sub["id"], spec, (start, end), when))

    if interval_changed and sub["status"] in ("active", "past_due"):
        # A new interval resets the billing cycle anchor to now and bills the new period at once.
        interval, count = new_interval
        ctx.store.priv(sub["id"]).update(anchor=when, index=0)
        sub["billing_cycle_anchor"] = when
        for item in items_of(sub):
            item["current_period_start"], item["current_period_end"] = period_bounds(
                when, interval, count, 0
            )
        ctx.store.priv(sub["id"])["invoice_now"] = "cycle"
    elif prorate and behavior == "always_invoice" and pending_items(ctx, sub):
        ctx.store.priv(sub["id"])["invoice_now"] = "prorations"


def _credit_unused(ctx: Ctx, sub: JSON, item: JSON, when: int) -> None:
    start, end = current_period(sub)
    credited = prorated(item_amount(item), start, end, when)
    if credited:
        add_proration(
            ctx,
            sub,
            amount=-credited,
            description=f"Unused time on {item['quantity']} {TIMES} "
            f"{product_name(ctx, item['price'])}",
            price=item["price"],
            quantity=int(item["quantity"] or 0),
            period=(when, end),
            item_id=item["id"],
        )


def update(ctx: Ctx, p: Params, id: str) -> JSON:
    """``POST /v1/subscriptions/{id}``; invoice previews run it too (see :mod:`previews`)."""
    p.only(
        (
            *_ACCEPTED,
            *_UNSUPPORTED,
            "items",
            "proration_behavior",
            "proration_date",
            "cancel_at_period_end",
            "cancel_at",
            "metadata",
            "default_payment_method",
            "trial_end",
            "payment_behavior",
            "billing_cycle_anchor",
            "description",
            "collection_method",
            "days_until_due",
            "cancellation_details",
            "trial_from_plan",
            "trial_settings",
            "discounts",
        )
    )
    sub = ctx.store.require("subscription", id)
    if sub["status"] in ENDED and set(p.data) - {"metadata", "cancellation_details", "expand"}:
        raise invalid_request(
            "A canceled subscription can only update its cancellation_details and metadata.",
        )
    _refuse(p, (*_UNSUPPORTED, "trial_from_plan", "trial_settings"))
    if p.has("billing_cycle_anchor") and p.data["billing_cycle_anchor"] != "unchanged":
        raise unsupported("billing_cycle_anchor", " (only `unchanged`)")
    if p.has("trial_end") and sub["status"] != "trialing":
        raise unsupported("trial_end", " on a subscription that is not trialing")
    before = snapshot(sub)
    now = ctx.state.now_for(sub)
    behavior = p.string("proration_behavior", choices=PRORATION_BEHAVIORS) or "create_prorations"
    payment_behavior = p.string("payment_behavior", choices=PAYMENT_BEHAVIORS) or "allow_incomplete"
    when = p.integer("proration_date", minimum=0) or now
    if p.has("default_payment_method"):
        ref = p.string("default_payment_method")
        sub["default_payment_method"] = (
            require_attached(ctx, ref, sub["customer"], param="default_payment_method")["id"]
            if ref
            else None
        )
    if payment_behavior == "error_if_incomplete" and p.has("items") and behavior != "none":
        _precheck_card(ctx, sub)
    refs = discounts.references(ctx, p)
    _apply_items(ctx, sub, p, behavior, when)
    if refs is not None:
        _set_discounts(ctx, sub, refs, now)
    if p.has("cancel_at_period_end"):
        schedule_cancel(ctx, sub, at_period_end=bool(p.boolean("cancel_at_period_end")))
    if p.has("cancel_at"):
        cancel_at = p.integer("cancel_at", minimum=0)
        sub["cancel_at"] = cancel_at
        sub["cancel_at_period_end"] = False
        sub["canceled_at"] = now if cancel_at is not None else None
        sub["cancellation_details"]["reason"] = "cancellation_requested" if cancel_at else None
    details = p.sub("cancellation_details")
    if details is not None:
        details.only(("comment", "feedback"))
        for key in ("comment", "feedback"):
            if details.has(key):
                sub["cancellation_details"][key] = details.string(key)
    for key in ("description",):
        if p.has(key):
            sub[key] = p.string(key)
    if p.has("collection_method"):
        sub["collection_method"] = p.string(
            "collection_method", choices=("charge_automatically", "send_invoice")
        )
    if p.has("days_until_due"):
        sub["days_until_due"] = p.integer("days_until_due", minimum=0)
    sub["metadata"] = merge_metadata(sub["metadata"], p.metadata(), replace=False)
    trial_end = p.timestamp_or_now("trial_end", now)
    invoice_now = ctx.store.priv(id).pop("invoice_now", None)
    if trial_end is not None and sub["status"] == "trialing":
        if trial_end <= now:
            emit_update(ctx, "customer.subscription.updated", sub, before)
            sub["trial_end"] = now
            end_trial(ctx, sub)
            return sub
        sub["trial_end"] = trial_end
        for item in items_of(sub):
            item["current_period_end"] = trial_end
        ctx.store.priv(id)["anchor"] = trial_end
    emit_update(ctx, "customer.subscription.updated", sub, before)
    if invoice_now == "cycle":
        invoice_pending(
            ctx, sub, billing_reason="subscription_update", period=(when, when), include_items=True
        )
    elif invoice_now == "prorations":
        invoice_pending(
            ctx, sub, billing_reason="subscription_update", period=(when, when), include_items=False
        )
    return sub


def _set_discounts(ctx: Ctx, sub: JSON, refs: list[discounts.Reference], now: int) -> None:
    """An update's ``discounts``: the new ones are checked against the subscription as it is
    after the update (its items, its recurring amount), then they replace the current ones."""
    current = [d for d in (ctx.store.get("discount", i) for i in sub["discounts"]) if d]
    new = [r for r in refs if not any(discounts.same_source(d, r) for d in current)]
    discounts.check(
        ctx,
        new,
        discounts.Purchase(
            customer=sub["customer"],
            currency=str(sub["currency"]),
            products=tuple(str(item["price"]["product"]) for item in items_of(sub)),
            amount=sum(item_amount(item) for item in items_of(sub)),
            now=now,
        ),
    )
    discounts.set_subscription_discounts(ctx, sub, refs)


def _precheck_card(ctx: Ctx, sub: JSON) -> None:
    customer = ctx.store.require("customer", sub["customer"])
    pm_id = sub["default_payment_method"] or customer["invoice_settings"]["default_payment_method"]
    pm = ctx.store.get("payment_method", pm_id) if pm_id else None
    if pm is not None:
        card = card_of(ctx, pm)
        if card.decline_code:
            raise card_error(card.error_code, card.message, decline_code=card.decline_code)


def _cancel(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("invoice_now", "prorate", "cancellation_details", "expand"))
    sub = ctx.store.require("subscription", id)
    if sub["status"] in ENDED:
        # Stripe treats an ended subscription as gone for cancellation purposes.
        raise resource_missing("subscription", id)
    if p.boolean("prorate", default=False) and sub["status"] in ("active", "past_due"):
        now = ctx.state.now_for(sub)
        for item in items_of(sub):
            _credit_unused(ctx, sub, item, now)
    billable = sub["status"] in ("active", "past_due")
    if p.boolean("invoice_now", default=False) and (
        pending_items(ctx, sub) or (billable and metered_items(sub))
    ):
        # The final invoice: pending prorations and the unbilled metered usage of this period.
        now = ctx.state.now_for(sub)
        invoice_pending(
            ctx,
            sub,
            billing_reason="subscription_update",
            period=(now, now),
            include_items=False,
            usage_period=(current_period(sub)[0], now) if billable else None,
            # "any un-invoiced metered usage": events stamped this very second included.
            usage_through_end=True,
        )
    details = p.sub("cancellation_details")
    cancel_now(
        ctx,
        sub,
        reason="cancellation_requested",
        comment=details.string("comment") if details else None,
        feedback=details.string("feedback") if details else None,
    )
    return sub


def _resume(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("billing_cycle_anchor", "proration_behavior", "proration_date", "expand"))
    if p.has("billing_cycle_anchor") and p.data["billing_cycle_anchor"] != "now":
        # Resuming always restarts the billing cycle now.
        raise unsupported("billing_cycle_anchor", " (only `now`)")
    sub = ctx.store.require("subscription", id)
    if sub["status"] != "paused":
        raise invalid_request("Only paused subscriptions can be resumed.")
    before = snapshot(sub)
    now = ctx.state.now_for(sub)
    interval, count = recurring_of(items_of(sub)[0]["price"])
    ctx.store.priv(id).update(anchor=now, index=0)
    sub["billing_cycle_anchor"] = now
    start, end = period_bounds(now, interval, count, 0)
    for item in items_of(sub):
        item["current_period_start"], item["current_period_end"] = start, end
        ctx.store.priv(item["id"])["usage_from"] = now  # nothing is billed for the pause
    sub["status"] = "active"
    emit_update(ctx, "customer.subscription.updated", sub, before)
    emit(ctx, "customer.subscription.resumed", sub)
    invoice_pending(
        ctx, sub, billing_reason="subscription_cycle", period=(now, now), include_items=True
    )
    return sub


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (*PAGINATION, "customer", "price", "status", "test_clock", "created", "collection_method")
    )
    customer, price, clock = p.string("customer"), p.string("price"), p.string("test_clock")
    status = p.string(
        "status",
        choices=(
            "active",
            "all",
            "canceled",
            "ended",
            "incomplete",
            "incomplete_expired",
            "past_due",
            "paused",
            "trialing",
            "unpaid",
        ),
    )
    created = created_filter(p)

    def status_ok(sub: JSON) -> bool:
        if status is None:
            return sub["status"] not in ENDED
        if status == "all":
            return True
        if status == "ended":
            return sub["status"] in ENDED
        return bool(sub["status"] == status)

    items = ctx.store.all(
        "subscription",
        lambda s: (
            status_ok(s)
            and (customer is None or s["customer"] == customer)
            and (clock is None or s["test_clock"] == clock)
            and (price is None or any(i["price"]["id"] == price for i in items_of(s)))
            and created(s)
        ),
    )
    return paginate(items, p, "/v1/subscriptions")


def _search(ctx: Ctx, p: Params) -> JSON:
    return search(ctx, p, "subscription", "/v1/subscriptions/search")


def _items_list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "subscription"))
    sub_id = p.string("subscription", required=True)
    sub = ctx.store.require("subscription", sub_id, param="subscription")
    return paginate(
        list(reversed(items_of(sub))), p, f"/v1/subscription_items?subscription={sub_id}"
    )


def _item_retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("subscription_item", id)


ROUTES = [
    Route("POST", "/v1/subscriptions", _create),
    Route("GET", "/v1/subscriptions", _list),
    Route("GET", "/v1/subscriptions/search", _search),
    Route("GET", "/v1/subscriptions/{id}", _retrieve),
    Route("POST", "/v1/subscriptions/{id}", update),
    Route("DELETE", "/v1/subscriptions/{id}", _cancel),
    Route("POST", "/v1/subscriptions/{id}/resume", _resume),
    Route("GET", "/v1/subscription_items", _items_list),
    Route("GET", "/v1/subscription_items/{id}", _item_retrieve),
]
