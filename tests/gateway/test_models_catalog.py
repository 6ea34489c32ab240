"""The catalog's read models: Stripe's own example price, product, meter, meter event, invoice,
promotion code, coupon and event parse into the fields the engine reads, unknown fields are
ignored, and what lacks a needed field is refused with what is missing."""

from __future__ import annotations

import json

import pytest

from revenue_engine.errors import MalformedStripeObject
from revenue_engine.gateway.models.catalog import (
    CatalogPrice,
    CatalogProduct,
    MeterEventReceipt,
    StripeCoupon,
    StripeInvoice,
    StripeInvoicePreview,
    StripeMeter,
    StripePromotionCode,
    parse_as,
    parse_listed_event,
)
from tests.stripe_events import stripe_object


def test_stripes_example_price_parses() -> None:
    price = parse_as(CatalogPrice, "price", stripe_object("price"))
    assert (price.id, price.active, price.deleted, price.lookup_key) == (
        "price_1PgafmB7WZ01zgkW6dKueIc5",
        True,
        False,
        None,
    )
    assert (price.unit_amount, price.currency, price.product_id) == (
        2000,
        "usd",
        "prod_QXg1hqf4jFNsqG",
    )
    assert price.recurring is not None
    assert (price.recurring.interval, price.recurring.interval_count) == ("month", 1)
    assert (price.recurring.usage_type, price.recurring.meter) == ("licensed", None)
    assert price.transform_quantity is not None
    assert (price.transform_quantity.divide_by, price.transform_quantity.round) == (
        1592560163,
        "down",
    )
    assert price.describe() == "2000 usd/month per 1592560163 units rounded down"


def test_a_deleted_price_and_an_expanded_product_are_read() -> None:
    deleted = parse_as(CatalogPrice, "price", stripe_object("deleted_price"))
    assert deleted.deleted is True
    raw = stripe_object("price", product={"id": "prod_expanded", "object": "product"})
    assert parse_as(CatalogPrice, "price", raw).product_id == "prod_expanded"


def test_a_metered_price_describes_its_meter() -> None:
    raw = stripe_object(
        "price",
        recurring={
            "interval": "year",
            "interval_count": 2,
            "usage_type": "metered",
            "meter": "mtr_1",
        },
        transform_quantity={"divide_by": 100, "round": "up"},
    )
    price = parse_as(CatalogPrice, "price", raw)
    assert price.describe() == "2000 usd/2 years metered on mtr_1 per 100 units rounded up"


def test_stripes_example_product_meter_and_meter_event_parse() -> None:
    product = parse_as(
        CatalogProduct, "product", stripe_object("product", metadata={"plan_uid": "pro"})
    )
    assert (product.id, product.active, product.deleted, product.metadata) == (
        "prod_QXg1hqf4jFNsqG",
        True,
        False,
        {"plan_uid": "pro"},
    )
    meter = parse_as(StripeMeter, "billing meter", stripe_object("billing.meter"))
    assert (meter.id, meter.event_name, meter.status) == (
        "meter_123",
        "test-meter-event-name",
        "active",
    )
    receipt = parse_as(
        MeterEventReceipt, "billing meter event", stripe_object("billing.meter_event")
    )
    assert (receipt.identifier, receipt.event_name, receipt.timestamp) == (
        "1234-1234",
        "api_request",
        1234567890,
    )


def test_unknown_fields_are_ignored() -> None:
    raw = stripe_object("price", a_field_of_a_later_api_version={"nested": True})
    raw["recurring"]["another_new_field"] = 1
    price = parse_as(CatalogPrice, "price", raw)
    assert "a_field_of_a_later_api_version" not in price.model_dump()
    assert price.recurring is not None
    assert "another_new_field" not in price.recurring.model_dump()
    meter = parse_as(StripeMeter, "billing meter", stripe_object("billing.meter", later=[1]))
    assert "later" not in meter.model_dump()


@pytest.mark.parametrize(
    ("model", "kind", "raw", "missing"),
    [
        (CatalogPrice, "price", stripe_object("price", id=None), "id"),
        (CatalogPrice, "price", stripe_object("price", id=""), "id"),
        (
            CatalogPrice,
            "price",
            stripe_object("price", recurring={"usage_type": "metered"}),
            "recurring.interval",
        ),
        (
            CatalogPrice,
            "price",
            stripe_object("price", transform_quantity={"round": "up"}),
            "transform_quantity.divide_by",
        ),
        (CatalogProduct, "product", stripe_object("product", metadata={"n": 1}), "metadata.n"),
        (StripeMeter, "billing meter", {"object": "billing.meter"}, "id"),
        (MeterEventReceipt, "billing meter event", {"object": "billing.meter_event"}, "identifier"),
        (StripeInvoice, "invoice", stripe_object("invoice", id=None), "id"),
        (
            StripeInvoicePreview,
            "invoice",
            stripe_object("invoice", lines=[{"amount": "x"}]),
            "lines.0.amount",
        ),
        (StripePromotionCode, "promotion code", stripe_object("promotion_code", code=None), "code"),
        (StripeCoupon, "coupon", stripe_object("coupon", id=""), "id"),
    ],
)
def test_a_missing_needed_field_is_refused(
    model: type[
        CatalogPrice
        | CatalogProduct
        | StripeMeter
        | MeterEventReceipt
        | StripeInvoice
        | StripeInvoicePreview
        | StripePromotionCode
        | StripeCoupon
    ],
    kind: str,
    raw: object,
    missing: str,
) -> None:
    with pytest.raises(MalformedStripeObject) as caught:
        parse_as(model, kind, raw)
    assert caught.value.message == f"not a Stripe {kind} object (missing or invalid: {missing})"


