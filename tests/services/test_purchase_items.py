"""What a purchase sends Stripe as items: a metered add-on's price without quantity (Stripe
refuses one; overage is on from the start), every other price once; and what a plan change
keeps. Stripe's side is the small fake of ``fake_stripe`` (the emulator has no metered prices
yet; the end-to-end proof goes through it once it does)."""

from __future__ import annotations

from typing import Any

import pytest

from revenue_engine.auth import Principal
from revenue_engine.db import Database
from revenue_engine.documents import BillingInterval, Subscription
from revenue_engine.errors import ValidationFailed
from revenue_engine.services import plan_spec, plan_store, plans_file
from revenue_engine.services.checkout import CheckoutRequest, create_checkout_session
from revenue_engine.services.entitlements import overage_on
from revenue_engine.services.subscriptions import (
    ProrationBehavior,
    change_subscription_plan,
    create_subscription,
)
from revenue_engine.settings import DEMO_PLANS_FILE
from tests.conftest import make_settings
from tests.services.fake_stripe import FakeBillingGateway

MONTH, YEAR = BillingInterval.MONTH, BillingInterval.YEAR
SETTINGS = make_settings()
ORG = Principal(organization_id="org_a", email="a@example.com")


@pytest.fixture
async def catalog(database: Database) -> Database:
    await plans_file.load_plans_file(DEMO_PLANS_FILE)
    return database


def price_ids(fake: FakeBillingGateway) -> dict[str, str]:
    return {p["lookup_key"]: p["id"] for p in fake.prices if p.get("lookup_key")}


async def subscribe(
    fake: FakeBillingGateway, plan_uid: str, overages: list[str], interval: BillingInterval = MONTH
) -> Subscription:
    return await create_subscription(
        fake.as_gateway(),
        ORG,
        settings=SETTINGS,
        plan_uid=plan_uid,
        interval=interval,
        overages=overages,
        trial_days=None,
        request_id=None,
    )


async def change(
    fake: FakeBillingGateway,
    plan_uid: str,
    overages: list[str] | None,
    interval: BillingInterval = MONTH,
) -> Subscription:
    return await change_subscription_plan(
        fake.as_gateway(),
        ORG,
        settings=SETTINGS,
        plan_uid=plan_uid,
        interval=interval,
        overages=overages,
        proration=ProrationBehavior.NONE,
        request_id=None,
    )


def last_items(fake: FakeBillingGateway) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = fake.calls_to("subscriptions.update")[-1]["items"]
    return items


async def test_checkout_sends_a_metered_add_on_without_quantity(catalog: Database) -> None:
    fake = FakeBillingGateway()
    request = CheckoutRequest("pro", MONTH, overages=("api_calls", "bandwidth"))
    await create_checkout_session(fake.as_gateway(), SETTINGS, ORG, request)
    [params] = fake.calls_to("checkout.sessions.create")
    ids = price_ids(fake)
    assert params["line_items"] == [
        {"price": ids["pro_month"], "quantity": 1},
        {"price": ids["pro_bandwidth_month"], "quantity": 1},
        {"price": ids["pro_api_calls_month"]},
    ]


async def test_a_direct_subscription_with_overage_has_it_on_from_the_start(
    catalog: Database,
) -> None:
    fake = FakeBillingGateway()
    sub = await subscribe(fake, "starter", ["api_calls"])
    [params] = fake.calls_to("subscriptions.create")
    ids = price_ids(fake)
    assert params["items"] == [
        {"price": ids["starter_month"], "quantity": 1},
        {"price": ids["starter_api_calls_month"]},
    ]
    assert sub.overages == ["api_calls"]
    assert sub.entitlements["api_calls"] == 10000
    assert [i.quantity for i in sub.items] == [1, 0]


async def test_an_add_on_stored_without_kind_cannot_be_bought(catalog: Database) -> None:
    pro = await plan_store.get_plan("pro")
    assert pro is not None
    pro.overages[0].kind = None  # as stored before add-ons had kinds
    await pro.save()
    fake = FakeBillingGateway()
    with pytest.raises(ValidationFailed) as caught:
        await subscribe(fake, "pro", ["bandwidth"])
    assert [(p.field, p.message) for p in caught.value.problems] == [
        (
            "overages",
            "add-on 'bandwidth' of plan 'pro' neither raises a limit nor bills usage; it can be "
            "bought once the plan says its kind",
        )
    ]
    assert fake.calls_to("subscriptions.create") == []


