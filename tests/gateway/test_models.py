"""The subscription read model: Stripe's own example subscription parses into exactly the fields
the engine reads, unknown fields are ignored, and what lacks a needed field is refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from revenue_engine.errors import MalformedStripeObject
from revenue_engine.gateway import StripeSubscription, parse_subscription
from tests.stripe_events import stripe_object


def example() -> dict[str, Any]:
    return stripe_object("subscription")


def test_stripes_example_subscription_parses() -> None:
    sub = StripeSubscription.model_validate(example())
    assert (sub.id, sub.status, sub.customer) == (
        "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
        "active",
        "cus_QXg1o8vcGmoR32",
    )
    assert sub.metadata == {}
    assert (sub.cancel_at, sub.ended_at, sub.latest_invoice) == (1234567890, 1234567890, None)
    assert sub.discounts == []
    [item] = sub.items
    assert (item.id, item.quantity) == ("si_QXhVnC2h0Jczwc", 1)
    assert (item.current_period_start, item.current_period_end) == (1896570518, 976287773)
    price = item.price
    assert (price.id, price.lookup_key, price.unit_amount, price.currency) == (
        "price_1PgafmB7WZ01zgkW6dKueIc5",
        None,
        2000,
        "usd",
    )
    assert price.product == "prod_QXg1hqf4jFNsqG"
    assert price.recurring is not None
    assert (price.recurring.interval, price.recurring.usage_type) == ("month", "licensed")
    assert not price.metered


def test_unknown_fields_are_ignored_and_the_model_is_frozen() -> None:
    raw = example()
    raw["a_field_of_a_later_api_version"] = {"nested": True}
    raw["items"]["data"][0]["price"]["another_new_field"] = 1
    sub = parse_subscription(raw)
    assert "a_field_of_a_later_api_version" not in sub.model_dump()
    assert "another_new_field" not in sub.items[0].price.model_dump()
    with pytest.raises(ValidationError):
        sub.status = "canceled"  # type: ignore[misc]


def test_expanded_references_are_read_as_their_ids() -> None:
    raw = example()
    raw["customer"] = {"id": "cus_expanded", "object": "customer", "email": "a@example.com"}
    raw["latest_invoice"] = {"id": "in_expanded", "object": "invoice"}
    raw["test_clock"] = "clock_1"
    raw["items"]["data"][0]["price"]["product"] = {"id": "prod_expanded", "object": "product"}
    sub = parse_subscription(raw)
    assert (sub.customer, sub.latest_invoice, sub.test_clock) == (
        "cus_expanded",
        "in_expanded",
        "clock_1",
    )
    assert sub.items[0].price.product == "prod_expanded"


def test_a_metered_item_may_come_without_quantity() -> None:
    raw = example()
    item = raw["items"]["data"][0]
    del item["quantity"]
    item["price"]["recurring"].update(usage_type="metered", meter="mtr_1")
    parsed = parse_subscription(raw).items[0]
    assert parsed.quantity is None
    assert parsed.price.metered
    assert parsed.price.recurring is not None
    assert parsed.price.recurring.meter == "mtr_1"


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", None), ("status", None), ("status", ""), ("customer", None), ("object", "invoice")],
)
def test_a_subscription_without_a_needed_field_is_refused(field: str, value: Any) -> None:
    raw = example()
    if value is None:
        del raw[field]
    else:
        raw[field] = value
    with pytest.raises(ValidationError) as refused:
        StripeSubscription.model_validate(raw)
    assert field in {str(part) for error in refused.value.errors() for part in error["loc"]}
    with pytest.raises(MalformedStripeObject, match="not a Stripe subscription object") as typed:
        parse_subscription(raw)
    assert isinstance(typed.value.__cause__, ValidationError)


def test_an_item_without_its_price_is_refused_naming_the_field() -> None:
    raw = example()
    del raw["items"]["data"][0]["price"]
    with pytest.raises(ValidationError) as refused:
        StripeSubscription.model_validate(raw)
    [error] = refused.value.errors()
    assert error["loc"] == ("items", 0, "price")
    assert error["type"] == "missing"


def test_a_listing_item_that_is_not_a_subscription_is_named_not_raised() -> None:
    from revenue_engine.gateway import StripeSubscription, UnreadableSubscription, parse_listed

    good = parse_listed(stripe_object("subscription"))
    assert isinstance(good, StripeSubscription)
    bad = parse_listed({"object": "subscription", "id": "sub_x", "status": None})
    assert bad == UnreadableSubscription(id="sub_x", reason="not a Stripe subscription object")
    assert parse_listed("junk") == UnreadableSubscription(
        id="-", reason="not a Stripe subscription object"
    )
