"""Stripe's example subscription (fixtures3.json, current API version) shaped for our plans."""

from __future__ import annotations

import copy
from typing import Any

from tests.stripe_events import stripe_object


def subscription(
    *,
    sub_id: str = "sub_test_1",
    status: str = "active",
    org: str | None = "org_a",
    customer: str = "cus_test_1",
    lookup_keys: tuple[str, ...] = ("pro_month",),
    period: tuple[int, int] = (1_767_225_600, 1_769_904_000),
    **overrides: Any,
) -> dict[str, Any]:
    """Stripe's example subscription with our items (one per lookup key) and organization."""
    obj = stripe_object(
        "subscription",
        id=sub_id,
        status=status,
        customer=customer,
        metadata={"organization_id": org} if org else {},
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        trial_start=None,
        trial_end=None,
        cancel_at_period_end=False,
    )
    template = obj["items"]["data"][0]
    items = []
    for index, key in enumerate(lookup_keys):
        item = copy.deepcopy(template)
        item["id"] = f"si_{sub_id}_{index}"
        item["subscription"] = sub_id
        item["price"]["id"] = f"price_{key}"
        item["price"]["lookup_key"] = key
        item["current_period_start"], item["current_period_end"] = period
        items.append(item)
    obj["items"]["data"] = items
    obj.update(overrides)
    return obj