async def test_an_interval_change_keeps_the_add_ons_at_the_new_interval(
    catalog: Database,
) -> None:
    fake = FakeBillingGateway()
    before = await subscribe(fake, "pro", ["api_calls", "bandwidth"])
    after = await change(fake, "pro", None, YEAR)
    ids = price_ids(fake)
    base, *old = before.items
    assert last_items(fake) == [
        {"id": base.stripe_item_id, "price": ids["pro_year"], "quantity": 1},
        *({"id": item.stripe_item_id, "deleted": True} for item in old),
        {"price": ids["pro_bandwidth_year"], "quantity": 1},
        {"price": ids["pro_api_calls_year"]},
    ]
    assert (after.interval, after.overages) == (YEAR, ["api_calls", "bandwidth"])


async def test_a_plan_change_maps_overage_to_the_new_plans_add_on_of_the_feature(
    catalog: Database,
) -> None:
    team = plan_spec.PlanSpec.model_validate(
        {
            "uid": "team",
            "name": "Team",
            "entitlements": {"api_calls": 50000},
            "metered": ["api_calls"],
            "prices": [{"interval": "month", "amount": 2900, "currency": "usd"}],
            "overages": [
                {
                    "key": "calls_overage",
                    "name": "More calls",
                    "kind": "metered",
                    "feature": "api_calls",
                    "package_size": 5000,
                    "prices": [{"interval": "month", "amount": 500, "currency": "usd"}],
                }
            ],
        }
    )
    await plan_store.upsert_plan(team)
    fake = FakeBillingGateway()
    before = await subscribe(fake, "starter", ["api_calls"])
    moved = await change(fake, "team", None)
    # The period's metered item stays (Stripe would not bill its usage so far if it were
    # removed or re-priced): the new plan's overage price waits for the next period.
    metered = before.items[1]
    assert all(i.get("id") != metered.stripe_item_id for i in last_items(fake))
    assert {"price": price_ids(fake)["team_calls_overage_month"]} not in last_items(fake)
    assert [i.metered_feature for i in moved.items] == [None, "api_calls"]
    team_plan = await plan_store.get_plan("team")
    assert team_plan is not None
    assert overage_on(team_plan, moved, "api_calls")
    assert moved.overage_off == []


async def test_overage_is_switched_off_where_the_new_plan_bills_none(catalog: Database) -> None:
    fake = FakeBillingGateway()
    before = await subscribe(fake, "pro", ["api_calls"])
    after = await change(fake, "enterprise", None)
    assert all(i.get("id") != before.items[1].stripe_item_id for i in last_items(fake))
    fresh = await Subscription.get(after.id)
    assert fresh is not None
    assert fresh.overage_off == ["api_calls"]
    assert fresh.entitlements["api_calls"] is None
    enterprise = await plan_store.get_plan("enterprise")
    assert enterprise is not None
    assert not overage_on(enterprise, fresh, "api_calls")


async def test_an_interval_change_swaps_the_metered_item(catalog: Database) -> None:
    fake = FakeBillingGateway()
    before = await subscribe(fake, "pro", ["api_calls"])
    await change(fake, "pro", None, YEAR)
    assert {"id": before.items[1].stripe_item_id, "deleted": True} in last_items(fake)
    assert last_items(fake)[-1] == {"price": price_ids(fake)["pro_api_calls_year"]}


async def test_a_pack_the_new_plan_lacks_is_refused_when_kept(catalog: Database) -> None:
    fake = FakeBillingGateway()
    await subscribe(fake, "pro", ["bandwidth"])
    with pytest.raises(ValidationFailed) as caught:
        await change(fake, "starter", None)
    assert [p.field for p in caught.value.problems] == ["overages"]
    assert fake.calls_to("subscriptions.update") == []


async def test_an_add_on_item_whose_price_stays_is_left_as_it_is(catalog: Database) -> None:
    fake = FakeBillingGateway()
    before = await subscribe(fake, "pro", ["bandwidth"])
    # Two more packs bought since (at Stripe, e.g. in the portal): the item's quantity is 3.
    sub = fake.subscriptions[before.stripe_subscription_id]
    sub["items"]["data"][1]["quantity"] = 3
    after = await change(fake, "pro", ["api_calls", "bandwidth"])
    items = last_items(fake)
    assert all(i.get("id") != before.items[1].stripe_item_id for i in items)
    assert items[-1] == {"price": price_ids(fake)["pro_api_calls_month"]}
    assert after.entitlements["bandwidth_gb"] == 500 + 3 * 100
    assert after.overages == ["api_calls", "bandwidth"]
