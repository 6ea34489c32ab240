"""The catalog at Stripe: one Billing Meter per metered feature, metered prices for metered
add-ons, licensed ones for plans and packs, and what a found price must carry to be reused.

Stripe's side is a small fake (``fake_stripe``); the emulator's meters are proven end to end
elsewhere."""

from __future__ import annotations

import asyncio

import pytest

from revenue_engine.db import Database
from revenue_engine.documents import BillingInterval, BillingMeter, SubscriptionPlan
from revenue_engine.gateway import idempotency_key
from revenue_engine.services.catalog import ensure_addon_price, ensure_plan_prices, sync_catalog
from revenue_engine.services.meters import ensure_meter
from revenue_engine.services.plan_store import get_plan
from revenue_engine.services.plans_file import load_plans_file
from revenue_engine.settings import DEMO_PLANS_FILE
from tests.conftest import make_settings
from tests.services.fake_stripe import FakeCatalogGateway

MONTH = BillingInterval.MONTH
SETTINGS = make_settings()


@pytest.fixture
async def catalog(database: Database) -> Database:
    await load_plans_file(DEMO_PLANS_FILE)
    return database


async def plan(uid: str) -> SubscriptionPlan:
    found = await get_plan(uid)
    assert found is not None
    return found


# --- meters ----------------------------------------------------------------------------------


async def test_a_meter_is_created_once_with_the_features_event_name(database: Database) -> None:
    fake = FakeCatalogGateway()
    meter = await ensure_meter(fake, SETTINGS, "api_calls")
    [params] = fake.calls_to("billing.meters.create")
    assert params == {
        "display_name": "api_calls",
        "event_name": "revenue_engine.api_calls",
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        "value_settings": {"event_payload_key": "value"},
    }
    [(_, _, key)] = [c for c in fake.calls if c[0] == "billing.meters.create"]
    assert key == idempotency_key("catalog", "meter.create", "revenue_engine.api_calls")
    assert (meter.feature, meter.event_name) == ("api_calls", "revenue_engine.api_calls")
    # Stored: the next call asks Stripe nothing.
    before = len(fake.calls)
    again = await ensure_meter(fake, SETTINGS, "api_calls")
    assert again.stripe_meter_id == meter.stripe_meter_id
    assert len(fake.calls) == before
    assert await BillingMeter.find_all().count() == 1


async def test_an_active_meter_at_stripe_is_found_again_by_event_name(database: Database) -> None:
    fake = FakeCatalogGateway()
    fake.meters += [
        {"id": "mtr_other", "event_name": "revenue_engine.bandwidth_gb", "status": "active"},
        {"id": "mtr_old", "event_name": "other.api_calls", "status": "inactive"},
        {"id": "mtr_acme", "event_name": "acme.api_calls", "status": "active"},
    ]
    settings = make_settings(meter_event_prefix="acme")
    meter = await ensure_meter(fake, settings, "api_calls")
    assert (meter.stripe_meter_id, meter.event_name) == ("mtr_acme", "acme.api_calls")
    assert fake.calls_to("billing.meters.create") == []
    assert fake.calls_to("billing.meters.reactivate") == []
    assert fake.meters[1]["status"] == "inactive"  # another prefix's meter is left alone


async def test_a_deactivated_meter_at_stripe_is_reactivated_not_duplicated(
    database: Database,
) -> None:
    fake = FakeCatalogGateway()
    fake.meters.append({"id": "mtr_acme", "event_name": "acme.api_calls", "status": "inactive"})
    settings = make_settings(meter_event_prefix="acme")
    meter = await ensure_meter(fake, settings, "api_calls")
    assert meter.stripe_meter_id == "mtr_acme"
    [(_, params, key)] = [c for c in fake.calls if c[0] == "billing.meters.reactivate"]
    assert params == {"id": "mtr_acme"}
    assert key == idempotency_key("catalog", "meter.reactivate", "acme.api_calls", "mtr_acme")
    assert [m["status"] for m in fake.meters] == ["active"]
    assert fake.calls_to("billing.meters.create") == []


async def test_concurrent_first_uses_leave_one_meter(database: Database) -> None:
    fake = FakeCatalogGateway()
    meters = await asyncio.gather(*(ensure_meter(fake, SETTINGS, "api_calls") for _ in range(5)))
    assert {m.stripe_meter_id for m in meters} == {meters[0].stripe_meter_id}
    assert len(fake.meters) == 1  # every create carried the same idempotency key
    assert await BillingMeter.find_all().count() == 1


# --- prices ----------------------------------------------------------------------------------


async def test_a_metered_add_on_gets_a_metered_price_on_its_features_meter(
    catalog: Database,
) -> None:
    fake = FakeCatalogGateway()
    pro = await plan("pro")
    chosen = await ensure_plan_prices(fake, SETTINGS, pro, MONTH, ["api_calls"])
    [meter] = fake.meters
    base, calls = fake.calls_to("prices.create")
    assert base["recurring"] == {"interval": "month"}
    assert "transform_quantity" not in base
    assert calls["recurring"] == {
        "interval": "month",
        "usage_type": "metered",
        "meter": meter["id"],
    }
    assert calls["transform_quantity"] == {"divide_by": 10000, "round": "up"}
    assert (calls["unit_amount"], calls["currency"], calls["lookup_key"]) == (
        1500,
        "usd",
        "pro_api_calls_month",
    )
    # The metered item has no quantity (Stripe refuses one); the plan's price is bought once.
    assert [c.item() for c in chosen] == [
        {"price": fake.prices[0]["id"], "quantity": 1},
        {"price": fake.prices[1]["id"]},
    ]
    stored = await plan("pro")
    addon = stored.addon("api_calls")
    assert addon is not None
    assert addon.prices[0].stripe_price_id == fake.prices[1]["id"]


