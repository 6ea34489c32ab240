"""Subscriptions: direct creation, cancel / resume / change plan, status and invoices.

Every write goes to Stripe first with a key derived from the subscription's stored ``version``
(so a double-submit shares the key, while a later, different request gets a new one), and the
answer goes through the one reconciler.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from revenue_engine.auth import Principal
from revenue_engine.clock import as_utc, utcnow
from revenue_engine.documents import (
    AddonKind,
    AuditEntry,
    AuditSource,
    BillingInterval,
    Subscription,
    SubscriptionPlan,
    UsageCounter,
)
from revenue_engine.errors import (
    FieldProblem,
    NoActiveSubscription,
    NoPaymentMethod,
    NotScheduledToCancel,
    PaymentDeclined,
    ServiceUnavailable,
    StripeNotFound,
    ValidationFailed,
)
from revenue_engine.gateway import (
    CustomerCalls,
    InvoiceCalls,
    MeterEventCalls,
    PromotionCalls,
    StripeApi,
    SubscriptionCalls,
    idempotency_key,
)
from revenue_engine.gateway.models import StripeSubscription
from revenue_engine.services import promotions
from revenue_engine.services.catalog import ChosenPrice, ensure_plan_prices
from revenue_engine.services.checkout import expire_open_sessions
from revenue_engine.services.clock import subscription_now
from revenue_engine.services.customers import get_customer, get_or_create_customer
from revenue_engine.services.meter_reports import flush_subscription_reports
from revenue_engine.services.purchase import (
    ensure_no_live_subscription,
    live_subscription,
    purchasable_plan,
    purchase_lease,
)
from revenue_engine.services.reconcile import apply_subscription
from revenue_engine.services.seats import base_item, held_seats, seats_for, with_seats
from revenue_engine.settings import Settings

#: Audit kind of a declined direct subscription (counted into the next attempt's key).
DECLINED = "subscription.declined"


class ProrationBehavior(enum.StrEnum):
    CREATE_PRORATIONS = "create_prorations"
    ALWAYS_INVOICE = "always_invoice"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    number: str | None
    status: str | None
    amount_due: int
    amount_paid: int
    currency: str
    created: datetime
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    #: Before discounts; ``total`` after them; ``discount_amount`` what they took off.
    subtotal: int = 0
    total: int = 0
    discount_amount: int = 0


async def _require_live(principal: Principal) -> Subscription:
    live = await live_subscription(principal.organization_id)
    if live is None:
        raise NoActiveSubscription()
    return live


async def create_subscription(
    gateway: StripeApi,
    principal: Principal,
    *,
    settings: Settings,
    plan_uid: str,
    interval: BillingInterval,
    overages: list[str],
    trial_days: int | None,
    request_id: str | None,
    promotion_code: str | None = None,
    seats: int | None = None,
) -> Subscription:
    """Subscribe directly (no Checkout) with the customer's default payment method; a
    ``promotion_code`` is checked at Stripe first (see ``services.promotions``); a per-seat
    plan with ``seats`` (default its least)."""
    org = principal.organization_id
    problems: list[FieldProblem] = []
    code = promotions.normalize(promotion_code, problems)
    plan = await purchasable_plan(plan_uid, interval, overages, problems)
    quantity = seats_for(plan, seats, problems)
    if trial_days is not None and not 1 <= trial_days <= 730:
        problems.append(FieldProblem("trialDays", "trialDays must be between 1 and 730"))
    if problems:
        raise ValidationFailed("invalid subscription request", problems)
    keys = sorted(set(overages))
    promotion = None
    if code is not None:
        customer = await get_customer(principal)
        purchase = promotions.purchase_of(
            org,
            customer.stripe_customer_id if customer else None,
            plan,
            interval,
            keys,
            utcnow(),
            base_quantity=quantity,
        )
        promotion = await promotions.check_promotion_code(gateway, code, purchase)
    order = _Order(plan, interval, keys, trial_days, promotion, quantity)
    async with purchase_lease(org):
        return await _create_under_lease(gateway, settings, principal, order, request_id)


@dataclass(frozen=True, slots=True)
class _Order:
    """A direct subscription as asked and validated: the plan at an interval, the add-ons'
    keys (sorted), the trial, the checked promotion code and the seats."""

    plan: SubscriptionPlan
    interval: BillingInterval
    keys: list[str]
    trial_days: int | None
    promotion: promotions.Promotion | None
    seats: int


async def _create_under_lease(
    gateway: StripeApi,
    settings: Settings,
    principal: Principal,
    order: _Order,
    request_id: str | None,
) -> Subscription:
    """The purchase itself, under the organization's purchase lease (as in checkout)."""
    org = principal.organization_id
    # Counted before the live-subscription check (as in checkout): a twin that got past the
    # lease (one whose holder died) and stores its subscription after this count is refused by
    # the check, or else sends the same idempotency key.
    attempt = await Subscription.find({"organization_id": org}).count()
    await ensure_no_live_subscription(org)
    customer_id, default_pm = await _paying_customer(gateway, principal)
    # An open Checkout session could still be paid into a second subscription: expire it
    # first (one completed meanwhile is applied, and the check below refuses).
    await expire_open_sessions(gateway, org)
    await ensure_no_live_subscription(org)
    chosen = await ensure_plan_prices(gateway, settings, order.plan, order.interval, order.keys)
    params = _subscription_params(org, customer_id, order, with_seats(chosen, order.seats))
    key = await _purchase_key(org, order, attempt, default_pm)
    observed_at = utcnow()
    created = await _create_at_stripe(gateway, params, key, org, order, request_id)
    return await apply_subscription(
        created, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
    )


