"""The customer, Checkout session and portal session read models: Stripe's own example objects
parse into exactly the fields the engine reads (a deleted customer's stub too, and a session's
expanded subscription as the subscription read model), unknown fields are ignored, and what
lacks a needed field is refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from revenue_engine.errors import MalformedStripeObject
from revenue_engine.gateway import CustomerDefaults, StripeSubscription
from revenue_engine.gateway.models.customer import (
    StripeCheckoutSession,
    StripeCustomer,
    StripePortalSession,
    parse_checkout_session,
    parse_customer,
    parse_portal_session,
)
from tests.stripe_events import stripe_object


def test_stripes_example_customer_parses() -> None:
    customer = parse_customer(stripe_object("customer"))
    assert (customer.id, customer.email, customer.name, customer.deleted) == (
        "cus_QXg1o8vcGmoR32",
        None,
        None,
        False,
    )
    assert customer.defaults() == CustomerDefaults(
        customer_id="cus_QXg1o8vcGmoR32", default_payment_method=None, default_source=None
    )


def test_a_deleted_customers_stub_parses_as_deleted() -> None:
    stub = stripe_object("deleted_customer")
    assert stub == {"deleted": True, "id": "cus_QXg1o8vcGmoR32", "object": "customer"}
    customer = parse_customer(stub)
    assert customer.deleted
    assert (customer.email, customer.name, customer.invoice_settings) == (None, None, None)
    assert customer.defaults() == CustomerDefaults(
        customer_id="cus_QXg1o8vcGmoR32",
        default_payment_method=None,
        default_source=None,
        deleted=True,
    )


def test_a_customers_defaults_are_read_as_ids_expanded_or_not() -> None:
    raw = stripe_object("customer", email="a@example.com", name="Acme", default_source="card_1")
    raw["invoice_settings"]["default_payment_method"] = {"id": "pm_1", "object": "payment_method"}
    customer = parse_customer(raw)
    assert (customer.email, customer.name) == ("a@example.com", "Acme")
    defaults = customer.defaults()
    assert (defaults.default_payment_method, defaults.default_source) == ("pm_1", "card_1")
    assert defaults.default == "pm_1"
    raw.update(invoice_settings={"default_payment_method": None}, default_source={"id": "src_2"})
    assert parse_customer(raw).defaults().default == "src_2"


def test_an_empty_default_is_no_default() -> None:
    raw = stripe_object("customer", default_source="")
    raw["invoice_settings"]["default_payment_method"] = ""
    defaults = parse_customer(raw).defaults()
    assert (defaults.default_payment_method, defaults.default_source) == (None, None)


def test_unknown_fields_are_ignored_and_the_models_are_frozen() -> None:
    customer = parse_customer(stripe_object("customer", a_field_of_a_later_api_version=1))
    assert "a_field_of_a_later_api_version" not in customer.model_dump()
    assert "balance" not in customer.model_dump()  # sent by Stripe, not read by the engine
    session = parse_checkout_session(stripe_object("checkout.session", brand_new={"x": 1}))
    assert "brand_new" not in session.model_dump()
    with pytest.raises(ValidationError):
        customer.email = "b@example.com"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        session.status = "complete"  # type: ignore[misc]


def test_stripes_example_checkout_session_parses() -> None:
    session = parse_checkout_session(stripe_object("checkout.session"))
    assert session.id == "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
    assert (session.status, session.payment_status, session.client_reference_id) == (
        "open",
        "unpaid",
        None,
    )
    assert session.url == f"https://checkout.stripe.com/pay/c/{session.id}"
    assert (session.subscription, session.expanded_subscription) == (None, None)


def test_a_sessions_subscription_is_its_id_or_the_read_model() -> None:
    by_id = parse_checkout_session(stripe_object("checkout.session", subscription="sub_1"))
    assert (by_id.subscription, by_id.expanded_subscription) == ("sub_1", None)
    sub = stripe_object("subscription", default_payment_method={"id": "pm_paid"})
    expanded = parse_checkout_session(stripe_object("checkout.session", subscription=sub))
    assert isinstance(expanded.subscription, StripeSubscription)
    assert expanded.expanded_subscription is expanded.subscription
    assert (expanded.subscription.id, expanded.subscription.default_payment_method) == (
        "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
        "pm_paid",
    )


def test_a_session_whose_expanded_subscription_is_unreadable_is_refused_as_such() -> None:
    broken = stripe_object("subscription", status="")
    with pytest.raises(MalformedStripeObject) as typed:
        parse_checkout_session(stripe_object("checkout.session", subscription=broken))
    assert typed.value.message == "not a Stripe subscription object"
    assert isinstance(typed.value.__cause__, ValidationError)


def test_stripes_example_portal_session_parses() -> None:
    portal = parse_portal_session(stripe_object("billing_portal.session"))
    assert portal.id == "bps_1Pgc7HB7WZ01zgkWNs8s9Auh"
    assert portal.url.startswith("https://")
    assert set(portal.model_dump()) == {"object", "id", "url"}


MODELS: dict[str, tuple[type[Any], Any, str]] = {
    "customer": (StripeCustomer, parse_customer, "not a Stripe customer object"),
    "checkout.session": (
        StripeCheckoutSession,
        parse_checkout_session,
        "not a Stripe checkout session object",
    ),
    "billing_portal.session": (
        StripePortalSession,
        parse_portal_session,
        "not a Stripe billing portal session object",
    ),
}


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("customer", "id", None),
        ("customer", "id", ""),
        ("customer", "object", "subscription"),
        ("customer", "deleted", "perhaps"),
        ("checkout.session", "id", None),
        ("checkout.session", "object", "customer"),
        ("checkout.session", "payment_status", None),
        ("checkout.session", "payment_status", ""),
        ("billing_portal.session", "id", None),
        ("billing_portal.session", "url", None),
        ("billing_portal.session", "url", ""),
    ],
)
def test_an_object_without_a_needed_field_is_refused(kind: str, field: str, value: Any) -> None:
    model, parse, message = MODELS[kind]
    raw = stripe_object(kind)
    if value is None:
        del raw[field]
    else:
        raw[field] = value
    with pytest.raises(ValidationError) as refused:
        model.model_validate(raw)
    assert field in {str(part) for error in refused.value.errors() for part in error["loc"]}
    with pytest.raises(MalformedStripeObject) as typed:
        parse(raw)
    assert typed.value.message == message
    assert typed.value.code == "MALFORMED_OBJECT"
    assert isinstance(typed.value.__cause__, ValidationError)


@pytest.mark.parametrize("junk", ["cus_1", None, [], 7])
def test_what_is_not_an_object_at_all_is_refused(junk: Any) -> None:
    for _, parse, message in MODELS.values():
        with pytest.raises(MalformedStripeObject) as typed:
            parse(junk)
        assert typed.value.message == message
