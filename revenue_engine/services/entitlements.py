"""What a subscription may use: limits from the plan and the packs bought, included quantities
of metered features per period, and whether overage is on. Pure functions, no I/O.

* A limit is the plan's entitlement plus ``pack_size`` times the quantity of every pack
  add-on item on the subscription; ``None`` (unlimited) stays unlimited, a switch (bool) is
  never raised.
* A metered feature's entitlement is its included quantity per month; a period of the yearly
  interval includes twelve months'.
* A per-seat plan's ``seats`` is the quantity of the subscription's base item (the seats
  bought), whatever the plan lists.
* Overage is on for a metered feature when the plan offers its metered add-on, an item billing
  the feature's overage is on the subscription, and the organization has not switched it off
  (``Subscription.overage_off``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from revenue_engine.documents import (
    AddonKind,
    BillingInterval,
    Subscription,
    SubscriptionItem,
    SubscriptionPlan,
)

Entitlements = dict[str, int | bool | None]

#: The largest limit: GraphQL's ``Int`` (a plan's limits and the packs added to them).
MAX_LIMIT = 2**31 - 1
#: The entitlement a per-seat plan grants as the number of seats bought.
SEATS = "seats"


def limits(plan: SubscriptionPlan, items: Iterable[SubscriptionItem]) -> Entitlements:
    """The plan's entitlements raised by the pack add-ons among ``items``."""
    granted: Entitlements = dict(plan.entitlements)
    items = list(items)
    if plan.per_seat:
        base = next((item for item in items if item.overage_key is None), None)
        granted[SEATS] = max(base.quantity, 0) if base is not None else 0
    for item in items:
        addon = plan.addon(item.overage_key) if item.overage_key else None
        if addon is None or addon.kind is not AddonKind.PACK or addon.feature is None:
            continue
        current = granted.get(addon.feature)
        if isinstance(current, bool) or current is None:
            continue  # a switch is not raised; unlimited stays unlimited
        raised = current + (addon.pack_size or 0) * max(item.quantity, 0)
        granted[addon.feature] = min(raised, MAX_LIMIT)
    return granted


def months(interval: BillingInterval | None) -> int:
    return 12 if interval is BillingInterval.YEAR else 1


def is_metered(plan: SubscriptionPlan, feature: str) -> bool:
    value = plan.entitlements.get(feature, False)
    return feature in plan.metered and not isinstance(value, bool)


def included(
    plan: SubscriptionPlan,
    granted: Mapping[str, int | bool | None],
    feature: str,
    interval: BillingInterval | None,
) -> int | None:
    """The included quantity of metered ``feature`` in one period (None: unlimited)."""
    value = granted.get(feature)
    if value is None or isinstance(value, bool):
        return None
    return value * months(interval)


def overage_on(plan: SubscriptionPlan, subscription: Subscription, feature: str) -> bool:
    """The plan bills ``feature``'s overage, an item billing it is on the subscription (the
    plan's own metered add-on, or the previous plan's kept to the end of the period in which
    the plan changed), and the organization has not switched it off."""
    if plan.metered_addon(feature) is None or feature in subscription.overage_off:
        return False
    return any(item.metered_feature == feature for item in subscription.items) or (
        # A subscription stored before items named their metered feature.
        (addon := plan.metered_addon(feature)) is not None and addon.key in subscription.overages
    )


def packages(units: int, package_size: int | None) -> int:
    """Billed packages for ``units`` of overage: rounded up (Stripe's ``transform_quantity``
    with ``round=up``)."""
    if units <= 0:
        return 0
    return math.ceil(units / max(package_size or 1, 1))
