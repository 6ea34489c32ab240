"""The one reconciler on both storage backends: mapping, idempotence, never backwards, audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from revenue_engine.db import Database
from revenue_engine.documents import AuditEntry, AuditSource, Customer, Subscription
from revenue_engine.errors import MalformedStripeObject, UnknownOrganization
from revenue_engine.gateway import parse_subscription
from revenue_engine.services.plans_file import load_plans_file
from revenue_engine.services.reconcile import apply_subscription
from revenue_engine.settings import DEMO_PLANS_FILE
from tests.stripe_fixtures import subscription

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
async def catalog(database: Database) -> Database:
    await load_plans_file(DEMO_PLANS_FILE)
    return database


async def audits() -> list[AuditEntry]:
    return await AuditEntry.find({}).sort("at").to_list()


async def test_maps_plan_interval_items_and_periods(catalog: Database) -> None:
    obj = subscription(lookup_keys=("pro_year", "pro_bandwidth_year"))
    doc = await apply_subscription(
        parse_subscription(obj), source=AuditSource.WEBHOOK, reference="evt_1", observed_at=T0
    )
    assert doc.organization_id == "org_a"
    assert doc.plan_uid == "pro"
    assert doc.interval is not None
    assert doc.interval.value == "year"
    assert doc.overages == ["bandwidth"]
    assert doc.current_period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert doc.current_period_end == datetime(2026, 2, 1, tzinfo=UTC)
    assert doc.entitlements["seats"] == 15
    [entry] = await audits()
    assert (entry.from_status, entry.to_status, entry.source, entry.reference) == (
        None,
        "active",
        AuditSource.WEBHOOK,
        "evt_1",
    )


async def test_same_object_twice_changes_nothing(catalog: Database) -> None:
    obj = subscription()
    first = await apply_subscription(
        parse_subscription(obj), source=AuditSource.WEBHOOK, observed_at=T0
    )
    second = await apply_subscription(
        parse_subscription(obj),
        source=AuditSource.CHECKOUT_VERIFY,
        observed_at=T0 + timedelta(seconds=5),
    )
    assert second.version == first.version == 0
    assert len(await audits()) == 1


async def test_older_observation_never_overwrites_newer(catalog: Database) -> None:
    await apply_subscription(
        parse_subscription(subscription(status="past_due")),
        source=AuditSource.WEBHOOK,
        observed_at=T0 + timedelta(seconds=2),
    )
    doc = await apply_subscription(
        parse_subscription(subscription(status="active")),
        source=AuditSource.WEBHOOK,
        observed_at=T0,
    )
    assert doc.status == "past_due"
    stored = await Subscription.find_one({"stripe_subscription_id": "sub_test_1"})
    assert stored is not None
    assert stored.status == "past_due"


async def test_terminal_status_is_never_left(catalog: Database) -> None:
    canceled = subscription(status="canceled", canceled_at=1_767_300_000, ended_at=1_767_300_000)
    await apply_subscription(
        parse_subscription(canceled), source=AuditSource.WEBHOOK, observed_at=T0
    )
    doc = await apply_subscription(
        parse_subscription(subscription(status="active")),
        source=AuditSource.WEBHOOK,
        observed_at=T0 + timedelta(hours=1),
    )
    assert doc.status == "canceled"
    assert doc.ended_at == datetime.fromtimestamp(1_767_300_000, tz=UTC)


@pytest.mark.parametrize("order", [("active", "past_due"), ("past_due", "active")])
async def test_same_instant_gives_the_same_result_in_either_order(
    catalog: Database, order: tuple[str, str]
) -> None:
    for status in order:
        await apply_subscription(
            parse_subscription(subscription(status=status)),
            source=AuditSource.WEBHOOK,
            observed_at=T0,
        )
    stored = await Subscription.find_one({"stripe_subscription_id": "sub_test_1"})
    assert stored is not None
    assert stored.status == "past_due"


async def test_transitions_are_audited_with_source(catalog: Database) -> None:
    await apply_subscription(
        parse_subscription(subscription(status="active")),
        source=AuditSource.CHECKOUT_VERIFY,
        observed_at=T0,
    )
    await apply_subscription(
        parse_subscription(subscription(status="active", cancel_at_period_end=True)),
        source=AuditSource.MUTATION,
        reference="req-1",
        observed_at=T0 + timedelta(seconds=1),
    )
    await apply_subscription(
        parse_subscription(subscription(status="canceled", ended_at=1_769_904_000)),
        source=AuditSource.WEBHOOK,
        reference="evt_9",
        observed_at=T0 + timedelta(seconds=2),
    )
    rows = [(a.from_status, a.to_status, a.source.value, a.reference) for a in await audits()]
    assert rows == [
        (None, "active", "checkout-verify", None),
        ("active", "active", "mutation", "req-1"),
        ("active", "canceled", "webhook", "evt_9"),
    ]
    changes = (await audits())[1].changes
    assert changes == {"cancel_at_period_end": True}


async def test_organization_from_the_customer_document(catalog: Database) -> None:
    await Customer(organization_id="org_c", stripe_customer_id="cus_c").insert()
    doc = await apply_subscription(
        parse_subscription(subscription(org=None, customer="cus_c")),
        source=AuditSource.RECONCILE,
        observed_at=T0,
    )
    assert doc.organization_id == "org_c"


async def test_unknown_organization_and_malformed_objects_are_refused(catalog: Database) -> None:
    with pytest.raises(UnknownOrganization):
        await apply_subscription(
            parse_subscription(subscription(org=None, customer="cus_nobody")),
            source=AuditSource.WEBHOOK,
        )
    with pytest.raises(MalformedStripeObject):
        await apply_subscription(
            parse_subscription({"object": "invoice", "id": "in_1"}), source=AuditSource.WEBHOOK
        )
    assert await Subscription.find_all().count() == 0


async def test_concurrent_applies_make_one_document(catalog: Database) -> None:
    obj = subscription()
    results = await asyncio.gather(
        *(
            apply_subscription(parse_subscription(obj), source=AuditSource.WEBHOOK, observed_at=T0)
            for _ in range(10)
        )
    )
    assert {r.stripe_subscription_id for r in results} == {"sub_test_1"}
    assert await Subscription.find_all().count() == 1
    assert len(await audits()) == 1


async def test_a_crash_between_the_change_and_its_audit_row_loses_no_row(
    catalog: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change and its audit row are one write: if the process dies before the row reaches
    ``audit_entries``, the next apply of that subscription (a redelivery, which changes
    nothing) writes it, once."""
    from pymongo.errors import AutoReconnect

    from revenue_engine.services import reconcile

    await apply_subscription(
        parse_subscription(subscription()), source=AuditSource.WEBHOOK, observed_at=T0
    )
    real_flush = reconcile.flush_audit

    async def crash(sub: Subscription) -> None:
        if sub.status == "past_due":  # right after the change was written
            raise AutoReconnect("connection lost")
        await real_flush(sub)

    monkeypatch.setattr(reconcile, "flush_audit", crash)
    past_due = subscription(status="past_due")
    with pytest.raises(AutoReconnect):
        await apply_subscription(
            parse_subscription(past_due),
            source=AuditSource.WEBHOOK,
            reference="evt_2",
            observed_at=T0 + SECOND,
        )
    stored = await Subscription.find_one({"stripe_subscription_id": "sub_test_1"})
    assert stored is not None
    assert (stored.status, stored.version) == ("past_due", 1)
    assert [a.to_status for a in await audits()] == ["active"]  # the row is not written yet

    monkeypatch.setattr(reconcile, "flush_audit", real_flush)
    again = await apply_subscription(
        parse_subscription(past_due),
        source=AuditSource.WEBHOOK,
        reference="evt_2",
        observed_at=T0 + 2 * SECOND,
    )
    assert again.version == 1  # the redelivery changed nothing itself
    rows = await audits()
    assert [(a.from_status, a.to_status, a.reference) for a in rows] == [
        (None, "active", None),
        ("active", "past_due", "evt_2"),
    ]
    stored = await Subscription.find_one({"stripe_subscription_id": "sub_test_1"})
    assert stored is not None
    assert stored.pending_audit is None
    await reconcile.flush_audit(again)  # a second flush of the same row writes nothing
    assert len(await audits()) == 2