async def _paying_customer(gateway: CustomerCalls, principal: Principal) -> tuple[str, str]:
    """The organization's Stripe customer (created on first purchase) and what Stripe charges
    when the subscription names no method: the default payment method, else a card saved as
    the default source (the legacy Sources API). ``NoPaymentMethod`` when there is neither."""
    customer = await get_or_create_customer(gateway, principal)
    stripe_customer = await gateway.retrieve_customer(customer.stripe_customer_id)
    default_pm = stripe_customer.defaults().default
    if not default_pm:
        raise NoPaymentMethod()
    return customer.stripe_customer_id, default_pm


def _subscription_params(
    org: str, customer_id: str, order: _Order, chosen: list[ChosenPrice]
) -> dict[str, Any]:
    """Stripe's ``create subscription`` parameters for ``order`` at the ``chosen`` prices."""
    params: dict[str, Any] = {
        "customer": customer_id,
        # A metered add-on's price has no quantity: overage is on from the start.
        "items": [c.item() for c in chosen],
        "metadata": {
            "organization_id": org,
            "plan_uid": order.plan.uid,
            "interval": order.interval.value,
        },
        # Declines surface now as a typed error instead of an incomplete subscription.
        "payment_behavior": "error_if_incomplete",
        "expand": ["latest_invoice"],
    }
    if order.trial_days:
        params["trial_period_days"] = order.trial_days
    if order.promotion is not None:
        params["discounts"] = order.promotion.discounts()
    return params


async def _purchase_key(org: str, order: _Order, attempt: int, default_pm: str) -> str:
    """The idempotency key of the intent: this purchase, with this card, after so many
    subscriptions and declines — a retry after a decline (new card, or the same card topped
    up) is a new request to Stripe, a double-submit the same one."""
    declines = await AuditEntry.find({"organization_id": org, "kind": DECLINED}).count()
    intent: list[object] = [
        order.plan.uid,
        order.interval.value,
        order.keys,
        order.trial_days,
        attempt,
        default_pm,
        declines,
        # The seats are part of a per-seat purchase (other plans' keys stay as they were).
        *([order.seats] if order.plan.per_seat else []),
    ]
    if order.promotion is not None:
        intent.append(order.promotion.id)  # appended only: keys without a code stay as they were
    return idempotency_key(org, "subscription.create", *intent)


async def _create_at_stripe(
    gateway: SubscriptionCalls,
    params: dict[str, Any],
    key: str,
    org: str,
    order: _Order,
    request_id: str | None,
) -> StripeSubscription:
    """Create the subscription at Stripe; a decline is audited (it changes the next
    attempt's key) and re-raised."""
    try:
        with promotions.refused_by_stripe(order.promotion):
            return await gateway.create_subscription(params, key=key)
    except PaymentDeclined as exc:
        await AuditEntry(
            organization_id=org,
            kind=DECLINED,
            source=AuditSource.MUTATION,
            reference=request_id,
            changes={"decline_code": exc.decline_code, "plan_uid": order.plan.uid},
        ).insert()
        raise