async def test_a_pack_is_a_licensed_price_bought_once(catalog: Database) -> None:
    fake = FakeCatalogGateway()
    pro = await plan("pro")
    chosen = await ensure_plan_prices(fake, SETTINGS, pro, MONTH, ["bandwidth"])
    _, pack = fake.calls_to("prices.create")
    assert pack["recurring"] == {"interval": "month"}
    assert [c.metered for c in chosen] == [False, False]
    assert chosen[1].item() == {"price": fake.prices[1]["id"], "quantity": 1}
    assert fake.meters == []  # no meter for a purchase without metered add-ons


async def test_a_licensed_price_under_a_metered_add_ons_key_is_not_reused(
    catalog: Database,
) -> None:
    fake = FakeCatalogGateway()
    # The flat $15/month "Extra API calls" price an older catalog made under the same key.
    flat = fake.add_price(
        lookup_key="pro_api_calls_month", unit_amount=1500, recurring={"interval": "month"}
    )
    chosen = await ensure_addon_price(fake, SETTINGS, await plan("pro"), MONTH, "api_calls")
    assert chosen.stripe_price_id != flat["id"]
    assert chosen.metered
    assert flat["lookup_key"] is None  # the new metered price took the key over
    [created] = fake.calls_to("prices.create")[1:]
    assert created["transfer_lookup_key"] is True


async def test_a_metered_price_under_a_packs_key_is_not_reused(catalog: Database) -> None:
    fake = FakeCatalogGateway()
    metered = fake.add_price(
        lookup_key="pro_bandwidth_month",
        unit_amount=900,
        recurring={"interval": "month", "usage_type": "metered", "meter": "mtr_x"},
        transform_quantity={"divide_by": 100, "round": "up"},
    )
    chosen = await ensure_addon_price(fake, SETTINGS, await plan("pro"), MONTH, "bandwidth")
    assert chosen.stripe_price_id != metered["id"]


@pytest.mark.parametrize(
    "wrong",
    [
        {"transform_quantity": {"divide_by": 1000, "round": "up"}},
        {"transform_quantity": {"divide_by": 10000, "round": "down"}},
        {"transform_quantity": None},
        {"meter": "mtr_someone_elses"},
        {"unit_amount": 1400},
    ],
)
async def test_a_metered_price_that_bills_otherwise_is_not_reused(
    catalog: Database, wrong: dict[str, object]
) -> None:
    fake = FakeCatalogGateway()
    meter = await ensure_meter(fake, SETTINGS, "api_calls")
    fields: dict[str, object] = {
        "lookup_key": "pro_api_calls_month",
        "unit_amount": 1500,
        "transform_quantity": {"divide_by": 10000, "round": "up"},
    }
    recurring = {"interval": "month", "usage_type": "metered", "meter": meter.stripe_meter_id}
    if "meter" in wrong:
        recurring["meter"] = str(wrong["meter"])
    else:
        fields.update(wrong)
    right = fake.add_price(**fields, recurring=recurring)
    chosen = await ensure_addon_price(fake, SETTINGS, await plan("pro"), MONTH, "api_calls")
    assert chosen.stripe_price_id != right["id"]


async def test_a_matching_metered_price_is_reused(catalog: Database) -> None:
    fake = FakeCatalogGateway()
    meter = await ensure_meter(fake, SETTINGS, "api_calls")
    found = fake.add_price(
        lookup_key="pro_api_calls_month",
        unit_amount=1500,
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.stripe_meter_id},
        transform_quantity={"divide_by": 10000, "round": "up"},
    )
    chosen = await ensure_addon_price(fake, SETTINGS, await plan("pro"), MONTH, "api_calls")
    assert chosen.stripe_price_id == found["id"]
    assert len(fake.calls_to("prices.create")) == 1  # the plan's own price only


async def test_a_found_price_must_carry_the_lookup_key_asked_for(catalog: Database) -> None:
    fake = FakeCatalogGateway()
    fake.ignore_lookup_filter = True
    # Another plan's price, same amount and interval: a server ignoring the filter lists it.
    other = fake.add_price(
        lookup_key="team_month", unit_amount=4900, recurring={"interval": "month"}
    )
    [chosen] = await ensure_plan_prices(fake, SETTINGS, await plan("pro"), MONTH, [])
    assert chosen.stripe_price_id != other["id"]
    assert other["lookup_key"] == "team_month"


async def test_plans_sync_makes_the_meters_and_every_price(catalog: Database) -> None:
    fake = FakeCatalogGateway()
    settings = make_settings(meter_event_prefix="acme")
    done = await sync_catalog(fake, settings)
    assert sorted(done) == ["business", "enterprise", "pro", "starter"]
    # api_calls is billed by starter, pro and business: one meter, shared.
    assert [m["event_name"] for m in fake.meters] == ["acme.api_calls"]
    created = {p["lookup_key"]: p for p in fake.calls_to("prices.create")}
    assert len(created) == 18  # (4 plans + 5 add-ons) x 2 intervals
    yearly = created["starter_api_calls_year"]
    assert yearly["recurring"]["usage_type"] == "metered"
    assert (yearly["unit_amount"], yearly["transform_quantity"]["divide_by"]) == (200, 1000)
    assert created["enterprise_bandwidth_year"]["recurring"] == {"interval": "year"}
    # Again: everything is known, nothing is made.
    before = len(fake.calls_to("prices.create")) + len(fake.calls_to("billing.meters.create"))
    await sync_catalog(fake, settings)
    after = len(fake.calls_to("prices.create")) + len(fake.calls_to("billing.meters.create"))
    assert after == before