async def test_concurrent_appliers_write_each_audit_row_once(catalog: Database) -> None:
    await apply_subscription(
        parse_subscription(subscription()), source=AuditSource.WEBHOOK, observed_at=T0
    )
    past_due = subscription(status="past_due")
    await asyncio.gather(
        *(
            apply_subscription(
                parse_subscription(past_due), source=AuditSource.WEBHOOK, observed_at=T0 + SECOND
            )
            for _ in range(5)
        )
    )
    assert [a.to_status for a in await audits()] == ["active", "past_due"]


async def test_packs_raise_limits_by_their_size_times_quantity(catalog: Database) -> None:
    obj = subscription(lookup_keys=("pro_month", "pro_bandwidth_month", "pro_api_calls_month"))
    pack, metered = obj["items"]["data"][1:]
    pack["quantity"] = 3
    # Stripe leaves the quantity out on a metered item.
    metered["quantity"] = None
    metered["price"]["recurring"].update(usage_type="metered", meter="mtr_calls")
    doc = await apply_subscription(
        parse_subscription(obj), source=AuditSource.WEBHOOK, observed_at=T0
    )
    assert doc.overages == ["api_calls", "bandwidth"]
    assert doc.entitlements["bandwidth_gb"] == 500 + 3 * 100
    # The metered add-on bills usage; it raises no limit.
    assert doc.entitlements["api_calls"] == 250000
    assert [i.quantity for i in doc.items] == [1, 3, 0]


async def test_a_pack_on_an_unlimited_plan_feature_keeps_it_unlimited(
    catalog: Database,
) -> None:
    obj = subscription(lookup_keys=("enterprise_year", "enterprise_bandwidth_year"))
    obj["items"]["data"][1]["quantity"] = 2
    doc = await apply_subscription(
        parse_subscription(obj), source=AuditSource.WEBHOOK, observed_at=T0
    )
    assert (doc.entitlements["seats"], doc.entitlements["bandwidth_gb"]) == (None, 7000)
    # A later observation with one pack fewer lowers the limit again.
    obj["items"]["data"][1]["quantity"] = 1
    later = await apply_subscription(
        parse_subscription(obj), source=AuditSource.WEBHOOK, observed_at=T0 + SECOND
    )
    assert later.entitlements["bandwidth_gb"] == 6000