async def cancel_subscription(
    gateway: StripeApi,
    principal: Principal,
    *,
    settings: Settings,
    at_period_end: bool,
    request_id: str | None,
) -> Subscription:
    """Cancel at the period end (Stripe bills the last period's usage on its final invoice), or
    now: then the period's billable usage is reported first and billed on a final invoice
    (``invoice_now``), so overage accepted up to the cancellation is not lost."""
    live = await _require_live(principal)
    org = principal.organization_id
    sid = live.stripe_subscription_id
    observed_at = utcnow()
    if at_period_end:
        key = idempotency_key(org, "subscription.cancel_at_period_end", sid, live.version)
        result = await gateway.update_subscription(sid, {"cancel_at_period_end": True}, key=key)
    else:
        metered = any(i.metered_feature for i in live.items)
        if metered:
            await _report_first(gateway, settings, live)
        key = idempotency_key(org, "subscription.cancel", sid, live.version)
        try:
            result = await gateway.cancel_subscription(sid, key=key, invoice_now=metered)
        except StripeNotFound:
            # Stripe keys do not cover DELETE: the twin of a double-submit that canceled it a
            # moment ago makes Stripe answer "no such (live) subscription". Its state is the
            # answer then.
            result = await gateway.retrieve_subscription(sid)
            if result.status != "canceled":
                raise
    return await apply_subscription(
        result, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
    )


async def _report_first(gateway: MeterEventCalls, settings: Settings, live: Subscription) -> None:
    """Report the subscription's billable usage before a change that ends its metered items'
    period; refuse the change while some of it could not be reported (Stripe unavailable)."""
    figures = await flush_subscription_reports(
        gateway, settings, live.stripe_subscription_id, period_start=live.current_period_start
    )
    if figures.failures:
        raise ServiceUnavailable(
            "the usage of this period could not be reported to Stripe yet; retry shortly"
        )


async def _period_overage(live: Subscription) -> list[tuple[str, int]]:
    """(feature, units) reported to Stripe in the current period, per metered feature."""
    if live.current_period_start is None:
        return []
    start = as_utc(live.current_period_start)
    rows = await UsageCounter.find(
        {"stripe_subscription_id": live.stripe_subscription_id, "period_start": start}
    ).to_list()
    return sorted((c.feature, c.reported) for c in rows if c.reported > 0)


async def resume_subscription(
    gateway: SubscriptionCalls, principal: Principal, *, request_id: str | None
) -> Subscription:
    live = await _require_live(principal)
    if not live.cancel_at_period_end and live.cancel_at is None:
        raise NotScheduledToCancel()
    sid = live.stripe_subscription_id
    key = idempotency_key(principal.organization_id, "subscription.resume", sid, live.version)
    observed_at = utcnow()
    result = await gateway.update_subscription(
        sid, {"cancel_at_period_end": False, "cancel_at": ""}, key=key
    )
    return await apply_subscription(
        result, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
    )


async def _kept_addons(live: Subscription, plan: SubscriptionPlan) -> list[str]:
    """The add-ons a plan change keeps when the caller names none: a pack by its key; the
    overage of a metered feature (its item names the feature) as the new plan's metered add-on
    of that feature — dropped when the new plan bills no overage for it (there it is
    unlimited, or a hard cap) or the organization switched it off."""
    old = await SubscriptionPlan.find_one({"uid": live.plan_uid}) if live.plan_uid else None
    kept: list[str] = []
    for item in live.items:
        key = item.overage_key
        if key is None:
            continue
        addon = old.addon(key) if old else None
        feature = item.metered_feature or (
            addon.feature if addon is not None and addon.kind is AddonKind.METERED else None
        )
        if feature is not None:
            counterpart = plan.metered_addon(feature)
            if counterpart is not None and feature not in live.overage_off:
                kept.append(counterpart.key)
        else:
            kept.append(key)
    return sorted(set(kept))


