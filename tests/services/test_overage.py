"""The overage switch's store side on both stores: what decides "remove the metered item now",
and settling switches that need no Stripe call (the calls themselves: tests/e2e)."""

from __future__ import annotations

from typing import Any

from revenue_engine.auth import Principal
from revenue_engine.clock import as_utc
from revenue_engine.db import Database
from revenue_engine.documents import Subscription, UsageCounter
from revenue_engine.documents.usage import counter_id
from revenue_engine.gateway import StripeApi
from revenue_engine.services import overage
from revenue_engine.services.usage import record_usage
from revenue_engine.services.usage_rules import shift_months
from tests.conftest import make_settings
from tests.usage_world import INCLUDED, event, save_plan, subscribe

SETTINGS = make_settings()


class NoStripe:
    """Any Stripe call fails the test: these paths must not need one."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected Stripe call: {name}")


def _gateway() -> StripeApi:
    return NoStripe()  # type: ignore[return-value]


async def _off(sub: Subscription) -> list[str]:
    fresh = await Subscription.get(sub.id)
    assert fresh is not None
    return fresh.overage_off


async def test_switching_off_with_overage_reported_keeps_the_item(database: Database) -> None:
    plan = await save_plan()
    sub = await subscribe("org_a", plan)
    await record_usage([event("a", INCLUDED + 50)])
    assert sub.current_period_start is not None
    cid = counter_id(sub.stripe_subscription_id, as_utc(sub.current_period_start), "api_calls")
    await UsageCounter.get_motor_collection().update_one({"_id": cid}, {"$set": {"reported": 50}})
    switch = await overage.set_overage(
        _gateway(), SETTINGS, Principal(organization_id="org_a"), "api_calls", False
    )
    assert switch.removal_pending
    assert await _off(sub) == ["api_calls"]
    refused = await record_usage([event("b", 1)])
    assert refused.results[0].reason == "QUOTA_EXCEEDED"
    # Still this period: nothing to settle, and no Stripe call.
    assert await overage.settle_overage_switches(_gateway(), SETTINGS) == 0
    # On again while the item is still there: only the switch changes.
    back = await overage.set_overage(
        _gateway(), SETTINGS, Principal(organization_id="org_a"), "api_calls", True
    )
    assert not back.removal_pending
    assert await _off(sub) == []
    assert (await record_usage([event("b", 1)])).results[0].status == "accepted"


async def test_an_inflight_report_or_an_unsettled_previous_period_blocks_removal(
    database: Database,
) -> None:
    plan = await save_plan()
    sub = await subscribe("org_a", plan)
    assert sub.current_period_start is not None
    start = as_utc(sub.current_period_start)
    sid = sub.stripe_subscription_id
    counters = UsageCounter.get_motor_collection()
    current = counter_id(sid, start, "api_calls")
    await counters.insert_one({"_id": current, "reported": 0, "inflight": {"start": 0}})
    assert not await overage._nothing_reported(sub, "api_calls")
    await counters.update_one({"_id": current}, {"$set": {"inflight": None}})
    assert await overage._nothing_reported(sub, "api_calls")
    previous_start = shift_months(start, -1, max(start.day, sub.current_period_end.day))  # type: ignore[union-attr]
    previous = counter_id(sid, previous_start, "api_calls")
    await counters.insert_one({"_id": previous, "reported": 9, "report_due": True})
    assert not await overage._nothing_reported(sub, "api_calls")
    await counters.update_one({"_id": previous}, {"$set": {"report_due": False}})
    assert await overage._nothing_reported(sub, "api_calls")  # reported then: billed at renewal


async def test_settling_a_subscription_that_ended_needs_no_stripe_call(
    database: Database,
) -> None:
    plan = await save_plan()
    sub = await subscribe("org_a", plan)
    await Subscription.get_motor_collection().update_one(
        {"_id": sub.id}, {"$set": {"overage_off": ["api_calls"], "status": "canceled"}}
    )
    other = await subscribe("org_b", plan, overage=False)
    await Subscription.get_motor_collection().update_one(
        {"_id": other.id},
        {"$set": {"overage_off": ["api_calls"]}},  # no item left to remove
    )
    assert await overage.settle_overage_switches(_gateway(), SETTINGS) == 2
    assert await _off(sub) == []
    assert await _off(other) == []
    assert await overage.settle_overage_switches(_gateway(), SETTINGS) == 0
