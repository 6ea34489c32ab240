"""``price.*`` / ``product.*`` keep the plan catalog's Stripe ids true — through the real app, on
both storage backends, with Stripe's example objects in real event envelopes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from revenue_engine.documents import BillingInterval, BillingMeter, PlanPrice, SubscriptionPlan
from revenue_engine.documents import WebhookEvent as WebhookEventDoc
from revenue_engine.services import plan_spec, plan_store
from revenue_engine.settings import Settings
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.replay import replay_event
from tests.stripe_events import event, post, stripe_object, with_secrets

Start = Callable[[Settings], Any]
T0 = int(time.time()) - 3600
PRODUCT = "prod_QXg1hqf4jFNsqG"  # the product of Stripe's example price


@pytest.fixture
async def client(client_for: Start, store_settings: Settings) -> httpx.AsyncClient:
    started: httpx.AsyncClient = await client_for(with_secrets(store_settings))
    return started


def price(
    id: str = "price_1PgafmB7WZ01zgkW6dKueIc5",
    *,
    lookup_key: str | None = "pro_month",
    amount: int = 4900,
    interval: str = "month",
    **overrides: Any,
) -> dict[str, Any]:
    # Stripe's example price carries a sample transform_quantity; a plain price has none.
    overrides.setdefault("transform_quantity", None)
    obj = stripe_object("price", id=id, lookup_key=lookup_key, unit_amount=amount, **overrides)
    obj["unit_amount_decimal"] = str(amount)
    obj["recurring"]["interval"] = interval
    return obj


def product(**overrides: Any) -> dict[str, Any]:
    return stripe_object("product", **overrides)


async def get_plan(uid: str) -> SubscriptionPlan:
    found = await plan_store.get_plan(uid)
    assert found is not None
    return found


def slot(plan: SubscriptionPlan, interval: str = "month", overage: str | None = None) -> PlanPrice:
    owner = next(o for o in plan.overages if o.key == overage) if overage else plan
    found = owner.price_for(BillingInterval(interval))
    assert found is not None
    return found


async def send(client: httpx.AsyncClient, payload: dict[str, Any]) -> dict[str, Any]:
    response = await post(client, payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def last_error(event_id: str) -> str | None:
    row = await WebhookEventDoc.find_one({"event_id": event_id})
    assert row is not None
    return row.last_error


# --- prices -------------------------------------------------------------------------------


async def test_a_matching_price_is_linked_with_its_product(client: httpx.AsyncClient) -> None:
    created = event("price.created", price(), created=T0)
    assert (await send(client, created))["status"] == "processed"
    pro = await get_plan("pro")
    assert slot(pro).stripe_price_id == "price_1PgafmB7WZ01zgkW6dKueIc5"
    assert slot(pro, "year").stripe_price_id is None
    assert pro.stripe_product_id == PRODUCT  # inferred from the price: the plan had none


async def test_an_overage_price_is_linked_to_the_overage(client: httpx.AsyncClient) -> None:
    obj = price("price_bw_month", lookup_key="pro_bandwidth_month", amount=900, product="prod_bw")
    assert (await send(client, event("price.created", obj)))["status"] == "processed"
    pro = await get_plan("pro")
    assert slot(pro, overage="bandwidth").stripe_price_id == "price_bw_month"
    assert next(o for o in pro.overages if o.key == "bandwidth").stripe_product_id == "prod_bw"
    assert pro.stripe_product_id is None


async def test_a_contradicting_price_is_a_visible_failure_and_is_not_linked(
    client: httpx.AsyncClient,
) -> None:
    wrong = event("price.created", price(amount=2000))
    body = await send(client, wrong)
    assert body["status"] == "failed"
    assert await last_error(wrong["id"]) == (
        "CATALOG_MISMATCH: price price_1PgafmB7WZ01zgkW6dKueIc5 (pro_month) is 2000 usd/month, "
        "the plan says 4900 usd/month"
    )
    assert slot(await get_plan("pro")).stripe_price_id is None


def metered_price(
    id: str = "price_calls_month", *, meter: str | None = "mtr_calls", divide_by: int = 10000
) -> dict[str, Any]:
    obj = price(
        id,
        lookup_key="pro_api_calls_month",
        amount=1500,
        transform_quantity={"divide_by": divide_by, "round": "up"},
    )
    obj["recurring"].update(usage_type="metered", meter=meter)
    return obj


async def store_calls_meter() -> None:
    await BillingMeter(
        feature="api_calls", event_name="revenue_engine.api_calls", stripe_meter_id="mtr_calls"
    ).insert()


async def test_a_metered_price_on_the_features_meter_is_linked(client: httpx.AsyncClient) -> None:
    await store_calls_meter()
    assert (await send(client, event("price.created", metered_price())))["status"] == "processed"
    assert slot(await get_plan("pro"), overage="api_calls").stripe_price_id == "price_calls_month"


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        (
            price("price_flat", lookup_key="pro_api_calls_month", amount=1500),
            "is 1500 usd/month, the plan says 1500 usd/month metered on the meter of api_calls "
            "per 10000 units rounded up",
        ),
        (
            metered_price("price_other_meter", meter="mtr_elsewhere"),
            "is 1500 usd/month metered on mtr_elsewhere per 10000 units rounded up, the plan "
            "says 1500 usd/month metered on the meter of api_calls per 10000 units rounded up",
        ),
        (
            metered_price("price_small_packages", divide_by=1000),
            "is 1500 usd/month metered on mtr_calls per 1000 units rounded up, the plan says "
            "1500 usd/month metered on the meter of api_calls per 10000 units rounded up",
        ),
    ],
    ids=["licensed", "other-meter", "other-package"],
)
async def test_a_price_that_bills_a_metered_add_on_otherwise_is_a_mismatch(
    client: httpx.AsyncClient, obj: dict[str, Any], says: str
) -> None:
    await store_calls_meter()
    wrong = event("price.created", obj)
    assert (await send(client, wrong))["status"] == "failed"
    assert await last_error(wrong["id"]) == f"CATALOG_MISMATCH: price {obj['id']} " + (
        f"(pro_api_calls_month) {says}"
    )
    assert slot(await get_plan("pro"), overage="api_calls").stripe_price_id is None


async def test_a_metered_price_under_a_packs_key_is_a_mismatch(client: httpx.AsyncClient) -> None:
    await store_calls_meter()
    obj = metered_price("price_bw_metered")
    obj.update(lookup_key="pro_bandwidth_month", unit_amount=900)
    wrong = event("price.created", obj)
    assert (await send(client, wrong))["status"] == "failed"
    assert "licensed (per unit, no meter, no transform_quantity)" in str(
        await last_error(wrong["id"])
    )
    assert slot(await get_plan("pro"), overage="bandwidth").stripe_price_id is None


async def test_replay_after_fixing_the_catalog_links_the_price(
    client: httpx.AsyncClient, store_settings: Settings
) -> None:
    wrong = event("price.created", price("price_new", lookup_key="starter_month", amount=2500))
    assert (await send(client, wrong))["status"] == "failed"
    # An admin corrects the plan to the price that exists in Stripe, then replays the event.
    spec = plan_spec.PlanSpec(
        uid="starter",
        name="Starter",
        prices=[plan_spec.PriceSpec(interval="month", amount=2500, currency="usd")],
    )
    await plan_store.upsert_plan(spec)
    outcome, row = await replay_event(wrong["id"], HandlerContext.from_settings(store_settings))
    assert outcome == "processed"
    assert row.status == "processed"
    assert row.attempts == 2
    assert slot(await get_plan("starter")).stripe_price_id == "price_new"


@pytest.mark.parametrize("change", ["archived", "deleted"])
async def test_an_archived_or_deleted_price_is_unlinked(
    client: httpx.AsyncClient, change: str
) -> None:
    await send(client, event("price.created", price(), created=T0))
    if change == "archived":
        gone = event(
            "price.updated",
            price(active=False),
            created=T0 + 5,
            previous_attributes={"active": True},
        )
    else:
        gone = event("price.deleted", price(active=False), created=T0 + 5)
    assert (await send(client, gone))["status"] == "processed"
    assert slot(await get_plan("pro")).stripe_price_id is None


async def test_a_lookup_key_transfer_moves_the_link_in_either_order(
    client: httpx.AsyncClient,
) -> None:
    await send(client, event("price.created", price("price_old"), created=T0))
    new = event("price.created", price("price_new"), created=T0 + 10)
    old_loses_key = event(
        "price.updated",
        price("price_old", lookup_key=None),
        created=T0 + 10,
        previous_attributes={"lookup_key": "pro_month"},
    )
    await send(client, new)
    await send(client, old_loses_key)
    assert slot(await get_plan("pro")).stripe_price_id == "price_new"


async def test_a_price_outside_the_catalog_is_ignored(client: httpx.AsyncClient) -> None:
    stray = event("price.created", price("price_tshirt", lookup_key="tshirt_gray"))
    body = await send(client, stray)
    assert body["status"] == "ignored"
    assert await last_error(stray["id"]) == "price price_tshirt is not part of the plan catalog"


async def test_a_malformed_price_object_fails_with_the_reason(client: httpx.AsyncClient) -> None:
    broken = event("price.created", {"object": "price", "active": "maybe"})
    assert (await send(client, broken))["status"] == "failed"
    reason = await last_error(broken["id"])
    assert reason is not None
    assert reason.startswith("MALFORMED_OBJECT: price object is missing or has invalid: id")


@pytest.mark.parametrize(
    ("type_", "obj", "expected"),
    [
        ("price.updated", "product", "price"),
        ("product.updated", "price", "product"),
    ],
)
async def test_an_object_of_another_kind_fails_for_good_and_links_nothing(
    client: httpx.AsyncClient, type_: str, obj: str, expected: str
) -> None:
    """A price event must carry a price (and a product event a product) even where the object
    it carries would match the catalog: nothing is linked, the row says what came."""
    sent = price() if obj == "price" else product(metadata={"plan_uid": "pro"})
    wrong = event(type_, sent)
    assert (await send(client, wrong))["status"] == "failed"
    assert await last_error(wrong["id"]) == (
        f"MALFORMED_OBJECT: expected a {expected} object, got {obj!r}"
    )
    pro = await get_plan("pro")
    assert pro.stripe_product_id is None
    assert slot(pro).stripe_price_id is None


# --- order (W5 / W6 for the catalog) --------------------------------------------------------


async def test_an_older_event_arriving_late_changes_nothing(client: httpx.AsyncClient) -> None:
    archived = event("price.updated", price(active=False), created=T0 + 60)
    created = event("price.created", price(), created=T0)
    await send(client, archived)
    late = await send(client, created)
    assert late["status"] == "ignored"
    assert await last_error(created["id"]) == (
        "older than the last event applied to price_1PgafmB7WZ01zgkW6dKueIc5"
    )
    assert slot(await get_plan("pro")).stripe_price_id is None


async def test_deleted_before_created_stays_deleted(client: httpx.AsyncClient) -> None:
    await send(client, event("price.deleted", price(active=False), created=T0 + 1))
    await send(client, event("price.created", price(), created=T0))
    assert slot(await get_plan("pro")).stripe_price_id is None


@pytest.mark.parametrize("order", ["created first", "deleted first"])
async def test_same_second_created_and_deleted_agree_in_either_order(
    client: httpx.AsyncClient, order: str
) -> None:
    pair = [
        event("price.created", price(), created=T0),
        event("price.deleted", price(active=False), created=T0),
    ]
    for payload in pair if order == "created first" else pair[::-1]:
        await send(client, payload)
    assert slot(await get_plan("pro")).stripe_price_id is None


@pytest.mark.parametrize("order", [0, 1])
async def test_same_second_updates_agree_in_either_order(
    client: httpx.AsyncClient, order: int
) -> None:
    pair = [
        event("price.updated", price(active=True), id="evt_1AAAA", created=T0),
        event("price.updated", price(active=False), id="evt_1BBBB", created=T0),
    ]
    for payload in pair if order == 0 else pair[::-1]:
        await send(client, payload)
    # The tie is broken by event id: evt_1BBBB (archived) wins whichever came first.
    assert slot(await get_plan("pro")).stripe_price_id is None


# --- products -----------------------------------------------------------------------------


async def test_a_product_tagged_with_a_plan_uid_is_linked_then_unlinked(
    client: httpx.AsyncClient,
) -> None:
    tagged = product(metadata={"plan_uid": "enterprise"})
    assert (await send(client, event("product.created", tagged, created=T0)))[
        "status"
    ] == "processed"
    assert (await get_plan("enterprise")).stripe_product_id == PRODUCT
    archived = product(metadata={"plan_uid": "enterprise"}, active=False)
    await send(client, event("product.updated", archived, created=T0 + 1))
    assert (await get_plan("enterprise")).stripe_product_id is None


async def test_an_overage_product_is_linked_by_plan_uid_and_overage_key(
    client: httpx.AsyncClient,
) -> None:
    tagged = product(id="prod_api", metadata={"plan_uid": "pro", "overage_key": "api_calls"})
    await send(client, event("product.created", tagged, created=T0))
    pro = await get_plan("pro")
    assert next(o for o in pro.overages if o.key == "api_calls").stripe_product_id == "prod_api"
    assert pro.stripe_product_id is None
    await send(client, event("product.deleted", {**tagged, "deleted": True}, created=T0 + 2))
    pro = await get_plan("pro")
    assert next(o for o in pro.overages if o.key == "api_calls").stripe_product_id is None


async def test_a_product_linked_through_its_price_is_unlinked_when_deleted(
    client: httpx.AsyncClient,
) -> None:
    await send(client, event("price.created", price(), created=T0))
    assert (await get_plan("pro")).stripe_product_id == PRODUCT
    # Stripe's example product carries no metadata: matched by the id already linked.
    await send(client, event("product.deleted", product(), created=T0 + 3))
    assert (await get_plan("pro")).stripe_product_id is None


async def test_a_product_for_an_unknown_plan_is_ignored(client: httpx.AsyncClient) -> None:
    stray = event("product.created", product(metadata={"plan_uid": "ghost"}))
    assert (await send(client, stray))["status"] == "ignored"