def test_what_is_not_an_object_is_refused() -> None:
    with pytest.raises(MalformedStripeObject) as caught:
        parse_as(StripeMeter, "billing meter", ["meter_123"])
    assert caught.value.message == "not a Stripe billing meter object (missing or invalid: -)"


def test_stripes_example_invoice_parses_listed_and_previewed() -> None:
    listed = parse_as(StripeInvoice, "invoice", stripe_object("invoice"))
    assert (listed.id, listed.number, listed.status, listed.currency) == (
        "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
        None,
        "draft",
        "usd",
    )
    assert (listed.amount_due, listed.amount_paid, listed.subtotal, listed.total) == (
        1000,
        0,
        1000,
        1000,
    )
    assert (listed.created, listed.discount_amount) == (1234567890, 0)
    preview = parse_as(StripeInvoicePreview, "invoice", stripe_object("invoice", id=None))
    [line] = preview.lines
    assert (line.description, line.amount, line.quantity) == (
        "My First Invoice Item (created for API docs)",
        1000,
        1,
    )
    assert line.period is not None
    assert (line.period.start, line.period.end) == (1721954054, 1721954054)
    assert line.is_proration


def test_discounts_and_prorations_of_an_invoice() -> None:
    raw = stripe_object(
        "invoice", total_discount_amounts=[{"amount": 400, "discount": "di_1"}, {"amount": 5}]
    )
    assert parse_as(StripeInvoice, "invoice", raw).discount_amount == 405
    lines = [
        {"amount": 1, "parent": {"subscription_item_details": {"proration": False}}},
        {"amount": 2, "parent": {"subscription_item_details": {}}, "proration": True},
        {"amount": 3, "proration": True, "quantity": True},
        {"amount": 4},
    ]
    preview = parse_as(StripeInvoicePreview, "invoice", {"lines": {"data": lines}})
    assert [line.is_proration for line in preview.lines] == [False, True, True, False]
    assert [line.quantity for line in preview.lines] == [None, None, None, None]
    assert preview.discount_amount == 0


def test_stripes_example_promotion_code_and_coupon_parse() -> None:
    promo = parse_as(StripePromotionCode, "promotion code", stripe_object("promotion_code"))
    assert (promo.id, promo.code, promo.active, promo.customer) == (
        "promo_1Pgc79B7WZ01zgkWNy4mn5NX",
        "FALL20",
        False,
        None,
    )
    assert (promo.expires_at, promo.used_up, promo.coupon_ref) == (1234567890, False, None)
    assert promo.restrictions is not None
    assert promo.restrictions.first_time_transaction is False
    coupon = parse_as(StripeCoupon, "coupon", stripe_object("coupon"))
    assert (coupon.id, coupon.valid, coupon.amount_off, coupon.currency) == (
        "Z4OV52SU",
        True,
        None,
        "usd",
    )
    assert (coupon.redeem_by, coupon.used_up, coupon.applies_to) == (1234567890, False, None)
    assert "applies_to" not in coupon.model_fields_set  # not expanded


def test_a_promotion_codes_coupon_is_read_expanded_or_as_its_id() -> None:
    expanded = stripe_object("coupon", applies_to={"products": ["prod_1"]}, max_redemptions=2)
    expanded["times_redeemed"] = 2
    raw = stripe_object("promotion_code", promotion={"type": "coupon", "coupon": expanded})
    coupon = parse_as(StripePromotionCode, "promotion code", raw).coupon_ref
    assert isinstance(coupon, StripeCoupon)
    assert coupon.applies_to is not None
    assert (coupon.applies_to.products, coupon.used_up) == (["prod_1"], True)
    assert "applies_to" in coupon.model_fields_set
    legacy = stripe_object("promotion_code", coupon="SPRING")
    del legacy["promotion"]
    assert parse_as(StripePromotionCode, "promotion code", legacy).coupon_ref == "SPRING"


def test_a_listed_event_keeps_its_envelope_as_sent() -> None:
    raw = stripe_object("event")
    listed = parse_listed_event(raw)
    assert (listed.id, listed.created) == ("evt_1Pgc76B7WZ01zgkWwyRHS12y", 1234567890)
    assert json.loads(listed.envelope) == raw
    odd = parse_listed_event({**raw, "created": "yesterday"})
    assert odd.created is None  # the replay's own envelope check refuses it


@pytest.mark.parametrize("raw", [{"object": "event"}, {"id": ""}, ["evt_1"]])
def test_a_listed_event_without_an_id_is_refused(raw: object) -> None:
    with pytest.raises(MalformedStripeObject) as caught:
        parse_listed_event(raw)
    assert caught.value.message.startswith("not a Stripe event object (missing or invalid: ")
