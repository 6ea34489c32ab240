"""What every purchase shares: is the plan for sale, has the organization a live subscription,
and the organization-wide lease under which a purchase runs (see ``services.leases``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from revenue_engine.documents import LIVE_STATUSES, BillingInterval, Subscription, SubscriptionPlan
from revenue_engine.errors import AlreadySubscribed, FieldProblem, NotFound, PlanArchived
from revenue_engine.services import leases


async def purchasable_plan(
    uid: str,
    interval: BillingInterval,
    overages: tuple[str, ...] | list[str],
    problems: list[FieldProblem],
) -> SubscriptionPlan:
    """The plan if it can be bought at ``interval`` with ``overages`` (add-on keys, each
    offered at the interval and saying what it does); appends input problems."""
    plan = await SubscriptionPlan.find_one({"uid": uid})
    if plan is None:
        raise NotFound("plan", uid)
    if not plan.active:
        raise PlanArchived(uid)
    if plan.price_for(interval) is None:
        problems.append(
            FieldProblem("billingInterval", f"plan {uid!r} is not offered per {interval}")
        )
    offered = {o.key: o for o in plan.overages}
    for key in overages:
        overage = offered.get(key)
        if overage is None:
            problems.append(FieldProblem("overages", f"plan {uid!r} has no overage {key!r}"))
        elif overage.price_for(interval) is None:
            problems.append(
                FieldProblem("overages", f"overage {key!r} is not offered per {interval}")
            )
        elif overage.kind is None:
            # Stored before add-ons said what they do: it would charge for nothing.
            problems.append(
                FieldProblem(
                    "overages",
                    f"add-on {key!r} of plan {uid!r} neither raises a limit nor bills usage; "
                    "it can be bought once the plan says its kind",
                )
            )
    return plan


_LIVE = sorted(LIVE_STATUSES)


async def live_subscription(organization_id: str) -> Subscription | None:
    """The organization's live subscription. Read from the collection and validated directly:
    on every ``usage`` and ``subscriptionStatus`` read, Beanie's query layer costs more than
    the validation itself."""
    row = await Subscription.get_motor_collection().find_one(
        {"organization_id": organization_id, "status": {"$in": _LIVE}}
    )
    return None if row is None else Subscription.model_validate(row)


async def ensure_no_live_subscription(organization_id: str) -> None:
    live = await live_subscription(organization_id)
    if live is not None:
        raise AlreadySubscribed(live.stripe_subscription_id, live.status)


@asynccontextmanager
async def purchase_lease(organization_id: str) -> AsyncIterator[None]:
    """One purchase (Checkout session or direct subscription) of the organization at a time."""
    async with leases.hold(f"{organization_id}:purchase"):
        yield
