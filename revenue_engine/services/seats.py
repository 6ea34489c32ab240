"""Seats of per-seat plans: how many a purchase or a plan change buys, and changing the seats of
a live subscription (``update_seats``).

A per-seat plan's price is per seat; the seats are the quantity of the subscription's base item
at Stripe, and the ``seats`` entitlement follows that quantity (``services.entitlements``), so a
webhook or a reconcile that re-reads the subscription keeps it true. A plan not priced per seat
is bought once; asking it for seats is a validation error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from revenue_engine.auth import Principal
from revenue_engine.clock import utcnow
from revenue_engine.documents import AuditSource, Subscription, SubscriptionItem, SubscriptionPlan
from revenue_engine.errors import (
    FieldProblem,
    NoActiveSubscription,
    NotPerSeat,
    ServiceUnavailable,
    ValidationFailed,
)
from revenue_engine.gateway import SubscriptionCalls, idempotency_key
from revenue_engine.services.catalog import ChosenPrice
from revenue_engine.services.plan_spec import MAX_SEATS
from revenue_engine.services.purchase import live_subscription
from revenue_engine.services.reconcile import apply_subscription

if TYPE_CHECKING:  # services.subscriptions imports this module
    from revenue_engine.services.subscriptions import ProrationBehavior


def seats_problem(plan: SubscriptionPlan, quantity: int) -> str | None:
    """Why ``quantity`` seats cannot be held on ``plan``, or None."""
    if plan.per_seat and not 1 <= quantity <= MAX_SEATS:
        return f"seats must be between 1 and {MAX_SEATS}"
    return plan.seats_problem(quantity)


def seats_for(
    plan: SubscriptionPlan,
    seats: int | None,
    problems: list[FieldProblem],
    *,
    field: str = "seats",
    current: int | None = None,
) -> int:
    """The base item's quantity of a purchase or change to ``plan``: ``seats`` (a per-seat plan
    only), else the seats held now (``current``, when the subscription is per seat already),
    else the plan's least; 1 for a plan that is not per seat. Appends what is wrong."""
    if not plan.per_seat:
        if seats is not None:
            problems.append(FieldProblem(field, f"plan {plan.uid!r} is not priced per seat"))
        return 1
    quantity = seats if seats is not None else current if current is not None else plan.min_seats
    problem = seats_problem(plan, quantity)
    if problem is not None:
        if seats is None:
            problem += f" (it has {quantity} now: say how many with {field})"
        problems.append(FieldProblem(field, problem))
    return quantity


def with_seats(chosen: list[ChosenPrice], quantity: int) -> list[ChosenPrice]:
    """The prices of a purchase with the plan's own (the first) bought ``quantity`` times."""
    return [replace(chosen[0], quantity=quantity), *chosen[1:]] if chosen else []


def base_item(subscription: Subscription) -> SubscriptionItem | None:
    """The item of the plan's own price (the seats of a per-seat plan)."""
    return next((i for i in subscription.items if i.overage_key is None), None)


def held_seats(subscription: Subscription, plan: SubscriptionPlan | None) -> int | None:
    """The seats the subscription holds, when its plan is per seat."""
    base = base_item(subscription)
    if plan is None or not plan.per_seat or base is None:
        return None
    return base.quantity


async def seat_items(
    live: Subscription, quantity: int, *, field: str = "quantity"
) -> list[dict[str, Any]] | None:
    """The item change that gives ``live`` ``quantity`` seats (the base item's quantity, the
    rest untouched), or None when it holds them already. ``NotPerSeat`` when its plan is not
    priced per seat; ``ValidationFailed`` (on ``field``) for a quantity the plan does not sell."""
    plan = await SubscriptionPlan.find_one({"uid": live.plan_uid}) if live.plan_uid else None
    if plan is None or not plan.per_seat:
        raise NotPerSeat(live.plan_uid)
    problem = seats_problem(plan, quantity)
    if problem is not None:
        raise ValidationFailed("invalid seat count", [FieldProblem(field, problem)])
    base = base_item(live)
    if base is None:
        raise ServiceUnavailable("the subscription's plan item is not known yet; retry shortly")
    if base.quantity == quantity:
        return None
    return [{"id": base.stripe_item_id, "quantity": quantity}]


async def update_seats(
    gateway: SubscriptionCalls,
    principal: Principal,
    *,
    quantity: int,
    proration: ProrationBehavior,
    request_id: str | None,
) -> Subscription:
    """Set the seats of the live per-seat subscription at Stripe, prorated as asked, and apply
    the answer. A bad quantity sends nothing. The key is derived from the quantity and the
    subscription's stored ``version``: a double-submit sends one key (Stripe makes one change),
    and a twin arriving after the change was applied finds the seats already held and sends
    nothing."""
    live = await live_subscription(principal.organization_id)
    if live is None:
        raise NoActiveSubscription()
    items = await seat_items(live, quantity)
    if items is None:
        return live
    sid = live.stripe_subscription_id
    key = idempotency_key(
        principal.organization_id,
        "subscription.seats",
        sid,
        quantity,
        proration.value,
        live.version,
    )
    observed_at = utcnow()
    result = await gateway.update_subscription(
        sid, {"items": items, "proration_behavior": proration.value}, key=key
    )
    return await apply_subscription(
        result, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
    )
