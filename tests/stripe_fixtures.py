"""Stripe's own example objects (fixtures3.json, current API version), adapted per test."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "stripe" / "fixtures3.json"


@cache
def _resources() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    return data


def stripe_object(kind: str, **overrides: Any) -> dict[str, Any]:
    """A deep copy of Stripe's example ``kind`` object with top-level ``overrides``."""
    obj: dict[str, Any] = copy.deepcopy(_resources()[kind])
    obj.update(overrides)
    return obj


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
