"""The reconciler finds plans in the plan cache: no store read of the plans per event while the
cache knows every price; a price the cache does not know yet (linked moments ago by another
instance) is looked up in the store, so the subscription still maps to its plan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from revenue_engine.db import Database
from revenue_engine.documents import AuditSource, SubscriptionPlan
from revenue_engine.gateway import parse_subscription
from revenue_engine.services.plans_file import load_plans_file
from revenue_engine.services.reconcile import apply_subscription
from revenue_engine.settings import DEMO_PLANS_FILE
from tests.stripe_fixtures import subscription

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def catalog(database: Database) -> Database:
    await load_plans_file(DEMO_PLANS_FILE)
    return database


@pytest.fixture
def plan_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each store query of the plans through the document model (the real query still runs)."""
    reads: list[str] = []
    for name in ("find", "find_one"):
        real = getattr(SubscriptionPlan, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            reads.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(SubscriptionPlan, name, counted)
    return reads


async def test_events_of_known_prices_read_no_plan_from_the_store(
    catalog: Database, plan_reads: list[str]
) -> None:
    for index, keys in enumerate(
        [("pro_month",), ("pro_year", "pro_bandwidth_year"), ("starter_month",)]
    ):
        doc = await apply_subscription(
            parse_subscription(
                subscription(sub_id=f"sub_{index}", lookup_keys=keys, org=f"org_{index}")
            ),
            source=AuditSource.WEBHOOK,
            observed_at=T0,
        )
        assert doc.plan_uid == keys[0].split("_")[0]
    assert plan_reads == []


async def test_a_price_the_cache_does_not_know_yet_is_found_in_the_store(
    catalog: Database, plan_reads: list[str]
) -> None:
    # Warm the cache, then link a Stripe price id the way another instance does: a targeted
    # write (its version increment not seen here yet).
    await apply_subscription(
        parse_subscription(subscription(sub_id="sub_warm")),
        source=AuditSource.WEBHOOK,
        observed_at=T0,
    )
    collection = SubscriptionPlan.get_motor_collection()
    row = await collection.find_one({"uid": "business"})
    prices = row["prices"]
    prices[0]["stripe_price_id"] = "price_linked_elsewhere"
    await collection.update_one({"uid": "business"}, {"$set": {"prices": prices}})
    obj = subscription(sub_id="sub_new", org="org_new", lookup_keys=("x",))
    obj["items"]["data"][0]["price"].update(id="price_linked_elsewhere", lookup_key=None)
    doc = await apply_subscription(
        parse_subscription(obj), source=AuditSource.WEBHOOK, observed_at=T0
    )
    assert doc.plan_uid == "business"
    assert "find" in plan_reads
