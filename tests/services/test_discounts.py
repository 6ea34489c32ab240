"""Reading Stripe's discounts into our subscription view: what is expanded is stored, what is
not (bare ids) leaves the stored discounts as they are, and an emptied list clears them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from revenue_engine.db import Database
from revenue_engine.documents import AuditEntry, AuditSource
from revenue_engine.gateway import parse_subscription
from revenue_engine.gateway.models.subscription import StripeDiscount
from revenue_engine.services.discounts import applied_discounts
from revenue_engine.services.plans_file import load_plans_file
from revenue_engine.services.reconcile import apply_subscription
from revenue_engine.settings import DEMO_PLANS_FILE
from tests.stripe_events import stripe_object
from tests.stripe_fixtures import subscription

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def expanded_discount(**coupon: Any) -> dict[str, Any]:
    """Stripe's example discount with its coupon and promotion code expanded."""
    discount = stripe_object("discount", id="di_1", start=1_767_225_600, end=None)
    discount["source"] = {
        "coupon": stripe_object("coupon", id="SPRING", **coupon),
        "type": "coupon",
    }
    discount["promotion_code"] = stripe_object("promotion_code", id="promo_1", code="SPRING25")
    return discount


@pytest.fixture
async def catalog(database: Database) -> Database:
    await load_plans_file(DEMO_PLANS_FILE)
    return database


def discounts(*raw: Any) -> list[StripeDiscount | str]:
    """A subscription's ``discounts`` as the read model holds them."""
    return parse_subscription(subscription(discounts=list(raw))).discounts or []


def test_an_expanded_discount_is_read_whole() -> None:
    [row] = (
        applied_discounts(discounts(expanded_discount(duration="repeating", duration_in_months=3)))
        or []
    )
    assert (row.stripe_discount_id, row.coupon_id, row.promotion_code_id, row.promotion_code) == (
        "di_1",
        "SPRING",
        "promo_1",
        "SPRING25",
    )
    assert (row.percent_off, row.amount_off, row.duration, row.duration_in_months) == (
        25.5,
        None,
        "repeating",
        3,
    )
    assert (row.start, row.end) == (T0, None)


def test_what_is_not_expanded_cannot_be_read() -> None:
    assert applied_discounts(None) == []
    assert applied_discounts([]) == []
    assert applied_discounts(discounts("di_1")) is None
    bare_coupon = expanded_discount()
    bare_coupon["source"]["coupon"] = "SPRING"
    assert applied_discounts(discounts(bare_coupon)) is None
    assert applied_discounts(discounts({"object": "discount"})) is None  # no id
    # Before 2025-09-30 the coupon was the discount's own ``coupon`` field.
    legacy = stripe_object("discount", id="di_2", start=1_767_225_600, source=None)
    legacy["coupon"] = stripe_object("coupon", id="OLD", percent_off=None, amount_off=300)
    [row] = applied_discounts(discounts(legacy)) or []
    assert (row.coupon_id, row.amount_off, row.promotion_code) == ("OLD", 300, None)


async def test_the_reconciler_keeps_discounts_it_cannot_read(catalog: Database) -> None:
    with_discount = subscription(discounts=[expanded_discount()])
    doc = await apply_subscription(
        parse_subscription(with_discount), source=AuditSource.WEBHOOK, observed_at=T0
    )
    assert [d.promotion_code for d in doc.discounts] == ["SPRING25"]
    # An event payload (discount ids only) with another change: the change applies, the
    # stored discounts stay.
    ids_only = subscription(discounts=["di_1"], cancel_at_period_end=True)
    doc = await apply_subscription(
        parse_subscription(ids_only),
        source=AuditSource.WEBHOOK,
        observed_at=T0 + timedelta(seconds=1),
    )
    assert doc.cancel_at_period_end is True
    assert [d.stripe_discount_id for d in doc.discounts] == ["di_1"]
    emptied = subscription(discounts=[], cancel_at_period_end=True)
    doc = await apply_subscription(
        parse_subscription(emptied),
        source=AuditSource.WEBHOOK,
        observed_at=T0 + timedelta(seconds=2),
    )
    assert doc.discounts == []
    # Newest first; two rows written within one millisecond tie on "at": then by insertion.
    last = (await AuditEntry.find({}).sort("-at", "-_id").limit(1).to_list())[0]
    assert list(last.changes) == ["discounts"]
