"""The drift run reads Stripe's listing item by item: one subscription it cannot read is
reported and the run goes on with the others (and the listing's cursor moves past it)."""

from __future__ import annotations

from typing import Any, cast

from revenue_engine.db import Database
from revenue_engine.gateway import StripeGateway, parse_listed
from revenue_engine.services.drift import reconcile_subscriptions
from revenue_engine.services.plans_file import load_plans_file
from revenue_engine.settings import DEMO_PLANS_FILE
from tests.stripe_fixtures import subscription


class OnePage:
    """A Stripe that lists one page: an unreadable item between two good ones."""

    def __init__(self) -> None:
        broken = {"object": "subscription", "id": "sub_broken", "status": None}
        self.items = [subscription(sub_id="sub_a"), broken, subscription(sub_id="sub_b")]
        self.cursors: list[str | None] = []

    async def list_subscriptions(self, **kwargs: Any) -> tuple[list[Any], bool]:
        self.cursors.append(kwargs.get("starting_after"))
        return [parse_listed(item) for item in self.items], False


async def test_an_unreadable_subscription_is_reported_and_the_run_goes_on(
    database: Database,
) -> None:
    await load_plans_file(DEMO_PLANS_FILE)
    stripe = OnePage()
    report = await reconcile_subscriptions(cast(StripeGateway, stripe), dry_run=True)
    assert report.checked == 3
    broken = [d for d in report.drifts if d.subscription_id == "sub_broken"]
    assert len(broken) == 1
    assert broken[0].stripe == "not a Stripe subscription object"
    assert {d.subscription_id for d in report.drifts} >= {"sub_a", "sub_b"}  # not stored yet
    assert report.cursor == "sub_b"