def _change_items(
    live: Subscription, chosen: list[ChosenPrice], *, same_interval: bool
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The item changes of a plan change, the metered features whose item it keeps, and those
    whose overage it switches off. The base item takes the new plan price; an add-on item
    whose price stays is left as it is (its quantity, and for a metered one the usage it
    carries); the others are deleted and
    the new prices added — except a metered item while the interval stays: Stripe bills a
    metered item that is removed or re-priced only for usage after the change, so the period's
    overage already reported would go unbilled. It stays to the end of the period (the
    period's overage price is the one it started with); ``services.overage`` swaps or removes
    it once the next period has begun. A feature whose overage the change drops is switched off
    meanwhile (usage beyond the new included quantity is refused)."""
    base_item = next((i for i in live.items if i.overage_key is None), None)
    base = chosen[0].item()
    items: list[dict[str, Any]] = [{"id": base_item.stripe_item_id, **base} if base_item else base]
    wanted = {c.stripe_price_id for c in chosen[1:]}
    billed = {c.addon.feature for c in chosen[1:] if c.metered and c.addon and c.addon.feature}
    kept: set[str] = set()
    held: set[str] = set()
    for item in live.items:
        if item is base_item:
            continue
        if item.stripe_price_id in wanted and item.stripe_price_id not in kept:
            kept.add(item.stripe_price_id)
        elif same_interval and item.metered_feature and item.metered_feature not in held:
            held.add(item.metered_feature)
        else:
            items.append({"id": item.stripe_item_id, "deleted": True})
    items.extend(
        c.item()
        for c in chosen[1:]
        if c.stripe_price_id not in kept
        and not (c.metered and c.addon is not None and c.addon.feature in held)
    )
    return items, sorted(held), sorted(held - billed)


@dataclass(frozen=True, slots=True)
class PlanChange:
    """A plan change as it is sent to Stripe: the plan, interval, add-on keys and seats, the
    item changes (``_change_items``), the metered features whose item it keeps to the period
    end, and those whose overage it switches off meanwhile."""

    plan: SubscriptionPlan
    interval: BillingInterval
    keys: list[str]
    seats: int
    items: list[dict[str, Any]]
    held: list[str]
    switched_off: list[str]
    #: The checked promotion code the change applies, if any.
    promotion: promotions.Promotion | None = None
    #: Only the promotion code changes (same plan, interval, add-ons and seats).
    code_only: bool = False


async def plan_change(
    gateway: StripeApi,
    settings: Settings,
    live: Subscription,
    *,
    plan_uid: str,
    interval: BillingInterval,
    overages: list[str] | None,
    seats: int | None,
    report_usage: bool,
    promotion_code: str | None = None,
) -> PlanChange:
    """Validate a change of ``live`` to ``plan_uid`` at ``interval`` and work out what is sent
    (the Stripe prices are made if missing, as for a purchase). ``overages`` None keeps the
    current add-ons (see ``_kept_addons``); ``seats`` None keeps the seats held, on a per-seat
    plan (see ``services.seats.seats_for``). An interval change of a subscription with metered
    items reports the period's usage first when ``report_usage`` (the change itself); a preview
    reads only what was reported. A ``promotion_code`` (checked at Stripe first, against the new
    plan) replaces the subscription's discounts; the same plan with a code only applies the
    code (``code_only``)."""
    problems: list[FieldProblem] = []
    code = promotions.normalize(promotion_code, problems)
    keys = await _target_addons(live, plan_uid, overages)
    plan = await purchasable_plan(plan_uid, interval, keys, problems)
    current = await SubscriptionPlan.find_one({"uid": live.plan_uid}) if live.plan_uid else None
    quantity = seats_for(plan, seats, problems, current=held_seats(live, current))
    if problems:
        raise ValidationFailed("invalid plan change", problems)
    base = base_item(live)
    same_plan = (
        plan.uid == live.plan_uid
        and interval == live.interval
        and keys == live.overages
        and quantity == (base.quantity if base else 1)
    )
    if same_plan and code is None:
        raise ValidationFailed(
            "nothing to change", [FieldProblem("planUid", "this is the current plan")]
        )
    promotion = None
    if code is not None:
        promotion = await _checked_promotion(gateway, live, code, plan, interval, keys, quantity)
        if same_plan:
            return _code_only(live, plan, interval, keys, quantity, promotion)
    if interval != live.interval and any(i.metered_feature for i in live.items):
        await _refuse_unbilled_overage(gateway, settings, live, report_usage=report_usage)
    chosen = await ensure_plan_prices(gateway, settings, plan, interval, keys)
    items, held, switched_off = _change_items(
        live, with_seats(chosen, quantity), same_interval=interval == live.interval
    )
    return PlanChange(plan, interval, keys, quantity, items, held, switched_off, promotion)


async def _target_addons(
    live: Subscription, plan_uid: str, overages: list[str] | None
) -> list[str]:
    """The add-on keys of the plan changed to: those asked, else the current ones the target
    plan still offers (``_kept_addons``), else (no such plan: validation says so) the current."""
    if overages is not None:
        return sorted(set(overages))
    target = await SubscriptionPlan.find_one({"uid": plan_uid})
    if target is not None:
        return await _kept_addons(live, target)
    return sorted(live.overages)


async def _checked_promotion(
    gateway: PromotionCalls,
    live: Subscription,
    code: str,
    plan: SubscriptionPlan,
    interval: BillingInterval,
    keys: list[str],
    quantity: int,
) -> promotions.Promotion:
    """``code`` checked at Stripe against the purchase of the new plan (on the subscription's
    own time), knowing the codes the subscription already has applied."""
    return await promotions.check_promotion_code(
        gateway,
        code,
        promotions.purchase_of(
            live.organization_id,
            live.stripe_customer_id,
            plan,
            interval,
            keys,
            subscription_now(live),
            base_quantity=quantity,
        ),
        applied=frozenset(d.promotion_code_id for d in live.discounts if d.promotion_code_id),
    )


def _code_only(
    live: Subscription,
    plan: SubscriptionPlan,
    interval: BillingInterval,
    keys: list[str],
    quantity: int,
    promotion: promotions.Promotion,
) -> PlanChange:
    """The same plan with a promotion code: only the code is applied (refused when it is
    already)."""
    if any(d.promotion_code_id == promotion.id for d in live.discounts):
        raise ValidationFailed(
            "nothing to change",
            [FieldProblem("promotionCode", "this code is already applied")],
        )
    return PlanChange(plan, interval, keys, quantity, [], [], [], promotion, code_only=True)


async def _refuse_unbilled_overage(
    gateway: MeterEventCalls, settings: Settings, live: Subscription, *, report_usage: bool
) -> None:
    """Refuse an interval change while the period has overage to bill: a new interval starts a
    new period at once, and Stripe bills a metered item that is re-priced only for usage after
    the change, so this period's overage would go unbilled. With ``report_usage`` the period's
    usage is reported first (the change itself; a preview reads only what was reported)."""
    if report_usage:
        await _report_first(gateway, settings, live)
    billed = await _period_overage(live)
    if billed:
        ends = live.current_period_end
        when = f" after {as_utc(ends).date().isoformat()}" if ends else " next period"
        raise ValidationFailed(
            "the interval cannot change while this period has overage to bill",
            [
                FieldProblem(
                    "billingInterval",
                    f"{units} units of {feature} overage are billed at the end of this "
                    f"period; change the interval{when}",
                )
                for feature, units in billed
            ],
        )


async def change_subscription_plan(
    gateway: StripeApi,
    principal: Principal,
    *,
    settings: Settings,
    plan_uid: str,
    interval: BillingInterval,
    overages: list[str] | None,
    proration: ProrationBehavior,
    request_id: str | None,
    seats: int | None = None,
    promotion_code: str | None = None,
) -> Subscription:
    """Swap the plan price (and optionally the add-ons and seats) with the given proration
    behaviour, applying a promotion code if given (see ``plan_change``)."""
    live = await _require_live(principal)
    change = await plan_change(
        gateway,
        settings,
        live,
        plan_uid=plan_uid,
        interval=interval,
        overages=overages,
        seats=seats,
        report_usage=True,
        promotion_code=promotion_code,
    )
    if change.code_only and change.promotion is not None:
        return await _apply_promotion(gateway, principal, live, change.promotion, request_id)
    sid = live.stripe_subscription_id
    params = _change_params(principal.organization_id, change, proration)
    key = _change_key(principal.organization_id, live, change, proration)
    observed_at = utcnow()
    with promotions.refused_by_stripe(change.promotion):
        result = await gateway.update_subscription(sid, params, key=key)
    if change.held:
        await _hold_overage(sid, change)
    return await apply_subscription(
        result, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
    )


def _change_params(org: str, change: PlanChange, proration: ProrationBehavior) -> dict[str, Any]:
    """Stripe's ``update subscription`` parameters for ``change``."""
    params: dict[str, Any] = {
        "items": change.items,
        "proration_behavior": proration.value,
        "metadata": {
            "organization_id": org,
            "plan_uid": change.plan.uid,
            "interval": change.interval.value,
        },
    }
    if change.promotion is not None:
        params["discounts"] = change.promotion.discounts()
    return params


def _change_key(
    org: str, live: Subscription, change: PlanChange, proration: ProrationBehavior
) -> str:
    """The idempotency key of the change: this change of this version of the subscription."""
    intent: list[object] = [
        live.stripe_subscription_id,
        change.plan.uid,
        change.interval.value,
        change.keys,
        proration.value,
        live.version,
        *([change.seats] if change.plan.per_seat else []),
    ]
    if change.promotion is not None:
        intent.append(change.promotion.id)  # appended only: keys without a code stay as they were
    return idempotency_key(org, "subscription.change", *intent)


async def _hold_overage(sid: str, change: PlanChange) -> None:
    """Mark the metered items ``change`` keeps to the period end (and the overage it switches
    off meanwhile): ``services.overage`` owns these fields and finishes the change after the
    period."""
    update: dict[str, Any] = {"$set": {"overage_settle": True}}
    if change.switched_off:
        update["$addToSet"] = {"overage_off": {"$each": change.switched_off}}
    await Subscription.get_motor_collection().update_one({"stripe_subscription_id": sid}, update)


async def _apply_promotion(
    gateway: SubscriptionCalls,
    principal: Principal,
    live: Subscription,
    promotion: promotions.Promotion,
    request_id: str | None,
) -> Subscription:
    """A checked code on the current plan: it becomes the subscription's discount (from the
    next invoice on; nothing is prorated)."""
    sid = live.stripe_subscription_id
    key = idempotency_key(
        principal.organization_id, "subscription.promotion", sid, promotion.id, live.version
    )
    observed_at = utcnow()
    with promotions.refused_by_stripe(promotion):
        result = await gateway.update_subscription(
            sid, {"discounts": promotion.discounts()}, key=key
        )
    return await apply_subscription(
        result, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
    )


async def current_subscription(principal: Principal) -> Subscription | None:
    """The live subscription, else the most recent one of the organization."""
    live = await live_subscription(principal.organization_id)
    if live is not None:
        return live
    latest = (
        await Subscription.find({"organization_id": principal.organization_id})
        .sort("-created_at")
        .limit(1)
        .to_list()
    )
    return latest[0] if latest else None


async def list_subscriptions(principal: Principal) -> list[Subscription]:
    return (
        await Subscription.find({"organization_id": principal.organization_id})
        .sort("-created_at")
        .to_list()
    )


def is_active(subscription: Subscription, settings: Settings, now: datetime | None = None) -> bool:
    """May the organization use its plan? ``past_due`` counts within the grace window, on the
    subscription's own time (see ``subscription_now``)."""
    if subscription.status in ("active", "trialing"):
        return True
    if subscription.status == "past_due":
        started = as_utc(subscription.current_period_start or subscription.updated_at)
        current = now or subscription_now(subscription)
        return current < started + timedelta(days=settings.past_due_grace_days)
    return False


#: A cursor of ``invoices`` is a Stripe invoice id (``starting_after``).
_INVOICE_CURSOR = re.compile(r"in_[A-Za-z0-9_]{1,252}")


async def list_invoices(
    gateway: InvoiceCalls, principal: Principal, *, first: int, after: str | None
) -> tuple[list[Invoice], bool]:
    # Checked before Stripe sees it: a 64 KB cursor made an URL no server reads, answered as
    # "Stripe unreachable" after the SDK's retries. Answered as Stripe answers an invoice id it
    # does not know, so a cursor's shape tells a caller nothing an unknown id would not.
    if after is not None and not _INVOICE_CURSOR.fullmatch(after):
        raise StripeNotFound("starting_after")
    customer = await get_customer(principal)
    if customer is None:
        return [], False
    rows, has_more = await gateway.list_invoices(
        customer=customer.stripe_customer_id, limit=first, starting_after=after
    )
    invoices = [
        Invoice(
            id=r.id,
            number=r.number,
            status=r.status,
            amount_due=r.amount_due or 0,
            amount_paid=r.amount_paid or 0,
            currency=r.currency or "",
            created=datetime.fromtimestamp(r.created or 0, tz=utcnow().tzinfo),
            hosted_invoice_url=r.hosted_invoice_url,
            invoice_pdf=r.invoice_pdf,
            subtotal=r.subtotal or 0,
            total=r.total or 0,
            discount_amount=r.discount_amount,
        )
        for r in rows
    ]
    return invoices, has_more
