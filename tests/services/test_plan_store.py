"""The plan catalog against storage, on mongomock and on a real wire-protocol server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo.errors import DuplicateKeyError

from revenue_engine.db import Database
from revenue_engine.documents import SubscriptionPlan
from revenue_engine.errors import AlreadyExists, NotFound, ValidationFailed
from revenue_engine.services import plan_spec, plan_store, plans_file
from revenue_engine.settings import DEMO_PLANS_FILE


def spec(uid: str = "basic", **overrides: object) -> plan_spec.PlanSpec:
    data: dict[str, object] = {
        "uid": uid,
        "name": "Basic",
        "entitlements": {"seats": 2, "api_calls": 1000, "sso": False},
        "metered": ["api_calls"],
        "prices": [
            {"interval": "month", "amount": 1000, "currency": "USD"},
            {"interval": "year", "amount": 10000, "currency": "usd"},
        ],
        "overages": [
            {
                "key": "api_calls",
                "name": "API calls",
                "kind": "metered",
                "feature": "api_calls",
                "package_size": 100,
                "prices": [{"interval": "month", "amount": 5, "currency": "usd"}],
            }
        ],
    }
    data.update(overrides)
    return plan_spec.PlanSpec.model_validate(data)


async def test_upsert_creates_then_updates_one_document(database: Database) -> None:
    created = await plan_store.upsert_plan(spec())
    assert created.prices[0].currency == "usd"
    assert created.prices[0].lookup_key == "basic_month"
    assert created.overages[0].prices[0].lookup_key == "basic_api_calls_month"

    updated = await plan_store.upsert_plan(spec(name="Basic 2"))
    assert updated.id == created.id
    assert await SubscriptionPlan.find_all().count() == 1
    stored = await plan_store.get_plan("basic")
    assert stored is not None
    assert stored.name == "Basic 2"
    assert stored.entitlements == {"seats": 2, "api_calls": 1000, "sso": False}
    assert stored.metered == ["api_calls"]
    addon = stored.overages[0]
    assert (addon.kind, addon.feature, addon.package_size) == ("metered", "api_calls", 100)


async def test_stripe_price_id_survives_only_unchanged_amounts(database: Database) -> None:
    plan = await plan_store.upsert_plan(spec())
    plan.prices[0].stripe_price_id = "price_month"
    plan.prices[1].stripe_price_id = "price_year"
    await plan.save()
    new_prices = [
        {"interval": "month", "amount": 1000, "currency": "usd"},
        {"interval": "year", "amount": 12000, "currency": "usd"},
    ]
    updated = await plan_store.upsert_plan(spec(prices=new_prices))
    assert updated.prices[0].stripe_price_id == "price_month"
    assert updated.prices[1].stripe_price_id is None


async def test_unique_uid_index_rejects_a_second_document(database: Database) -> None:
    await plan_store.upsert_plan(spec())
    with pytest.raises(DuplicateKeyError):
        await SubscriptionPlan(uid="basic", name="Copy").insert()
    assert await SubscriptionPlan.find_all().count() == 1


async def test_create_only_refuses_a_duplicate_uid(database: Database) -> None:
    await plan_store.upsert_plan(spec(), create_only=True)
    with pytest.raises(AlreadyExists):
        await plan_store.upsert_plan(spec(name="Other"), create_only=True)
    stored = await plan_store.get_plan("basic")
    assert stored is not None
    assert stored.name == "Basic"


async def test_concurrent_creates_leave_one_plan(database: Database) -> None:
    results = await asyncio.gather(
        *(plan_store.upsert_plan(spec(name=f"n{i}")) for i in range(5)), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert await SubscriptionPlan.find_all().count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"prices": [{"interval": "month", "amount": -1, "currency": "usd"}]}, "prices.0.amount"),
        ({"prices": [{"interval": "month", "amount": 1, "currency": "xyz"}]}, "prices.0.currency"),
        ({"prices": []}, "prices"),
        ({"prices": [{"amount": 100, "currency": "usd"}]}, "prices.0.interval"),
        (
            {
                "prices": [
                    {"interval": "month", "amount": 100, "currency": "usd"},
                    {"interval": "month", "amount": 200, "currency": "usd"},
                ]
            },
            "prices.1.interval",
        ),
        ({"uid": "Bad UID!"}, "uid"),
        ({"name": "  "}, "name"),
    ],
)
async def test_invalid_plans_are_refused_and_nothing_is_written(
    database: Database, overrides: dict[str, object], field: str
) -> None:
    bad = spec(**overrides)
    with pytest.raises(ValidationFailed) as caught:
        await plan_store.upsert_plan(bad)
    assert field in [p.field for p in caught.value.problems]
    assert await SubscriptionPlan.find_all().count() == 0


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (49, "usd", "amount must be between 50 and 99999999 for usd"),
        (29, "gbp", "amount must be between 30 and 99999999 for gbp"),
        (999, "mxn", "amount must be between 1000 and 99999999 for mxn"),
        (100_000_000, "usd", "amount must be between 50 and 99999999 for usd"),
        (1005, "kwd", "amount in kwd must end in 0 (three-decimal currency)"),
    ],
)
async def test_a_plan_price_stripe_would_not_charge_is_refused_when_saved(
    database: Database, amount: int, currency: str, message: str
) -> None:
    bad = spec(prices=[{"interval": "month", "amount": amount, "currency": currency}], overages=[])
    with pytest.raises(ValidationFailed) as caught:
        await plan_store.upsert_plan(bad)
    assert [(p.field, p.message) for p in caught.value.problems] == [("prices.0.amount", message)]
    assert await SubscriptionPlan.find_all().count() == 0


async def test_free_plans_small_overage_unit_prices_and_large_rupiah_are_accepted(
    database: Database,
) -> None:
    free = spec("free", prices=[{"interval": "month", "amount": 0, "currency": "usd"}])
    assert (await plan_store.upsert_plan(free)).prices[0].amount == 0  # its overage costs 5 cents
    rupiah = [{"interval": "month", "amount": 999_999_999_999, "currency": "idr"}]
    big = await plan_store.upsert_plan(spec("big", prices=rupiah, overages=[]))
    assert big.prices[0].amount == 999_999_999_999


async def test_a_lookup_key_of_another_plan_is_refused(database: Database) -> None:
    await plan_store.upsert_plan(spec("a"))
    taken = [
        {"interval": "month", "amount": 100, "currency": "usd", "lookup_key": "a_api_calls_month"}
    ]
    with pytest.raises(ValidationFailed) as caught:
        await plan_store.upsert_plan(spec("b", prices=taken, overages=[]))
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("prices.0.lookup_key", "lookup key 'a_api_calls_month' is used by plan 'a'")
    ]
    assert await plan_store.get_plan("b") is None
    # Saving a plan again with its own keys is not a clash.
    await plan_store.upsert_plan(spec("a", name="Again"))


async def test_overage_for_an_interval_the_plan_lacks_is_refused(database: Database) -> None:
    bad = spec(
        prices=[{"interval": "month", "amount": 100, "currency": "usd"}],
        overages=[
            {
                "key": "bw",
                "name": "BW",
                "kind": "pack",
                "feature": "seats",
                "pack_size": 1,
                "prices": [{"interval": "year", "amount": 1, "currency": "usd"}],
            }
        ],
    )
    with pytest.raises(ValidationFailed) as caught:
        await plan_store.upsert_plan(bad)
    assert [p.field for p in caught.value.problems] == ["overages.0.prices"]


async def test_archive_hides_a_plan_from_active_listing(database: Database) -> None:
    await plan_store.upsert_plan(spec("a", sort_order=2))
    await plan_store.upsert_plan(spec("b", sort_order=1))
    archived = await plan_store.archive_plan("a")
    assert archived.active is False
    assert [p.uid for p in await plan_store.list_plans()] == ["b"]
    assert [p.uid for p in await plan_store.list_plans(active_only=False)] == ["b", "a"]
    with pytest.raises(NotFound):
        await plan_store.archive_plan("missing")


async def test_demo_plans_load_idempotently(database: Database) -> None:
    first = await plans_file.load_plans_file(DEMO_PLANS_FILE)
    second = await plans_file.load_plans_file(DEMO_PLANS_FILE)
    assert [p.uid for p in first] == ["starter", "pro", "business", "enterprise"]
    assert [p.id for p in first] == [p.id for p in second]
    assert await SubscriptionPlan.find_all().count() == 4
    business = await plan_store.get_plan("business")
    assert business is not None
    assert (business.per_seat, business.min_seats, business.max_seats) == (True, 5, 500)
    pro = await plan_store.get_plan("pro")
    assert pro is not None
    assert {o.key for o in pro.overages} == {"bandwidth", "api_calls"}
    assert {p.interval.value for p in pro.prices} == {"month", "year"}


async def test_loading_the_file_never_brings_back_an_archived_plan(
    database: Database, tmp_path: Path
) -> None:
    await plans_file.load_plans_file(DEMO_PLANS_FILE)
    await plan_store.archive_plan("pro")
    await plans_file.load_plans_file(DEMO_PLANS_FILE)
    assert [p.uid for p in await plan_store.list_plans()] == ["starter", "business", "enterprise"]

    # The file itself may archive a plan (and name a new one archived from the start).
    path = tmp_path / "plans.yaml"
    path.write_text(
        DEMO_PLANS_FILE.read_text(encoding="utf-8")
        .replace("  - uid: starter\n", "  - uid: starter\n    active: false\n")
        .replace("  - uid: enterprise\n", "  - uid: enterprise\n    active: true\n")
        + "  - uid: legacy\n    name: Legacy\n    active: false\n"
        "    prices: [{interval: month, amount: 900, currency: usd}]\n",
        encoding="utf-8",
    )
    await plans_file.load_plans_file(path)
    assert [p.uid for p in await plan_store.list_plans()] == ["business", "enterprise"]
    assert {p.uid: p.active for p in await plan_store.list_plans(active_only=False)} == {
        "starter": False,
        "pro": False,
        "business": True,
        "enterprise": True,
        "legacy": False,
    }
    # An admin brings a plan back explicitly (upsertPlan); the next start leaves it active.
    pro = await plan_store.get_plan("pro")
    assert pro is not None
    await plan_store.upsert_plan(
        spec(
            "pro",
            prices=[p.model_dump(exclude={"stripe_price_id"}) for p in pro.prices],
            overages=[],
        )
    )
    await plans_file.load_plans_file(DEMO_PLANS_FILE)
    # Starter was archived (by the file): a file without `active` does not bring it back.
    assert [p.uid for p in await plan_store.list_plans()] == ["pro", "business", "enterprise"]


async def test_a_stale_copy_never_overwrites_a_newer_plan(database: Database) -> None:
    await plan_store.upsert_plan(spec())
    stale = await plan_store.get_plan("basic")
    fresh = await plan_store.get_plan("basic")
    assert stale is not None
    assert fresh is not None
    # Another writer (say, a catalog webhook) links the Stripe price first.
    fresh.prices[0].stripe_price_id = "price_from_webhook"
    assert await plan_store.save_if_unchanged(fresh, fresh.updated_at)
    stale.name = "Stale rename"
    assert not await plan_store.save_if_unchanged(stale, stale.updated_at)
    stored = await plan_store.get_plan("basic")
    assert stored is not None
    assert (stored.name, stored.prices[0].stripe_price_id) == ("Basic", "price_from_webhook")
    # The admin path re-reads and keeps the link.
    await plan_store.upsert_plan(spec(name="Renamed"))
    stored = await plan_store.get_plan("basic")
    assert stored is not None
    assert (stored.name, stored.prices[0].stripe_price_id) == ("Renamed", "price_from_webhook")


async def test_a_new_kind_of_stripe_price_forgets_the_old_price_ids(database: Database) -> None:
    plan = await plan_store.upsert_plan(spec())
    plan.overages[0].prices[0].stripe_price_id = "price_metered_100"
    plan.overages[0].stripe_product_id = "prod_calls"
    await plan.save()
    renamed = spec(overages=[{**spec().overages[0].model_dump(exclude_none=True), "name": "Calls"}])
    same = await plan_store.upsert_plan(renamed)
    assert same.overages[0].prices[0].stripe_price_id == "price_metered_100"
    # Another package size is another Stripe price (its transform_quantity); the product stays.
    bigger = spec(
        overages=[{**spec().overages[0].model_dump(exclude_none=True), "package_size": 1000}]
    )
    changed = await plan_store.upsert_plan(bigger)
    assert changed.overages[0].prices[0].stripe_price_id is None
    assert changed.overages[0].stripe_product_id == "prod_calls"


async def test_an_add_on_stored_before_kinds_still_loads_and_converts_on_load(
    database: Database,
) -> None:
    # The demo plans as stored by an older version: add-ons without a kind, prices at Stripe.
    await SubscriptionPlan.get_motor_collection().insert_one(
        {
            "uid": "pro",
            "name": "Pro",
            "entitlements": {"seats": 15, "api_calls": 250000, "bandwidth_gb": 500},
            "prices": [
                {"interval": "month", "amount": 4900, "currency": "usd", "lookup_key": "pro_month"}
            ],
            "overages": [
                {
                    "key": key,
                    "name": key,
                    "unit": "unit",
                    "prices": [
                        {
                            "interval": "month",
                            "amount": amount,
                            "currency": "usd",
                            "lookup_key": f"pro_{key}_month",
                            "stripe_price_id": f"price_flat_{key}",
                        }
                    ],
                }
                for key, amount in (("bandwidth", 900), ("api_calls", 1500))
            ],
            "active": True,
            "sort_order": 20,
            "features": [],
            "description": "",
            "created_at": datetime.now(UTC),
            "updated_at": datetime.now(UTC),
        }
    )
    old = await plan_store.get_plan("pro")
    assert old is not None
    assert [(o.key, o.kind) for o in old.overages] == [("bandwidth", None), ("api_calls", None)]
    assert old.metered == []
    await plans_file.load_plans_file(DEMO_PLANS_FILE)
    pro = await plan_store.get_plan("pro")
    assert pro is not None
    by_key = {o.key: o for o in pro.overages}
    # The pack is still a licensed price per unit: its Stripe price is kept. The metered
    # add-on needs a metered price: the flat one is forgotten (sync or checkout makes it).
    assert by_key["bandwidth"].prices[0].stripe_price_id == "price_flat_bandwidth"
    assert by_key["api_calls"].prices[0].stripe_price_id is None
    assert pro.metered == ["api_calls", "bandwidth_gb"]
